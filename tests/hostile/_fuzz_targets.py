"""Fuzz targets, one per native reader, and their seeds (taken from the real fixtures).

A target takes bytes and may only raise the errors its reader documents
(``ALLOWED``); anything else, a hang or an allocation past the process's
address-space limit is a crash.  Importing this module imports the readers, so
``fuzz.py`` imports it inside atheris' instrumentation.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from migrate.textproto import TextProtoError, format_text, parse_file
from finetune.data import LabelMap, iter_records
from finetune.data._label_map import LabelMapError, load_label_map
from finetune.data._validate import BadRecord, LabelMismatch, image_size, parse_record
from migrate._formats._bundle import BundleReader, parse_entry
from migrate._formats._dtypes import DTYPES
from migrate._formats._locate import locate
from migrate._formats._objgraph import Node, decode, encode, keys_by_full_name, paths
from migrate._formats._proto import LENGTH, ProtoError, iter_fields
from migrate._formats._slices import slice_key
from migrate._formats._table import Table, TableError
from migrate._formats._tensor_proto import decode_tensor_proto
from migrate._formats._v1 import V1Reader
from migrate._formats._write import TableWriter, encode_header, field_bytes
from migrate._rulesets import RuleFileError, load
from migrate._zoo._manifest import ManifestError, read_manifest
from migrate.errors import CkptkitError

# libFuzzer ends the process with exit(): no Python clean-up runs, so tests pass a directory they own
_SCRATCH = Path(os.environ.get("CKPTKIT_FUZZ_SCRATCH") or tempfile.mkdtemp(prefix="ckptkit-fuzz-"))
_SCRATCH.mkdir(parents=True, exist_ok=True)
_DTYPE_ENUMS = sorted(DTYPES)
MAX_VALUES = 1 << 16  # decode_tensor_proto allocates the count its caller asks for; the caller bounds it


def _file(name: str, data: bytes) -> Path:
    path = _SCRATCH / name
    path.write_bytes(data)
    return path


def fuzz_table(data: bytes) -> None:
    with Table(_file("t.table", data)) as table:
        for _key, _value in table.items():
            pass
        table.get(b"")
        table.get(b"\x00x")


def fuzz_bundle(data: bytes) -> None:
    """``data`` is one BundleEntryProto, stored under a name (and under each slice it lists) in a real index."""
    prefix = _SCRATCH / "b" / "ckpt"
    items = {b"": encode_header(1), b"x": data}
    try:
        for extents in parse_entry(data).slices:
            items[slice_key("x", extents)] = data
    except ProtoError:
        pass
    with TableWriter(Path(f"{prefix}.index")) as table:
        for key in sorted(items):
            table.add(key, items[key])
    with BundleReader(prefix) as reader:
        _read_all(reader)


def fuzz_v1_metadata(data: bytes) -> None:
    """``data`` is the SavedTensorSlices under a V1 table's empty key; real data entries stay beside it."""
    path = _SCRATCH / "v1.ckpt"
    with TableWriter(path) as table:
        for key, value in sorted([(b"", data), *_V1_DATA]):
            table.add(key, value)
    with V1Reader(path) as reader:
        _read_all(reader)


def fuzz_tensor_proto(data: bytes) -> None:
    if len(data) < 3:
        return
    dtype = DTYPES[_DTYPE_ENUMS[data[0] % len(_DTYPE_ENUMS)]][0]
    count = int.from_bytes(data[1:3], "little") % MAX_VALUES
    values = decode_tensor_proto(data[3:], dtype, count)
    if len(values) != count:
        raise AssertionError(f"{len(values)} values for a count of {count}")


def fuzz_object_graph(data: bytes) -> None:
    nodes = decode(data)
    if nodes:
        paths(nodes)
    keys_by_full_name(nodes)


def fuzz_rules(data: bytes) -> None:
    load(_file("rules.toml", data))


def fuzz_manifest(data: bytes) -> None:
    name = "m.jsonl" if data[:1] == b"{" else "m.csv"
    read_manifest(_file(name, data), _SCRATCH)


def fuzz_state_file(data: bytes) -> None:
    directory = _SCRATCH / "state"
    directory.mkdir(exist_ok=True)
    (directory / "checkpoint").write_bytes(data)
    locate(directory)


def fuzz_textproto(data: bytes) -> None:
    """pipeline.config / label map text format: parse the file, write the tree back, parse that."""
    tree = parse_file(_file("pipeline.config", data))
    format_text(tree)


def fuzz_label_map(data: bytes) -> None:
    load_label_map(_file("label_map.pbtxt", data))


_SHAPES = LabelMap.from_names(["circle", "square", "triangle"])


def fuzz_tfrecord(data: bytes) -> None:
    """TFRecord framing, then every intact record checked as an OD API detection and classification example."""
    for record in iter_records(_file("t.record", data)):
        if record.data is None:
            continue
        image_size(record.data)
        for kind in ("detection", "classification"):
            try:
                parse_record(record.data, kind, _SHAPES)
            except (BadRecord, LabelMismatch):
                pass


def _read_all(reader) -> None:
    for name in reader.keys():
        reader.spec(name)
        reader.read(name)
    reader.verify()


TARGETS = {
    "table": (fuzz_table, (TableError,)),
    "bundle": (fuzz_bundle, (CkptkitError,)),
    "v1_metadata": (fuzz_v1_metadata, (CkptkitError,)),
    "tensor_proto": (fuzz_tensor_proto, (ProtoError,)),
    "object_graph": (fuzz_object_graph, (ProtoError,)),
    "rules": (fuzz_rules, (RuleFileError,)),
    "manifest": (fuzz_manifest, (ManifestError,)),
    "state_file": (fuzz_state_file, (CkptkitError,)),
    "textproto": (fuzz_textproto, (TextProtoError,)),
    "label_map": (fuzz_label_map, (LabelMapError, TextProtoError)),
    "tfrecord": (fuzz_tfrecord, ()),
}


def call(target: str, data: bytes) -> None:
    """Run one input; the documented errors are a normal outcome, anything else propagates (a crash)."""
    function, allowed = TARGETS[target]
    try:
        function(data)
    except allowed:
        pass


# -- seeds -----------------------------------------------------------------------------------
def _fixtures() -> Path:
    import fixtures  # noqa: PLC0415

    return Path(os.environ.get(fixtures.ENV_VAR) or fixtures.default_dir())


def _v1_data() -> list[tuple[bytes, bytes]]:
    """A few small data entries of the real V1 file (global_step and the biases)."""
    with Table(_fixtures() / "vgg_16_v1" / "vgg_16.ckpt") as table:
        return [(bytes(k), bytes(v)) for k, v in table.items() if k and (b"biases" in k or b"global_step" in k) and len(v) < 4096]


def seeds(target: str) -> list[bytes]:
    fx = _fixtures()
    indexes = [fx / n / "model.ckpt.index" for n in ("mobilenet_v1_small", "dtypes", "partitioned", "sharded")]
    if target == "table":
        return [p.read_bytes() for p in indexes]
    if target == "bundle":
        out = []
        for p in indexes:
            with Table(p) as table:
                out += [bytes(v) for k, v in table.items() if k][:8]
        return out
    if target == "v1_metadata":
        with Table(fx / "vgg_16_v1" / "vgg_16.ckpt") as table:
            return [bytes(table.get(b""))]
    if target == "tensor_proto":
        return [bytes([DTYPES_INDEX["float32"], len(v) // 4 % 256, 0]) + v for v in _tensor_protos()]
    if target == "object_graph":  # the real graph's first 24 nodes (the whole one is 42 KB: slow to mutate) and a tree
        with BundleReader(fx / "tf2_object" / "ckpt-1") as reader:
            real = bytes(reader.read("_CHECKPOINTABLE_OBJECT_GRAPH").item())
        head = b"".join(field_bytes(1, bytes(v)) for f, w, v in list(iter_fields(real))[:24])
        tree = [Node(children=[(1, "a")]), Node(children=[(2, "b")], slots=[(2, "m", 2)]),
                Node(attributes=[("VARIABLE_VALUE", "a/b", "a/b/.ATTRIBUTES/VARIABLE_VALUE")])]
        return [head, encode(tree)]
    if target == "rules":
        from importlib import resources  # noqa: PLC0415

        return [e.read_bytes() for e in resources.files("migrate.rules").joinpath("maps").iterdir() if e.name.endswith(".toml")]
    if target == "manifest":
        return [b"source,target,options\nvgg_16.ckpt,generic,use_ema=1;restore=backbone\na b/c,,classes=5\n",
                b'{"source": "a/model.ckpt", "target": "keras:MobileNet", "options": {"use_ema": true}}\n']
    if target == "state_file":
        return [(fx / "mobilenet_v1_small" / "checkpoint").read_bytes(), b'model_checkpoint_path: "m\\303\\266del"\n']
    shapes = fx / "detection_shapes"
    if target == "textproto":
        return [(shapes / "pipeline.config").read_bytes(), (shapes / "label_map.pbtxt").read_bytes()]
    if target == "label_map":
        return [(shapes / "label_map.pbtxt").read_bytes(), b"item { id: 0 name: 'background' }\nitem < id: 1 name: 'a' >\n"]
    if target == "tfrecord":  # two real records (images included), and one record of each damage the reader names
        with open(shapes / "val.record", "rb") as f:
            records = [r for _, r in zip(range(2), iter_records(shapes / "val.record"))]
            head = f.read(records[1].offset + 12 + records[1].length + 4)
        return [head, head[: records[1].offset + 20], head[: records[0].offset + 5]]
    raise KeyError(target)


def _tensor_protos() -> list[bytes]:
    out = []
    for _, value in _v1_data():  # SavedSlice: field 3 is the TensorProto
        for field, wire, inner in iter_fields(value):
            if field == 2 and wire == LENGTH:
                out += [bytes(v) for f, w, v in iter_fields(inner) if f == 3 and w == LENGTH]
    return out


DTYPES_INDEX = {DTYPES[e][0]: i for i, e in enumerate(_DTYPE_ENUMS)}
_V1_DATA = _v1_data()
(_SCRATCH / "b").mkdir(exist_ok=True)
shutil.copy(_fixtures() / "dtypes" / "model.ckpt.data-00000-of-00001", _SCRATCH / "b" / "ckpt.data-00000-of-00001")

