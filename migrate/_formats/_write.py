"""Writers for the tensor-bundle index: protobuf fields and the sorted table.

Blocks restart prefix compression every 16 entries (as LevelDB does), carry
a masked crc32c, and are uncompressed (TensorFlow reads both kinds).
"""
from __future__ import annotations

import struct
from pathlib import Path

from ._bundle import BundleEntry
from ._crc import crc32c, mask
from ._dtypes import DTYPES
from ._table import MAGIC

BLOCK_BYTES = 4096
RESTART_INTERVAL = 16
_DTYPE_ENUM = {name: enum for enum, (name, _) in DTYPES.items()}


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def field_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + struct.pack("<I", value)


def encode_shape(shape) -> bytes:
    return b"".join(field_bytes(2, field_varint(1, d) if d else b"") for d in shape)


def encode_slice(extents) -> bytes:
    out = b""
    for start, length in extents:
        body = (field_varint(1, start) if start else b"") + (field_varint(2, length) if length != -1 else b"")
        out += field_bytes(1, body)
    return out


def encode_entry(entry: BundleEntry) -> bytes:
    out = field_varint(1, _DTYPE_ENUM[entry.dtype]) + field_bytes(2, encode_shape(entry.shape))
    for number, value in ((3, entry.shard), (4, entry.offset), (5, entry.size)):
        if value:
            out += field_varint(number, value)
    if entry.crc is not None:
        out += field_fixed32(6, entry.crc)
    return out + b"".join(field_bytes(7, encode_slice(s)) for s in entry.slices)


def encode_header(num_shards: int) -> bytes:
    return field_varint(1, num_shards) + field_bytes(3, field_varint(1, 1))  # version.producer = 1


class TableWriter:
    """Write sorted (key, value) pairs as a table file."""

    def __init__(self, path: Path):
        self._out = open(path, "wb")
        self._index: list[tuple[bytes, bytes]] = []
        self._block: list[tuple[bytes, bytes]] = []
        self._block_size = 0
        self._last = None

    def add(self, key: bytes, value: bytes) -> None:
        if self._last is not None and key <= self._last:
            raise ValueError(f"table keys must be added in increasing order: {key!r} after {self._last!r}")
        self._last = key
        self._block.append((key, value))
        self._block_size += len(key) + len(value) + 8
        if self._block_size >= BLOCK_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._block:
            handle = self._write_block(self._block)
            self._index.append((self._block[-1][0], handle))
            self._block, self._block_size = [], 0

    def _write_block(self, entries) -> bytes:
        body, restarts, previous = bytearray(), [], b""
        for i, (key, value) in enumerate(entries):
            shared = 0
            if i % RESTART_INTERVAL == 0:
                restarts.append(len(body))
            else:
                while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                    shared += 1
            body += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
            previous = key
        restarts = restarts or [0]
        body += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
        offset = self._out.tell()
        self._out.write(body + b"\x00" + struct.pack("<I", mask(crc32c(b"\x00", crc32c(bytes(body))))))
        return varint(offset) + varint(len(body))

    def close(self) -> None:
        self._flush()
        metaindex = self._write_block([])
        index = self._write_block(self._index)
        footer = (metaindex + index).ljust(40, b"\x00") + struct.pack("<Q", MAGIC)
        self._out.write(footer)
        self._out.close()

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None:
            self.close()
        else:
            self._out.close()


def write_index(path: Path, entries: dict[str, BundleEntry], num_shards: int = 1, pieces: dict[bytes, BundleEntry] | None = None) -> None:
    """Write a bundle ``.index`` with a header and the given entries."""
    items = [(b"", encode_header(num_shards))]
    items += [(k, encode_entry(e)) for k, e in (pieces or {}).items()]
    items += [(name.encode("utf-8", "surrogateescape"), encode_entry(e)) for name, e in entries.items()]
    with TableWriter(path) as table:
        for key, value in sorted(items):
            table.add(key, value)
