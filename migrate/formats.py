"""Checkpoint wire-format primitives other packages build on (no TensorFlow).

Protocol-buffer fields, TensorFlow's masked crc32c, the TF2 object graph and
the tensor-bundle writer: finetune writes and reads TFRecords and restores
object-graph checkpoints with them.  Readers are opened through the front
door (:func:`migrate.open_checkpoint`).
"""
from ._formats._bundle import OBJECT_GRAPH_KEY as OBJECT_GRAPH_KEY
from ._formats._bundle_writer import BundleWriter as BundleWriter
from ._formats._crc import crc32c as crc32c
from ._formats._crc import mask as mask
from ._formats._objgraph import SAVE_COUNTER as SAVE_COUNTER
from ._formats._objgraph import VALUE_ATTRIBUTE as VALUE_ATTRIBUTE
from ._formats._objgraph import checkpoint_key as checkpoint_key
from ._formats._objgraph import decode as decode_object_graph
from ._formats._objgraph import object_path as object_path
from ._formats._proto import FIXED32 as FIXED32
from ._formats._proto import LENGTH as LENGTH
from ._formats._proto import ProtoError as ProtoError
from ._formats._proto import iter_fields as iter_fields
from ._formats._proto import packed_varints as packed_varints
from ._formats._proto import signed64 as signed64
from ._formats._write import field_bytes as field_bytes
from ._formats._write import varint as varint

__all__ = [
    "FIXED32", "LENGTH", "OBJECT_GRAPH_KEY", "SAVE_COUNTER", "VALUE_ATTRIBUTE", "BundleWriter", "ProtoError", "checkpoint_key",
    "crc32c", "decode_object_graph", "field_bytes", "iter_fields", "mask", "object_path", "packed_varints",
    "signed64", "varint",
]
