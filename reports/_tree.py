"""Group tensor names by scope so a 300-tensor checkpoint reads at a glance."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ScopeNode:
    name: str
    tensors: int = 0
    elements: int = 0
    bytes: int = 0
    children: dict[str, "ScopeNode"] = field(default_factory=dict)


def scope_tree(tensors, depth: int) -> ScopeNode:
    """Totals per scope, ``depth`` levels deep (tensor names end a branch)."""
    root = ScopeNode("")
    for t in tensors:
        parts = t.name.split("/")
        node = root
        _add(node, t)
        for part in parts[: min(depth, len(parts) - 1)]:
            node = node.children.setdefault(part, ScopeNode(part))
            _add(node, t)
    return root


def _add(node: ScopeNode, t) -> None:
    node.tensors += 1
    node.elements += t.size
    node.bytes += t.bytes


def walk(node: ScopeNode, level: int = 0):
    """Yield (level, node) depth-first, children sorted by name."""
    for child in sorted(node.children.values(), key=lambda n: n.name):
        yield level, child
        yield from walk(child, level + 1)
