"""Number formatting shared by the text renderers."""
from __future__ import annotations


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def human_count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def shape_text(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def number(value) -> str:
    return "" if value is None else f"{value:.4g}"
