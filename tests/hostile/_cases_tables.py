"""Corpus: the table format under a V2 .index (footer, index block, data blocks, trailers, snappy), the bundle
header and its entries, partitioned slices."""
from __future__ import annotations

from migrate._formats._write import field_bytes, field_varint, varint

from ._case import case
from ._damage import (add_block, cut_keep_footer, edit_entry, first_weight, flip, layout, patch_block, raw_entry,
                      rewrite_index, set_footer, snappy_writer, table_items, truncate, write_table)

BASE = "mobilenet_v1_small"  # IN holds checkpoint, model.ckpt.{index,data-00000-of-00001,meta}
INSPECT = "ckpt-migrate inspect {in}"
INDEX = r"model\.ckpt\.index: "
SHARD = r"model\.ckpt\.data-00000-of-00001: "


def _index(box):
    return box.inp / "model.ckpt.index"


def _prefix(box):
    return box.inp / "model.ckpt"


# -- the table: footer, index block, data blocks, trailers ---------------------------------
@case("v2-index", BASE, INSPECT, INDEX + r".*(magic|truncated)")
def index_truncated_half(box):
    truncate(_index(box), 0.5)


@case("v2-index", BASE, INSPECT, INDEX + r"20 bytes is shorter than the 48-byte table footer")
def index_shorter_than_footer(box):
    _index(box).write_bytes(b"\x00" * 20)


@case("v2-index", BASE, INSPECT, INDEX + r"bad table magic number")
def index_truncated_at_footer(box):
    truncate(_index(box), layout(_index(box))["footer"])  # ends where the footer would start


@case("v2-index", BASE, INSPECT, INDEX + r"bad table magic number")
def index_truncated_inside_footer(box):
    truncate(_index(box), -10)


@case("v2-index", BASE, INSPECT, INDEX + r"block at \d+\+\d+ runs past the end of the file")
def index_truncated_at_index_block(box):
    cut_keep_footer(_index(box), layout(_index(box))["index"][0])


@case("v2-index", BASE, INSPECT, INDEX + r"block at \d+\+\d+ runs past the end of the file")
def index_truncated_in_data_block(box):
    offset, size = layout(_index(box))["blocks"][0]
    cut_keep_footer(_index(box), offset + size // 2)


@case("v2-index", BASE, INSPECT, INDEX + r"block at \d+\+\d+ runs past the end of the file")
def index_truncated_in_block_trailer(box):
    offset, size = layout(_index(box))["blocks"][0]
    cut_keep_footer(_index(box), offset + size + 2)  # type byte kept, crc cut


@case("v2-index", BASE, INSPECT, INDEX + r"bad table magic number")
def index_wrong_magic(box):
    flip(_index(box), -1)


@case("v2-index", BASE, INSPECT, INDEX + r"corrupt footer: varint longer than 10 bytes")
def index_footer_garbage(box):
    set_footer(_index(box), raw=b"\xff" * 40)


@case("v2-index", BASE, INSPECT, INDEX + r"block at \d+\+\d+ runs past the end of the file")
def index_footer_handle_past_end(box):
    set_footer(_index(box), index_handle=(1 << 40, 1 << 40))


@case("v2-index", BASE, INSPECT, INDEX + r"block at \d+\+\d+ runs past the end of the file")
def index_footer_negative_offset(box):
    set_footer(_index(box), index_handle=((1 << 64) - 8, 16))  # -8 as a varint


@case("v2-index", BASE, INSPECT, INDEX + r"block shorter than its restart count")
def index_block_shorter_than_restarts(box):
    set_footer(_index(box), index_handle=add_block(_index(box), b"\x00\x00"))


@case("v2-index", BASE, INSPECT, INDEX + r"block at offset \d+ fails its crc32c check")
def index_flipped_byte(box):
    flip(_index(box), 0.3)  # inside the data block


@case("v2-index", BASE, INSPECT, INDEX + r"block at offset \d+ fails its crc32c check")
def index_flipped_trailer_crc(box):
    offset, size = layout(_index(box))["blocks"][0]
    flip(_index(box), offset + size + 3)


@case("v2-index", BASE, INSPECT, INDEX + r"block at offset \d+ fails its crc32c check")
def index_flipped_index_block(box):
    offset, size = layout(_index(box))["index"]
    flip(_index(box), offset + size // 2)


@case("v2-index", BASE, INSPECT, INDEX + r"block at offset 0 has unknown compression type 7")
def index_unknown_block_type(box):
    patch_block(_index(box), layout(_index(box))["blocks"][0], lambda b: b, kind=7)


@case("v2-index", BASE, INSPECT, INDEX + r"block claims 4294967295 restart points, more than fit")
def index_huge_restart_count(box):
    patch_block(_index(box), layout(_index(box))["blocks"][0], lambda b: b[:-4] + b"\xff\xff\xff\xff")


@case("v2-index", BASE, INSPECT, INDEX + r"block entry at \d+ overruns its block")
def index_entry_overruns_block(box):
    # keep the header entry only: shared=0, unshared=0 (its key is empty), then its value length -> 127
    write_table(_index(box), table_items(_index(box))[:1])
    patch_block(_index(box), layout(_index(box))["blocks"][0], lambda b: b[:2] + b"\x7f" + b[3:])


@case("v2-index", BASE, INSPECT, INDEX + r"snappy block at offset \d+ claims 1099511627776 bytes from \d+")
def index_snappy_claims_huge_size(box):
    write_table(_index(box), table_items(_index(box)), snappy_writer(claim=1 << 40))


@case("v2-index", BASE, INSPECT, INDEX + r"snappy block at offset \d+ does not decompress")
def index_snappy_garbage(box):
    write_table(_index(box), table_items(_index(box)), snappy_writer(garble=True))


@case("v2-index", BASE, INSPECT, None, exit=0, stdout=r"format: tf1-v2 +tensors: 138")
def index_snappy_valid(box):  # control: TF2 writers compress index blocks; the reader must follow
    write_table(_index(box), table_items(_index(box)), snappy_writer())


# -- the bundle header and entries --------------------------------------------------------
@case("v2-index", BASE, INSPECT, INDEX + r"no bundle header")
def index_no_header(box):
    write_table(_index(box), [(k, v) for k, v in table_items(_index(box)) if k])


@case("v2-index", BASE, INSPECT, INDEX + r"header declares 0 data shards")
def index_zero_shards(box):
    rewrite_index(_prefix(box), lambda entries: None, num_shards=0)


@case("v2-index", BASE, INSPECT, INDEX + r"header declares 4294967296 data shards")
def index_huge_shard_count(box):
    rewrite_index(_prefix(box), lambda entries: None, num_shards=1 << 32)


@case("v2-index", BASE, INSPECT, INDEX + r"big-endian checkpoints are not supported")
def index_big_endian(box):
    write_table(_index(box), [(k, v + field_varint(2, 1) if not k else v) for k, v in table_items(_index(box))])


@case("v2-index", BASE, INSPECT, INDEX + r"tensor name 'bad\\xff\\xfename' is not valid UTF-8")
def index_non_utf8_name(box):
    rewrite_index(_prefix(box), lambda e: e.__setitem__("bad\udcff\udcfename", e.pop(first_weight(sorted(e)))))


@case("v2-index", BASE, INSPECT, INDEX + r"tensor \S+ has negative dimension in shape \[-1, 3\]")
def index_negative_dimension(box):
    edit_entry(_prefix(box), first_weight, shape=(-1, 3))


@case("v2-index", BASE, INSPECT, INDEX + r"tensor \S+ declares shape \[.*\] \(\d+ bytes of float32\) but \d+ stored bytes")
def index_size_does_not_match_shape(box):
    edit_entry(_prefix(box), first_weight, shape=(3, 3, 3, 9))


@case("v2-index", BASE, "ckpt-migrate inspect --stats {in}",
      r"declares shape \[2147483648, 2147483648, 1048576\] \(\d+ bytes of float32\) but \d+ stored bytes")
def index_absurd_shape(box):
    edit_entry(_prefix(box), first_weight, shape=(1 << 31, 1 << 31, 1 << 20))


@case("v2-index", BASE, "ckpt-migrate inspect --stats {in}", SHARD + r"tensor \S+ needs bytes up to \d{15,} but the file has \d+")
def index_absurd_size(box):
    edit_entry(_prefix(box), first_weight, shape=(1 << 46,), size=1 << 48)


@case("v2-index", BASE, INSPECT, SHARD + r"tensor \S+ needs bytes up to 1844674407370955\d+ but the file has \d+")
def index_negative_offset(box):
    edit_entry(_prefix(box), first_weight, offset=-1)  # stored as the varint of 2**64 - 1


@case("v2-index", BASE, INSPECT, INDEX + r"tensor \S+ is in shard 7 of 1")
def index_shard_out_of_range(box):
    edit_entry(_prefix(box), first_weight, shard=7)


@case("v2-index", BASE, "ckpt-migrate inspect --verify {in}", SHARD + r"tensor \S+ fails its crc32c check")
def index_overlapping_offsets(box):
    def change(entries):
        names = [n for n in sorted(entries) if n.endswith("/weights")]
        a, b = entries[names[0]], entries[names[1]]
        entries[names[1]] = type(b)(b.dtype, b.shape, b.shard, a.offset + 4, b.size, b.crc, b.slices)
    rewrite_index(_prefix(box), change)


@case("v2-index", BASE, INSPECT, INDEX + r"unknown TensorFlow dtype enum 99")
def index_unknown_dtype_enum(box):
    raw_entry(_prefix(box), first_weight, lambda v: field_varint(1, 99) + v[2:])  # v starts with field 1 = DT_FLOAT


@case("v2-index", BASE, INSPECT, INDEX + r"unknown TensorFlow dtype enum 9223372036854775807")
def index_dtype_enum_huge(box):  # found by fuzzing: dtype_name recursed once per 100 of the enum
    raw_entry(_prefix(box), first_weight, lambda v: field_varint(1, (1 << 63) - 1) + v[2:])


@case("v2-index", BASE, INSPECT, INDEX + r"unsupported wire type 7 for field 15")
def index_entry_bad_wire_type(box):
    raw_entry(_prefix(box), first_weight, lambda v: v + varint(15 << 3 | 7))


@case("v2-index", BASE, INSPECT, INDEX + r"field 2 claims \d+ bytes, \d+ left")
def index_entry_truncated_field(box):
    raw_entry(_prefix(box), first_weight, lambda v: v[:2] + field_bytes(2, b"")[:1] + varint(1 << 30) + v[4:])


@case("v2-index", BASE, "ckpt-migrate inspect --stats {in}", None, exit=0, stdout=r"resource")
def index_resource_dtype(box):  # a resource tensor holds no values: reported, not read
    edit_entry(_prefix(box), first_weight, dtype="resource")


@case("v2-index", "partitioned", INSPECT, INDEX + r"slice \[\(0, 22\), \(0, 16\)\] of embedding/weights is listed but not stored")
def slice_piece_missing(box):
    rewrite_index(_prefix(box), lambda entries, pieces: pieces.pop(min(pieces)))


@case("v2-index", "partitioned", INSPECT, INDEX + r"tensor embedding/weights: slice \[0:22\] does not fit dimension 16")
def slice_out_of_range(box):
    def change(entries, pieces):
        e = entries["embedding/weights"]
        entries["embedding/weights"] = type(e)(e.dtype, (16, 16), e.shard, e.offset, e.size, e.crc, e.slices)
    rewrite_index(_prefix(box), change)


@case("v2-index", "partitioned", "ckpt-migrate inspect --stats {in}",
      INDEX + r"tensor embedding/weights declares shape \[1099511627776, 16\] \(17592186044416 elements\) but its slices hold 1024")
def slice_shape_larger_than_pieces(box):
    """Three small pieces of a declared 2**40 x 16 tensor: assembling it would allocate 64 TiB."""
    def change(entries, pieces):
        e = entries["embedding/weights"]
        entries["embedding/weights"] = type(e)(e.dtype, (1 << 40, 16), e.shard, e.offset, e.size, e.crc, e.slices)
    rewrite_index(_prefix(box), change)
