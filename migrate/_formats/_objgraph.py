"""TrackableObjectGraph: the object graph TF2 stores under ``_CHECKPOINTABLE_OBJECT_GRAPH``.

Node 0 is the root; each node lists its children (node id, local name), the
tensors it saves (attribute name, full name, checkpoint key) and its slot
variables.  A checkpoint key is the escaped path of local names from the root
followed by ``/.ATTRIBUTES/<attribute>``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._proto import LENGTH, VARINT, ProtoError, iter_fields
from ._write import field_bytes, field_varint

VALUE_ATTRIBUTE = "VARIABLE_VALUE"
SAVE_COUNTER = "save_counter"  # the root's int64 counter Checkpoint.save adds and Checkpoint.restore requires


def saved_counter() -> np.ndarray:
    """The counter's value as ``Checkpoint.save`` writes it into its first checkpoint."""
    return np.asarray(1, np.int64)


@dataclass
class Node:
    children: list[tuple[int, str]] = field(default_factory=list)  # (node id, local name)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)  # (name, full name, checkpoint key)
    slots: list[tuple[int, str, int]] = field(default_factory=list)  # (original id, slot name, slot id)


def escape(local_name: str) -> str:
    """TensorFlow's escaping of one path element: '.' -> '..', '/' -> '.S'."""
    return local_name.replace(".", "..").replace("/", ".S")


def unescape(element: str) -> str:
    """Inverse of :func:`escape`."""
    out, i = [], 0
    while i < len(element):
        if element[i] == "." and i + 1 < len(element):
            out.append("/" if element[i + 1] == "S" else ".")
            i += 2
        else:
            out.append(element[i])
            i += 1
    return "".join(out)


def object_path(key: str) -> list[str]:
    """Local names along the path of a TF2 checkpoint key (suffix removed, unescaped)."""
    head = key.split("/.ATTRIBUTES/")[0]
    return [unescape(p) for p in head.split("/")]


def checkpoint_key(path: list[str], attribute: str = VALUE_ATTRIBUTE) -> str:
    return "/".join(escape(p) for p in path) + f"/.ATTRIBUTES/{attribute}"


def encode(nodes: list[Node]) -> bytes:
    out = bytearray()
    for node in nodes:
        body = bytearray()
        for node_id, name in node.children:
            body += field_bytes(1, field_varint(1, node_id) + field_bytes(2, name.encode()))
        for name, full_name, key in node.attributes:
            body += field_bytes(2, field_bytes(1, name.encode()) + field_bytes(2, full_name.encode()) + field_bytes(3, key.encode()))
        for original, slot_name, slot in node.slots:
            body += field_bytes(3, field_varint(1, original) + field_bytes(2, slot_name.encode()) + field_varint(3, slot))
        out += field_bytes(1, bytes(body))
    return bytes(out)


def decode(buf) -> list[Node]:
    nodes = []
    for number, wire, value in iter_fields(buf):
        if number == 1 and wire == LENGTH:
            nodes.append(_decode_node(value))
    for node in nodes:
        for child, _ in node.children:
            if not 0 <= child < len(nodes):
                raise ProtoError(f"object graph child reference {child} points past its {len(nodes)} nodes")
    return nodes


def _decode_node(buf) -> Node:
    node = Node()
    for number, wire, value in iter_fields(buf):
        if wire != LENGTH:
            continue
        sub = {(n, w): v for n, w, v in iter_fields(value)}  # keyed by wire type too: ids are varints, names bytes
        if number == 1:
            node.children.append((sub.get((1, VARINT), 0), _text(sub.get((2, LENGTH), b""))))
        elif number == 2:
            node.attributes.append(tuple(_text(sub.get((n, LENGTH), b"")) for n in (1, 2, 3)))
        elif number == 3:
            node.slots.append((sub.get((1, VARINT), 0), _text(sub.get((2, LENGTH), b"")), sub.get((3, VARINT), 0)))
    return node


def _text(value) -> str:
    return bytes(value).decode("utf-8", "replace") if not isinstance(value, int) else str(value)


def keys_by_full_name(nodes: list[Node]) -> dict[str, str]:
    """full name (the variable's own name) -> checkpoint key, for every saved value."""
    return {full: key for node in nodes for attr, full, key in node.attributes if attr == VALUE_ATTRIBUTE}


def paths(nodes: list[Node]) -> dict[int, list[str]]:
    """Node id -> local-name path from the root (first path found, cycles ignored)."""
    found, queue = {0: []}, [0]
    while queue:
        current = queue.pop(0)
        for child, name in nodes[current].children:
            if child not in found:
                found[child] = found[current] + [name]
                queue.append(child)
    return found
