"""Output paths derived from source names that never leave the output directory."""
from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

from .._formats._storage import RemotePath


def safe_component(part: str) -> str:
    """One path element: letters (any script), digits, '-', '_' and inner dots; no '..', no leading dot."""
    part = unicodedata.normalize("NFC", part)
    cleaned = "".join(c if (c.isalnum() or c in "-_.") else "_" for c in part).strip(".") or "_"
    return cleaned.replace("..", "_")[:120]


def output_names(rels: list[str]) -> dict[str, str]:
    """Relative output path for each source; collisions get a short hash of the original name."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for rel in rels:
        parts = [safe_component(p) for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
        name = "/".join(parts) or "_"
        if name.casefold() in taken:
            name += "-" + hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        taken.add(name.casefold())
        names[rel] = name
    return names


def inside(root: Path, rel: str) -> Path:
    """``root / rel``, refusing anything that would resolve outside ``root``."""
    root = root.resolve()
    path = (root / rel).resolve()
    if path != root and root not in path.parents:
        raise ValueError(f"output name {rel!r} leaves {root}")
    return path


def output_path(out, name: str) -> str:
    """Where the entry ``name`` is written under ``out`` (a local path or a URL)."""
    return str(out / name if isinstance(out, RemotePath) else inside(out, name))
