"""Generic conversion: a TF2 object-based checkpoint whose object graph mirrors the TF1 scopes.

No model is needed.  ``a/b/c`` becomes the object path root -> a -> b -> c with
checkpoint key ``a/b/c/.ATTRIBUTES/VARIABLE_VALUE``; tensor bytes are reused
from the source shards, so a 1 GB checkpoint converts without reading 1 GB
into memory (the migration guide's recipe loads every tensor into a
tf.Variable first).
"""
from __future__ import annotations

import re

import numpy as np

from reports import MappedTensor, MappingReport

from ._formats import CheckpointReader
from ._formats._bundle import OBJECT_GRAPH_KEY, BundleReader
from ._formats._bundle_writer import BundleWriter
from ._formats._objgraph import SAVE_COUNTER, Node, checkpoint_key, encode, object_path, saved_counter
from ._select import Selected, Selection
from .errors import CkptkitError

GENERIC_RULE = "generic: scope path -> object path"
COUNTER_KEY = checkpoint_key([SAVE_COUNTER])


def source_value(reader: CheckpointReader, item: Selected) -> np.ndarray:
    """The output value of ``item``: its source tensor, its partitions joined, or an [[init]] constant."""
    if not item.sources:
        return np.full(item.shape, float(item.name.split()[-1]), dtype=item.dtype)
    if len(item.sources) == 1:
        return reader.read(item.sources[0])
    return np.concatenate([reader.read(s) for s in item.sources], axis=0)


def output_path(name: str, source_format: str) -> list[str]:
    """Object path of a kept tensor: TF1 scopes, a TF2 source's own object path, or an HDF5 dataset path."""
    if source_format in ("tf2-object", "saved-model"):
        return object_path(name)
    return re.sub(r":\d+$", "", name).split("/")


def write_generic(reader: CheckpointReader, selection: Selection, writer: BundleWriter) -> dict[str, str]:
    """Write every kept tensor, a ``save_counter`` and the object graph; return output key -> source name.

    The counter is what ``Checkpoint.save`` adds and what ``Checkpoint.restore`` creates and then
    requires (``assert_existing_objects_matched``); a source that kept its own is written as it is.
    """
    keys, paths = {}, {}
    for name in sorted(selection.kept):
        item = selection.kept[name]
        paths[name] = output_path(name, reader.format)
        key = checkpoint_key(paths[name])
        if key in keys:
            raise CkptkitError(f"{reader.path}: {keys[key]} and {name} would both be written as {key}; rename one with a rule")
        if _reusable(reader, item):
            writer.add_existing(key, reader.entry(item.sources[0]))
        else:
            writer.add_array(key, source_value(reader, item))
        keys[key] = name
    leaves = [(paths[n], n) for n in sorted(selection.kept)]
    if COUNTER_KEY not in keys:
        writer.add_array(COUNTER_KEY, saved_counter())
        leaves.append(([SAVE_COUNTER], SAVE_COUNTER))
    graph = object_graph(leaves)
    writer.add_strings(OBJECT_GRAPH_KEY, np.array(encode(graph), dtype=object))
    return keys


def _reusable(reader: CheckpointReader, item: Selected) -> bool:
    return isinstance(reader, BundleReader) and len(item.sources) == 1 and not reader.entry(item.sources[0]).slices


def object_graph(leaves: list[tuple[list[str], str]]) -> list[Node]:
    """Nodes of a tree whose leaves are variables: (object path, full name) pairs."""
    nodes, index = [Node()], {(): 0}
    for path, name in leaves:
        path = tuple(path)
        for depth in range(1, len(path) + 1):
            prefix = path[:depth]
            if prefix not in index:
                index[prefix] = len(nodes)
                nodes.append(Node())
                nodes[index[prefix[:-1]]].children.append((index[prefix], prefix[-1]))
        nodes[index[path]].attributes.append(("VARIABLE_VALUE", name, checkpoint_key(list(path))))
    return nodes


def generic_mapping(source: str, selection: Selection, keys: dict[str, str]) -> MappingReport:
    mapped = tuple(
        MappedTensor(", ".join(selection.kept[name].sources), key, GENERIC_RULE, selection.kept[name].note)
        for key, name in sorted(keys.items(), key=lambda kv: kv[1])
    )
    return MappingReport(source, "generic", "generic", mapped, (), (), (), (), dict(selection.dropped), tuple(selection.warnings))
