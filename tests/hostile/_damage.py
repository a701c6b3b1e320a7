"""Ways to break a real file: copy a fixture first, then damage it here.

Nothing is written from scratch: tables are re-written with ckptkit's own
TableWriter/write_index/encode_entry, blocks are patched in place with their
crc32c recomputed (so the reader gets past the checksum to the part under test).
"""
from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import cramjam

from migrate._formats._bundle import BundleReader
from migrate._formats._crc import crc32c, mask
from migrate._formats._proto import LENGTH, iter_fields, read_varint
from migrate._formats._table import FOOTER_SIZE, MAGIC, TRAILER_SIZE, Table
from migrate._formats._write import TableWriter, encode_shape, field_bytes, field_varint, varint, write_index


def flip(path: Path, at: float | int) -> None:
    """Invert one byte: ``at`` is a fraction of the file or a byte offset (negative: from the end)."""
    data = bytearray(path.read_bytes())
    data[int(len(data) * at) if isinstance(at, float) else at] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path, keep: float | int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])


# -- bundle indexes ---------------------------------------------------------------
def rewrite_index(prefix: Path, change, num_shards: int | None = None) -> None:
    """Rewrite ``PREFIX.index`` after ``change(entries)`` edited its name -> BundleEntry dict."""
    with BundleReader(prefix) as reader:
        entries, pieces, shards = dict(reader._entries), dict(reader._pieces), reader.num_shards
    change(entries, pieces) if change.__code__.co_argcount == 2 else change(entries)
    write_index(Path(f"{prefix}.index"), entries, shards if num_shards is None else num_shards, pieces)


def edit_entry(prefix: Path, pick, **fields) -> str:
    """Change fields of one entry (``pick(names)`` chooses it); returns its name."""
    chosen = []

    def change(entries):
        name = pick(sorted(entries))
        entries[name] = dataclasses.replace(entries[name], **fields)
        chosen.append(name)

    rewrite_index(prefix, change)
    return chosen[0]


def first_weight(names) -> str:
    return next(n for n in names if n.endswith("/weights"))


def table_items(path: Path) -> list[tuple[bytes, bytes]]:
    with Table(path) as table:
        return [(bytes(k), bytes(v)) for k, v in table.items()]


def write_table(path: Path, items, writer=TableWriter) -> None:
    with writer(path) as table:
        for key, value in sorted(items):
            table.add(key, value)


def raw_entry(prefix: Path, pick, edit) -> None:
    """Rewrite the encoded BundleEntryProto bytes of one entry with ``edit(bytes) -> bytes``."""
    index = Path(f"{prefix}.index")
    items = table_items(index)
    names = sorted(k.decode() for k, _ in items if k and k[:1] != b"\x00")
    wanted = pick(names).encode()
    write_table(index, [(k, edit(v) if k == wanted else v) for k, v in items])


# -- blocks, footers ----------------------------------------------------------------
def layout(path: Path) -> dict:
    """Offsets of the table's blocks: data block handles, the index block and the footer."""
    data = path.read_bytes()
    footer = len(data) - FOOTER_SIZE
    _, pos = read_varint(data, footer)  # metaindex offset, size
    _, pos = read_varint(data, pos)
    index_offset, pos = read_varint(data, pos)
    index_size, _ = read_varint(data, pos)
    with Table(path) as table:
        blocks = list(table._index_handles)
    return {"blocks": blocks, "index": (index_offset, index_size), "footer": footer}


def patch_block(path: Path, handle: tuple[int, int], edit, kind: int | None = None) -> None:
    """Replace a block's bytes by ``edit(block)`` (same length), optionally its type byte; recompute its crc."""
    offset, size = handle
    data = bytearray(path.read_bytes())
    block = bytes(edit(bytes(data[offset : offset + size])))
    if len(block) != size:
        raise ValueError("patch_block keeps a block's length; use a writer to change it")
    kind = data[offset + size] if kind is None else kind
    data[offset : offset + size + TRAILER_SIZE] = block + bytes([kind]) + struct.pack("<I", mask(crc32c(bytes([kind]), crc32c(block))))
    path.write_bytes(bytes(data))


def set_footer(path: Path, index_handle: tuple[int, int] | None = None, raw: bytes | None = None) -> None:
    """Rewrite the footer's handles (metaindex kept), or its first 40 bytes with ``raw``."""
    data = bytearray(path.read_bytes())
    footer = len(data) - FOOTER_SIZE
    if raw is None:
        meta_offset, pos = read_varint(data, footer)
        meta_size, _ = read_varint(data, pos)
        raw = (varint(meta_offset) + varint(meta_size) + varint(index_handle[0]) + varint(index_handle[1])).ljust(40, b"\x00")
    data[footer:] = raw[:40] + struct.pack("<Q", MAGIC)
    path.write_bytes(bytes(data))


def add_block(path: Path, body: bytes) -> tuple[int, int]:
    """Insert a raw block (with a valid trailer) just before the footer; return its handle."""
    data = path.read_bytes()
    at = len(data) - FOOTER_SIZE
    trailer = b"\x00" + struct.pack("<I", mask(crc32c(b"\x00", crc32c(body))))
    path.write_bytes(data[:at] + body + trailer + data[at:])
    return at, len(body)


def cut_keep_footer(path: Path, at: int) -> None:
    """Cut the file at byte ``at`` but keep its footer (so the reader trusts handles that now run past the end)."""
    data = path.read_bytes()
    path.write_bytes(data[:at] + data[-FOOTER_SIZE:])


class SnappyTableWriter(TableWriter):
    """TableWriter whose data blocks are snappy-compressed, as TF2's writers do; can lie about the size."""

    claim: int | None = None  # declared uncompressed size written into every block header
    garble: bool = False  # corrupt the compressed payload (after the header)

    def _write_block(self, entries) -> bytes:
        if not entries:  # metaindex: leave it raw
            return super()._write_block(entries)
        offset = self._out.tell()
        packed = bytes(cramjam.snappy.compress_raw(_block_body(entries)))
        if self.claim is not None:
            _, header_end = read_varint(packed, 0)
            packed = varint(self.claim) + packed[header_end:]
        if self.garble:
            packed = packed[:2] + bytes(b ^ 0x5A for b in packed[2:])
        self._out.write(packed + b"\x01" + struct.pack("<I", mask(crc32c(b"\x01", crc32c(packed)))))
        return varint(offset) + varint(len(packed))


def _block_body(entries) -> bytes:
    """The uncompressed block TableWriter writes (restarts at every entry: simplest valid layout)."""
    body, restarts = bytearray(), []
    for key, value in entries:
        restarts.append(len(body))
        body += varint(0) + varint(len(key)) + varint(len(value)) + key + value
    return bytes(body) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def snappy_writer(claim: int | None = None, garble: bool = False):
    return type("Writer", (SnappyTableWriter,), {"claim": claim, "garble": garble})


# -- V1 metadata (SavedTensorSlices under the empty key) --------------------------
def v1_tensors(path: Path) -> tuple[list[dict], bytes, list]:
    """(tensors as dicts of name/shape/dtype/slices, other meta fields raw, every table item)."""
    items = table_items(path)
    header = dict(items)[b""]
    tensors, rest = [], b""
    for field, wire, value in iter_fields(header):
        if field == 1 and wire == LENGTH:
            for sub, sub_wire, tensor in iter_fields(value):
                if sub == 1 and sub_wire == LENGTH:
                    tensors.append(_v1_tensor(tensor))
                else:
                    rest += field_bytes(sub, bytes(tensor)) if sub_wire == LENGTH else b""
    return tensors, rest, items


def _v1_tensor(buf) -> dict:
    out = {"slices": []}
    for field, wire, value in iter_fields(buf):
        if field == 1:
            out["name"] = bytes(value)
        elif field == 2:
            out["shape"] = bytes(value)
        elif field == 3:
            out["dtype"] = value
        elif field == 4:
            out["slices"].append(bytes(value))
    return out


def write_v1(path: Path, tensors: list[dict], rest: bytes, items) -> None:
    meta = b""
    for t in tensors:
        shape = t["shape"] if isinstance(t["shape"], bytes) else encode_shape(t["shape"])
        body = field_bytes(1, t["name"]) + field_bytes(2, shape) + field_varint(3, t["dtype"])
        meta += field_bytes(1, body + b"".join(field_bytes(4, s) for s in t["slices"]))
    write_table(path, [(k, field_bytes(1, meta + rest) if k == b"" else v) for k, v in items])


def edit_v1(path: Path, edit) -> None:
    """``edit(tensors)`` changes the metadata list in place; the table is rewritten."""
    tensors, rest, items = v1_tensors(path)
    edit(tensors)
    write_v1(path, tensors, rest, items)
