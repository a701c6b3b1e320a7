"""Write long name lists compactly: numbered siblings become ranges, then names
group by prefix: ``MobilenetV1/Conv2d_{1..13}_pointwise/BatchNorm/{beta, gamma}``."""
from __future__ import annotations

import re

_NUMBER = re.compile(r"\d+")


def group_names(names, max_items: int = 0) -> list[str]:
    """One line per top-level scope, each a brace expression of its (range-collapsed) names."""
    tree: dict = {}
    for name in sorted(collapse_numbers(names), key=_natural):
        node = tree
        for part in _split(name):
            node = node.setdefault(part, {})
    lines = [_expr(part, sub) for part, sub in tree.items()]
    if max_items and len(lines) > max_items:
        lines = lines[:max_items] + [f"... and {len(lines) - max_items} more groups"]
    return lines


def collapse_numbers(names) -> list[str]:
    """Names differing only in one number become one name with a range: ``unit_{1..6}``.

    Each pass collapses the right-most number position whose collapse merges
    something, so ``block{1..4}/unit_{1..3}`` takes two passes.
    """
    current = sorted(set(names), key=_natural)
    for _ in range(6):
        collapsed = _collapse_once(current)
        if collapsed is None:
            break
        current = collapsed
    return current


def _collapse_once(names: list[str]) -> list[str] | None:
    positions = max((len(_free_numbers(n)) for n in names), default=0)
    for position in range(1, positions + 1):  # right-most first
        collapsed = _collapse_at(names, position)
        if len(collapsed) < len(names):
            return collapsed
    return None


def _free_numbers(name: str) -> list[re.Match]:
    return [m for m in _NUMBER.finditer(name) if not _inside_braces(name, m.start())]


def _collapse_at(names: list[str], position: int) -> list[str]:
    groups: dict[tuple[str, str], list[int]] = {}
    for name in names:
        numbers = _free_numbers(name)
        if len(numbers) < position:
            groups.setdefault((name, None), [])
            continue
        m = numbers[-position]
        groups.setdefault((name[: m.start()], name[m.end():]), []).append(int(m.group()))
    out = []
    for (head, tail), numbers in groups.items():
        if tail is None:
            out.append(head)
        elif len(set(numbers)) == 1:
            out.append(f"{head}{numbers[0]}{tail}")
        else:
            out.append(f"{head}{{{_ranges(sorted(set(numbers)))}}}{tail}")
    return sorted(set(out), key=_natural)


def _inside_braces(text: str, index: int) -> bool:
    return text.count("{", 0, index) > text.count("}", 0, index)


def _ranges(numbers: list[int]) -> str:
    parts, start = [], numbers[0]
    for prev, cur in zip(numbers, numbers[1:] + [None]):
        if cur != prev + 1:
            parts.append(str(start) if start == prev else f"{start}..{prev}")
            start = cur
    return ",".join(parts)


def _split(name: str) -> list[str]:
    """Split on '/' outside braces."""
    parts, depth, current = [], 0, ""
    for char in name:
        depth += char == "{"
        depth -= char == "}"
        if char == "/" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def _natural(text: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _expr(part: str, sub: dict) -> str:
    if not sub:
        return part
    if len(sub) == 1:
        (child, grand), = sub.items()
        return f"{part}/{_expr(child, grand)}"
    return f"{part}/{{{', '.join(_expr(c, g) for c, g in sub.items())}}}"
