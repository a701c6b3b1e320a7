"""Write a V2 checkpoint that reuses existing data shards.

A rename does not move tensor bytes: source shards become shards 0..S-1 of
the output by hard link (or copy, across file systems) and keep their
offsets; tensors whose bytes really change are streamed, one at a time, into
one new shard S.  Only the index is written from scratch.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ._bundle import BundleEntry, shard_path
from ._crc import crc32c, mask
from ._dtypes import numpy_to_name
from ._write import varint, write_index


class BundleWriter:
    """Collect entries for ``prefix``; :meth:`close` writes the index."""

    def __init__(self, prefix: Path, reuse_shards: list[Path] = (), copy: bool = False):
        self.prefix = Path(prefix)
        self.num_shards = len(reuse_shards) + 1
        self.reuse = {}  # shard id -> "linked" | "copied"
        for shard, source in enumerate(reuse_shards):
            self.reuse[shard] = _link_or_copy(source, shard_path(self.prefix, shard, self.num_shards), copy)
        self._new_shard = len(reuse_shards)
        self._out = open(shard_path(self.prefix, self._new_shard, self.num_shards), "wb")
        self._entries: dict[str, BundleEntry] = {}
        self.bytes_written = 0

    def add_existing(self, key: str, entry: BundleEntry) -> None:
        """Point ``key`` at bytes already in a reused shard."""
        if entry.shard not in self.reuse or entry.slices:
            raise ValueError(f"{key}: only whole tensors in reused shards can be referenced")
        self._entries[key] = entry

    def add_array(self, key: str, value: np.ndarray) -> BundleEntry:
        """Append ``value``'s bytes to the new shard."""
        if value.dtype == object:
            return self.add_strings(key, value)
        data = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False)
        raw = memoryview(data).cast("B") if data.size else b""
        entry = BundleEntry(numpy_to_name(value.dtype), tuple(value.shape), self._new_shard,
                            self._out.tell(), len(raw), mask(crc32c(raw)), ())
        self._out.write(raw)
        return self._add(key, entry)

    def add_chunks(self, key: str, dtype: np.dtype, shape: tuple[int, ...], chunks) -> BundleEntry:
        """Append a tensor given as consecutive pieces of its flattened value, never holding it whole."""
        dtype = np.dtype(dtype)
        offset, size, crc = self._out.tell(), 0, 0
        for chunk in chunks:
            data = np.ascontiguousarray(chunk)
            if data.dtype.newbyteorder("=") != dtype.newbyteorder("="):
                raise ValueError(f"{key}: a {data.dtype.name} piece of a {dtype.name} tensor")
            data = data.astype(data.dtype.newbyteorder("<"), copy=False)
            raw = memoryview(data).cast("B") if data.size else b""
            crc = crc32c(raw, crc)
            size += len(raw)
            self._out.write(raw)
        expected = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        if size != expected:
            raise ValueError(f"{key}: {size} bytes written for a {dtype.name}{list(shape)} tensor of {expected} bytes")
        return self._add(key, BundleEntry(numpy_to_name(dtype), tuple(shape), self._new_shard, offset, size, mask(crc), ()))

    def add_strings(self, key: str, values) -> BundleEntry:
        """Append a string tensor in TensorFlow's layout (varint lengths, their crc, bytes)."""
        array = np.asarray(values, dtype=object)
        items = [bytes(v) for v in array.reshape(-1)]
        lengths = b"".join(varint(len(v)) for v in items)
        crc = 0
        for v in items:  # TensorFlow checksums lengths as uint32 (uint64 past 4 GiB)
            crc = crc32c(len(v).to_bytes(4 if len(v) <= 0xFFFFFFFF else 8, "little"), crc)
        length_crc = mask(crc).to_bytes(4, "little")
        crc = crc32c(length_crc, crc)
        for v in items:
            crc = crc32c(v, crc)
        raw = lengths + length_crc + b"".join(items)
        entry = BundleEntry("string", tuple(array.shape), self._new_shard, self._out.tell(), len(raw), mask(crc), ())
        self._out.write(raw)
        return self._add(key, entry)

    def _add(self, key: str, entry: BundleEntry) -> BundleEntry:
        if key in self._entries:
            raise ValueError(f"two tensors would be written under {key!r}")
        self._entries[key] = entry
        self.bytes_written += entry.size
        return entry

    def close(self) -> None:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        write_index(Path(f"{self.prefix}.index"), self._entries, self.num_shards)

    def abort(self) -> None:
        self._out.close()


def _link_or_copy(source: Path, target: Path, copy: bool = False) -> str:
    if not copy:
        try:
            os.link(source, target)
            return "linked"
        except OSError:  # another file system, or links not allowed: copy the bytes
            pass
    shutil.copyfile(source, target)
    return "copied"
