"""Corpus: data shards, V1 single files, the TF2 object graph (convert writes its own)."""
from __future__ import annotations

import os

from migrate._formats._bundle import OBJECT_GRAPH_KEY, BundleReader
from migrate._formats._write import field_bytes, field_varint, varint

from ._case import case
from ._cases_tables import BASE, INSPECT, SHARD, _prefix
from ._damage import (cut_keep_footer, edit_entry, edit_v1, flip, layout, rewrite_index, table_items, truncate,
                      v1_tensors, write_table, write_v1)


# -- data shards -----------------------------------------------------------------------------
@case("v2-data", BASE, INSPECT, SHARD + r"tensor .* needs bytes up to \d+ but the file has \d+")
def data_truncated(box):
    truncate(box.inp / "model.ckpt.data-00000-of-00001", 0.5)


@case("v2-data", BASE, INSPECT, SHARD + r"data shard is missing")
def data_missing(box):
    (box.inp / "model.ckpt.data-00000-of-00001").unlink()


@case("v2-data", "sharded", INSPECT, r"model\.ckpt\.data-00001-of-00002: data shard is missing")
def data_one_shard_missing(box):
    (box.inp / "model.ckpt.data-00001-of-00002").unlink()


@case("v2-data", BASE, "ckpt-migrate inspect --verify {in}", SHARD + r"tensor .* fails its crc32c check")
def data_flipped_verify(box):
    flip(box.inp / "model.ckpt.data-00000-of-00001", 0.5)


@case("v2-data", BASE, "ckpt-migrate inspect --stats {in}", SHARD + r"tensor .* fails its crc32c check")
def data_flipped_stats(box):
    flip(box.inp / "model.ckpt.data-00000-of-00001", 0.5)


@case("v2-data", BASE, "ckpt-migrate convert {in} --out {out}/conv", SHARD + r"tensor .* needs bytes up to \d+")
def data_truncated_convert(box):
    truncate(box.inp / "model.ckpt.data-00000-of-00001", 0.9)


@case("v2-data", BASE, "ckpt-migrate inspect --stats {in}", SHARD + r"data shard is not a regular file")
def data_shard_is_fifo(box):
    """A FIFO shard whose tensors are all empty: opening it to read would block for ever."""
    rewrite_index(_prefix(box), lambda e: [e.__setitem__(n, type(x)(x.dtype, (0,) + x.shape[1:], 0, 0, 0, x.crc, ()))
                                          for n, x in list(e.items())])
    shard = box.inp / "model.ckpt.data-00000-of-00001"
    shard.unlink()
    os.mkfifo(shard)


@case("v2-data", BASE, INSPECT, SHARD + r"data shard is not a regular file")
def data_shard_is_directory(box):
    shard = box.inp / "model.ckpt.data-00000-of-00001"
    shard.unlink()
    shard.mkdir()


@case("v2-data", "dtypes", "ckpt-migrate inspect --verify {in}", r"string tensor dtypes/string: (corrupt lengths|lengths exceed)")
def data_string_lengths_huge(box):
    shard = box.inp / "model.ckpt.data-00000-of-00001"
    with BundleReader(_prefix(box)) as reader:
        entry = reader.entry("dtypes/string")
    data = bytearray(shard.read_bytes())
    data[entry.offset : entry.offset + 9] = varint(1 << 60)[:9]  # the first length claims an exabyte
    shard.write_bytes(bytes(data))


# -- V1 single files -----------------------------------------------------------------------
V1 = "ckpt-migrate inspect {in}/vgg_16.ckpt"
V1_FILE = r"vgg_16\.ckpt: "


def _v1(box):
    return box.inp / "vgg_16.ckpt"


@case("v1", "vgg_16_v1", V1, V1_FILE + r"binary data, not a checkpoint")
def v1_truncated(box):
    truncate(_v1(box), 0.6)


@case("v1", "vgg_16_v1", V1, V1_FILE + r"binary data, not a checkpoint")
def v1_wrong_magic(box):
    flip(_v1(box), -2)


@case("v1", "vgg_16_v1", V1, V1_FILE + r"block at \d+\+\d+ runs past the end of the file")
def v1_truncated_keep_footer(box):
    cut_keep_footer(_v1(box), layout(_v1(box))["blocks"][-1][0])


@case("v1", "vgg_16_v1", "ckpt-migrate inspect --verify {in}/vgg_16.ckpt", V1_FILE + r"block at offset \d+ fails its crc32c check")
def v1_flipped_data_block(box):
    flip(_v1(box), 0.5)


@case("v1", "vgg_16_v1", V1, V1_FILE + r"table has no V1 checkpoint metadata")
def v1_no_metadata(box):
    write_table(_v1(box), [(k, v) for k, v in table_items(_v1(box)) if k])


@case("v1", "vgg_16_v1", "ckpt-migrate inspect --stats {in}/vgg_16.ckpt",
      V1_FILE + r"tensor \S+ declares \d+ elements .*but the file has \d+ bytes")
def v1_huge_shape(box):
    """A few values in the file, a shape of 2**40 elements: TensorProto's fill rule must not allocate them."""
    edit_v1(_v1(box), lambda ts: [t.update(shape=(1 << 40,)) for t in ts if t["name"].endswith(b"fc8/biases")])


@case("v1", "vgg_16_v1", V1, V1_FILE + r"tensor \S+ has negative dimension")
def v1_negative_dimension(box):
    edit_v1(_v1(box), lambda ts: ts[0].update(shape=(-5,)))


@case("v1", "vgg_16_v1", V1, V1_FILE + r"tensor \S+: unknown TensorFlow dtype enum 77")
def v1_unknown_dtype(box):
    edit_v1(_v1(box), lambda ts: ts[0].update(dtype=77))


@case("v1", "vgg_16_v1", V1, V1_FILE + r"tensor \S+: unknown TensorFlow dtype enum 9223372036854775808")
def v1_dtype_enum_huge(box):  # found by fuzzing (as index_dtype_enum_huge)
    edit_v1(_v1(box), lambda ts: ts[0].update(dtype=1 << 63))


@case("v1", "vgg_16_v1", "ckpt-migrate inspect --stats {in}/vgg_16.ckpt",
      V1_FILE + r"tensor global_step: a stored value does not fit uint8")
def v1_value_overflows_dtype(box):
    """Found by fuzzing: int64_val [256] read as uint8 raised OverflowError."""
    tensors, rest, items = v1_tensors(_v1(box))
    next(t for t in tensors if t["name"] == b"global_step").update(dtype=4)
    key = next(k for k, _ in items if k[1:12] == b"global_step")
    proto = field_bytes(10, varint(256))  # TensorProto.int64_val, packed
    value = field_bytes(2, field_bytes(1, b"global_step") + field_bytes(2, b"") + field_bytes(3, proto))
    write_v1(_v1(box), tensors, rest, [(k, value if k == key else v) for k, v in items])


@case("v1", "vgg_16_v1", "ckpt-migrate inspect --verify {in}/vgg_16.ckpt",
      V1_FILE + r"tensor \S+: dtype resource holds no values")
def v1_resource_dtype(box):
    """Found by fuzzing: a V1 tensor of dtype resource had no numpy dtype to decode into (AttributeError)."""
    edit_v1(_v1(box), lambda ts: [t.update(dtype=20) for t in ts if t["name"].endswith(b"conv1_1/biases")])


@case("v1", "vgg_16_v1", V1, V1_FILE + r"tensor name 'vgg\\xff' is not valid UTF-8")
def v1_non_utf8_name(box):
    edit_v1(_v1(box), lambda ts: ts[0].update(name=b"vgg\xff"))


@case("v1", "vgg_16_v1", "ckpt-migrate inspect --stats {in}/vgg_16.ckpt", V1_FILE + r"slice \[.*\] of \S+ is listed but not stored")
def v1_slice_missing(box):
    items = table_items(_v1(box))
    write_table(_v1(box), [(k, v) for k, v in items if b"conv1/conv1_1/biases" not in k])


@case("v1", "vgg_16_v1", "ckpt-migrate inspect --stats {in}/vgg_16.ckpt",
      V1_FILE + r"tensor \S+: (tensor_content holds|holds \d+ values)")
def v1_value_count_mismatch(box):
    edit_v1(_v1(box), lambda ts: [t.update(shape=(3,)) for t in ts if t["name"].endswith(b"conv1_1/biases")])


# -- the TF2 object graph: convert writes its own; a hostile one is never decoded --------------
def _replace_graph(box, graph: bytes) -> None:
    prefix = box.inp / "ckpt-1"

    def change(entries):
        entry = entries[OBJECT_GRAPH_KEY]
        shard = box.inp / "ckpt-1.data-00000-of-00001"
        with open(shard, "ab") as f:
            offset = f.tell()
            raw = varint(len(graph)) + b"\x00\x00\x00\x00" + graph  # the length crc is not what we test
            f.write(raw)
        entries[OBJECT_GRAPH_KEY] = type(entry)("string", (), entry.shard, offset, len(raw), None, ())
    rewrite_index(prefix, change)


def _node(*children: tuple[int, str]) -> bytes:
    return field_bytes(1, b"".join(field_bytes(1, field_varint(1, i) + field_bytes(2, n.encode())) for i, n in children))


TF2_CONVERT = "ckpt-migrate convert {in} --out {out}/conv"


@case("objgraph", "tf2_object", TF2_CONVERT, None, exit=0, stdout=r"generic")
def objgraph_cyclic(box):
    _replace_graph(box, _node((1, "a")) + _node((0, "back"), (1, "self")))


@case("objgraph", "tf2_object", TF2_CONVERT, None, exit=0, stdout=r"generic")
def objgraph_dangling_child(box):
    _replace_graph(box, _node((1 << 40, "nowhere")))


@case("objgraph", "tf2_object", TF2_CONVERT, None, exit=0, stdout=r"generic")
def objgraph_deeply_nested(box):
    nested = b"x"
    for _ in range(20000):
        nested = field_bytes(1, nested)
    _replace_graph(box, field_bytes(1, nested))


@case("objgraph", "tf2_object", "ckpt-migrate inspect --verify {in}",
      r"ckpt-1\.data-00000-of-00001: .*_CHECKPOINTABLE_OBJECT_GRAPH|string tensor _CHECKPOINTABLE_OBJECT_GRAPH: ")
def objgraph_huge_declared_count(box):
    """The graph tensor declares 2**40 strings: reading must stop at the stored bytes."""
    edit_entry(box.inp / "ckpt-1", lambda names: OBJECT_GRAPH_KEY, shape=(1 << 20, 1 << 20))

