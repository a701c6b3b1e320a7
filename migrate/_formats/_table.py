"""Reader of the sorted string table both checkpoint formats are built on.

TensorFlow's ``core/lib/io/table`` is LevelDB's table format: data blocks of
prefix-compressed key/value entries, an index block of separator keys ->
block handles, and a 48-byte footer ending in a magic number.  Each block is
followed by a type byte (0 raw, 1 snappy) and a masked crc32c.  The file is
read block by block with pread (a memory map would count every page read as
resident), so a V1 checkpoint of hundreds of MB costs one block to open; a
remote table (an fsspec URL) is read the same way, one range request a block.
"""
from __future__ import annotations

import bisect
import struct
from pathlib import Path
from typing import Iterator

import cramjam

from ._crc import crc32c, unmask
from ._proto import ProtoError, read_varint
from ._storage import RandomAccessFile, RemotePath, location

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
_SNAPPY_MAX_RATIO = 32  # snappy cannot expand a block by more than this


class TableError(ValueError):
    """The bytes are not a well-formed table; the message says where."""


def has_table_magic(path: "Path | RemotePath") -> bool:
    try:
        with RandomAccessFile(path) as f:
            if f.size < FOOTER_SIZE:
                return False
            return struct.unpack("<Q", f.pread(8, f.size - 8))[0] == MAGIC
    except OSError:
        return False


class Table:
    """Random and sequential access to one table file (context manager)."""

    def __init__(self, path: "Path | RemotePath", verify_blocks: bool = True):
        self.path = location(path)
        self._verify = verify_blocks
        self._file = RandomAccessFile(self.path)
        try:
            self._size = self._file.size
            if self._size < FOOTER_SIZE:
                raise TableError(f"{self._size} bytes is shorter than the {FOOTER_SIZE}-byte table footer (file truncated?)")
            self._index_keys, self._index_handles = self._read_index()
        except Exception:
            self.close()
            raise

    def _pread(self, size: int, offset: int) -> bytes:
        data = self._file.pread(size, offset)
        if len(data) != size:
            raise TableError(f"short read at offset {offset} (file changed or truncated while reading)")
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read_index(self):
        footer = self._pread(FOOTER_SIZE, self._size - FOOTER_SIZE)
        if struct.unpack_from("<Q", footer, 40)[0] != MAGIC:
            raise TableError("bad table magic number (not a checkpoint table, or truncated)")
        try:
            _, pos = _read_handle(footer, 0)  # metaindex: unused by TensorFlow
            index_handle, _ = _read_handle(footer, pos)
        except ProtoError as e:
            raise TableError(f"corrupt footer: {e}") from e
        keys, handles = [], []
        for key, value in _block_entries(self._block(index_handle)):
            keys.append(key)
            handles.append(_read_handle(value, 0)[0])
        return keys, handles

    def _block(self, handle: tuple[int, int]) -> bytes:
        offset, size = handle
        end = offset + size + TRAILER_SIZE
        if end > self._size - FOOTER_SIZE:
            raise TableError(f"block at {offset}+{size} runs past the end of the file (truncated?)")
        block = self._pread(size + TRAILER_SIZE, offset)
        raw, kind = memoryview(block)[:size], block[size]
        if self._verify:
            stored = unmask(struct.unpack_from("<I", block, size + 1)[0])
            if crc32c(bytes([kind]), crc32c(raw)) != stored:
                raise TableError(f"block at offset {offset} fails its crc32c check (bytes corrupted)")
        if kind == 0:
            return raw
        if kind == 1:
            return _snappy(bytes(raw), offset)
        raise TableError(f"block at offset {offset} has unknown compression type {kind}")

    def items(self) -> Iterator[tuple[bytes, memoryview]]:
        """Every (key, value) in key order."""
        for handle in self._index_handles:
            yield from _block_entries(self._block(handle))

    def get(self, key: bytes):
        """The value stored under ``key``, or None."""
        i = bisect.bisect_left(self._index_keys, key)
        if i == len(self._index_keys):
            return None
        for k, value in _block_entries(self._block(self._index_handles[i])):
            if k == key:
                return value
        return None


def _read_handle(buf, pos: int) -> tuple[tuple[int, int], int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return (offset, size), pos


def _snappy(raw: bytes, offset: int) -> bytes:
    try:
        declared, _ = read_varint(raw, 0)
    except ProtoError as e:
        raise TableError(f"snappy block at offset {offset} has a corrupt header") from e
    if declared > _SNAPPY_MAX_RATIO * len(raw) + 64:
        raise TableError(f"snappy block at offset {offset} claims {declared} bytes from {len(raw)}")
    try:
        return bytes(cramjam.snappy.decompress_raw(raw))
    except Exception as e:  # cramjam raises its own DecompressionError
        raise TableError(f"snappy block at offset {offset} does not decompress: {e}") from e


def _block_entries(block: bytes) -> Iterator[tuple[bytes, memoryview]]:
    view = memoryview(block)
    if len(view) < 4:
        raise TableError("block shorter than its restart count")
    restarts = struct.unpack_from("<I", view, len(view) - 4)[0]
    limit = len(view) - 4 * (restarts + 1)
    if limit < 0:
        raise TableError(f"block claims {restarts} restart points, more than fit")
    pos, key = 0, b""
    try:
        while pos < limit:
            shared, pos = read_varint(view, pos)
            unshared, pos = read_varint(view, pos)
            value_len, pos = read_varint(view, pos)
            if shared > len(key) or pos + unshared + value_len > limit:
                raise TableError(f"block entry at {pos} overruns its block")
            key = key[:shared] + bytes(view[pos : pos + unshared])
            pos += unshared
            yield key, view[pos : pos + value_len]
            pos += value_len
    except ProtoError as e:
        raise TableError(f"corrupt block entry: {e}") from e
