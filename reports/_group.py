"""Write long name lists grouped by prefix: ``conv1/{weights, BatchNorm/{beta, gamma}}``."""
from __future__ import annotations


def group_names(names, max_items: int = 0) -> list[str]:
    """One line per top-level scope, each a brace expression of its names."""
    tree: dict = {}
    for name in sorted(names):
        node = tree
        for part in name.split("/"):
            node = node.setdefault(part, {})
    lines = [_expr(part, sub) for part, sub in tree.items()]
    if max_items and len(lines) > max_items:
        lines = lines[:max_items] + [f"... and {len(lines) - max_items} more groups"]
    return lines


def _expr(part: str, sub: dict) -> str:
    if not sub:
        return part
    if len(sub) == 1:
        (child, grand), = sub.items()
        return f"{part}/{_expr(child, grand)}"
    return f"{part}/{{{', '.join(_expr(c, g) for c, g in sub.items())}}}"
