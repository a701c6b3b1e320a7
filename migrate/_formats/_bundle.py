"""Native reader of TensorFlow's V2 checkpoint format (tensor bundle).

``PREFIX.index`` is a table whose empty key holds a BundleHeaderProto and
whose other keys map tensor names to BundleEntryProto (dtype, shape, shard,
offset, size, masked crc32c, slices).  ``PREFIX.data-NNNNN-of-MMMMM`` shards
hold raw little-endian bytes.  Opening reads the index only; tensor bytes are
read on demand (from an fsspec URL: with range requests, see ``_storage``).
"""
from __future__ import annotations

import math
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import CheckpointFormatError, ChecksumError, UnsupportedFeatureError
from ._base import CHUNK_BYTES, ChecksumProblem, CheckpointReader, TensorSpec, decode_name, element_bytes
from ._crc import crc32c, unmask
from ._dtypes import dtype_name, numpy_dtype
from ._proto import FIXED32, LENGTH, VARINT, ProtoError, decode_shape, decode_slice, iter_fields, read_varint
from ._slices import assemble, slice_key, slice_shape
from ._storage import RandomAccessFile, RemotePath, location, shown, with_suffix_added
from ._table import Table, TableError

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


@dataclass(frozen=True)
class BundleEntry:
    dtype: str
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc: int | None  # masked crc32c as stored
    slices: tuple[tuple[tuple[int, int], ...], ...]


def shard_path(prefix: "Path | RemotePath", shard: int, num_shards: int) -> "Path | RemotePath":
    return with_suffix_added(prefix, f".data-{shard:05d}-of-{num_shards:05d}")


def parse_entry(buf) -> BundleEntry:
    fields = {"dtype": 0, "shape": (), "shard": 0, "offset": 0, "size": 0, "crc": None}
    slices = []
    for field, wire, value in iter_fields(buf):
        if field == 1 and wire == VARINT:
            fields["dtype"] = value
        elif field == 2 and wire == LENGTH:
            fields["shape"], _ = decode_shape(value)
        elif field in (3, 4, 5) and wire == VARINT:
            fields[{3: "shard", 4: "offset", 5: "size"}[field]] = value
        elif field == 6 and wire == FIXED32:
            fields["crc"] = value
        elif field == 7 and wire == LENGTH:
            slices.append(decode_slice(value))
    try:
        fields["dtype"] = dtype_name(fields["dtype"])
    except ValueError as e:
        raise ProtoError(str(e)) from e
    return BundleEntry(slices=tuple(slices), **fields)


def _parse_header(buf) -> tuple[int, int]:
    num_shards, endianness = 1, 0
    for field, wire, value in iter_fields(buf):
        if field == 1 and wire == VARINT:
            num_shards = value
        elif field == 2 and wire == VARINT:
            endianness = value
    return num_shards, endianness


class BundleReader(CheckpointReader):
    """Reader of ``PREFIX.index`` + ``PREFIX.data-*``."""

    format = "tf1-v2"

    def __init__(self, prefix: "Path | RemotePath"):
        prefix = location(prefix)
        super().__init__(prefix)
        self.index_path = with_suffix_added(prefix, ".index")
        self._shards: dict[int, RandomAccessFile] = {}  # shard id -> open file
        with _table_errors(self.index_path):
            with Table(self.index_path) as table:
                self._load(table)
        if OBJECT_GRAPH_KEY in self._entries:
            self.format = "tf2-object"
        self._check_entries()

    # -- index ------------------------------------------------------------
    def _load(self, table: Table) -> None:
        self._entries: dict[str, BundleEntry] = {}
        self._pieces: dict[bytes, BundleEntry] = {}
        header = None
        for key, value in table.items():
            if key == b"":
                header = _parse_header(value)
            elif key[:1] == b"\x00":
                self._pieces[key] = parse_entry(value)
            else:
                self._entries[decode_name(key, self.index_path)] = parse_entry(value)
        if header is None:
            raise CheckpointFormatError(f"{self.index_path}: no bundle header; this .index is not a TensorFlow V2 checkpoint index")
        self.num_shards, endianness = header
        if endianness != 0:
            raise UnsupportedFeatureError(f"{self.index_path}: big-endian checkpoints are not supported; re-save it on a little-endian machine")
        if not 0 < self.num_shards < 100_000:
            raise CheckpointFormatError(f"{self.index_path}: header declares {self.num_shards} data shards")

    def _check_entries(self) -> None:
        sizes: dict[int, int] = {}
        for name, entry in self._entries.items():
            if entry.slices:
                covered = 0
                for extents in entry.slices:
                    piece = self._piece(name, extents)
                    try:
                        shape = slice_shape(extents, entry.shape)
                    except ValueError as e:  # extents outside the tensor, or of another rank
                        raise CheckpointFormatError(f"{self.index_path}: tensor {name}: {e}") from e
                    self._check_bytes(f"{name} {list(extents)}", piece, shape, sizes)
                    covered += math.prod(shape)
                if covered != math.prod(entry.shape):  # reading allocates the whole shape: it must be what is stored
                    raise CheckpointFormatError(f"{self.index_path}: tensor {name} declares shape {list(entry.shape)} "
                                                f"({math.prod(entry.shape)} elements) but its slices hold {covered}")
            else:
                self._check_bytes(name, entry, entry.shape, sizes)

    def _check_bytes(self, label: str, entry: BundleEntry, shape, sizes: dict[int, int]) -> None:
        if any(d < 0 for d in shape):
            raise CheckpointFormatError(f"{self.index_path}: tensor {label} has negative dimension in shape {list(shape)}")
        expected = element_bytes(entry.dtype, shape)
        if expected is not None and expected != entry.size:
            raise CheckpointFormatError(
                f"{self.index_path}: tensor {label} declares shape {list(shape)} ({expected} bytes of {entry.dtype}) but {entry.size} stored bytes"
            )
        if entry.shard >= self.num_shards:
            raise CheckpointFormatError(f"{self.index_path}: tensor {label} is in shard {entry.shard} of {self.num_shards}")
        if entry.shard not in sizes:
            sizes[entry.shard] = self._shard_size(entry.shard)
        if entry.offset + entry.size > sizes[entry.shard]:
            raise CheckpointFormatError(
                f"{self._shard(entry.shard)}: tensor {label} needs bytes up to {entry.offset + entry.size} but the file has "
                f"{sizes[entry.shard]} (truncated copy? copy the data file again)"
            )

    def _shard(self, shard: int) -> "Path | RemotePath":
        return shard_path(self.path, shard, self.num_shards)

    def _shard_size(self, shard: int) -> int:
        path = self._shard(shard)
        if isinstance(path, RemotePath):
            return self._remote_shard_size(path)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise CheckpointFormatError(
                f"{path}: data shard is missing (the index lists {self.num_shards} shard(s)); copy every {self.path.name}.data-* file"
            ) from None
        if not stat.S_ISREG(info.st_mode):  # reading a FIFO would block for ever
            raise CheckpointFormatError(f"{path}: data shard is not a regular file (a directory, FIFO or device)")
        return info.st_size

    def _remote_shard_size(self, path: RemotePath) -> int:
        try:
            return path.size()
        except FileNotFoundError:  # no object, or a "directory"
            raise CheckpointFormatError(
                f"{path}: data shard is missing (the index lists {self.num_shards} shard(s)); "
                f"copy every {self.path.name}.data-* file"
            ) from None

    def _piece(self, name: str, extents) -> BundleEntry:
        piece = self._pieces.get(slice_key(name, extents))
        if piece is None:
            raise CheckpointFormatError(f"{self.index_path}: slice {list(extents)} of {name} is listed but not stored")
        return piece

    # -- interface --------------------------------------------------------
    def keys(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> BundleEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"{self.path}: no tensor named {name!r}") from None

    def spec(self, name: str) -> TensorSpec:
        entry = self.entry(name)
        if entry.slices:
            stored = sum(self._piece(name, e).size for e in entry.slices)
        else:
            stored = entry.size
        return TensorSpec(name, entry.shape, entry.dtype, stored)

    def files(self) -> list:
        """Paths of the index and shards; URL strings for a remote checkpoint."""
        return [shown(f) for f in self._files()]

    def _files(self) -> list:
        return [self.index_path] + [self._shard(i) for i in range(self.num_shards)]

    def read(self, name: str) -> np.ndarray:
        entry = self.entry(name)
        if entry.slices:
            pieces = [(e, self._read_entry(f"{name} {list(e)}", self._piece(name, e), slice_shape(e, entry.shape))) for e in entry.slices]
            return assemble(entry.shape, numpy_dtype(entry.dtype) or object, pieces)
        return self._read_entry(name, entry, entry.shape)

    def _read_entry(self, label: str, entry: BundleEntry, shape) -> np.ndarray:
        raw = self._bytes(entry)
        if entry.dtype == "string":
            values, crc = _decode_strings(raw, math.prod(shape), label)
            self._check_crc(label, entry, crc)
            return values.reshape(shape)
        self._check_crc(label, entry, crc32c(raw))
        np_dtype = numpy_dtype(entry.dtype)
        if np_dtype is None:
            raise UnsupportedFeatureError(f"{self.path}: tensor {label} has dtype {entry.dtype}, which holds no values")
        return np.frombuffer(raw, dtype=np_dtype).reshape(shape)

    def iter_chunks(self, name: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
        """Stream with read() into fresh buffers: a mapping would keep every page resident."""
        entry = self.entry(name)
        np_dtype = numpy_dtype(entry.dtype)
        if entry.slices or np_dtype is None:
            yield from super().iter_chunks(name, chunk_bytes)
            return
        step = max(np_dtype.itemsize, chunk_bytes - chunk_bytes % np_dtype.itemsize)
        crc = 0
        f = self._shard_file(entry.shard)
        for start in range(0, entry.size, step):
            chunk = np.empty(min(step, entry.size - start), dtype=np.uint8)
            if f.preadinto(chunk, entry.offset + start) != chunk.size:
                raise CheckpointFormatError(f"{self._shard(entry.shard)}: tensor {name} is cut short (file truncated while reading?)")
            crc = crc32c(chunk, crc)
            yield chunk.view(np_dtype)
        self._check_crc(name, entry, crc)

    def prefetch(self, name: str) -> None:
        """Ask the kernel to start reading ``name``'s bytes now, in the background."""
        entry = self.entry(name)
        for e in [self._piece(name, x) for x in entry.slices] or [entry]:
            if e.size:
                self._shard_file(e.shard).fadvise_willneed(e.offset, e.size)

    def _shard_file(self, shard: int) -> RandomAccessFile:
        if shard not in self._shards:
            self._shards[shard] = RandomAccessFile(self._shard(shard))
        return self._shards[shard]

    def _bytes(self, entry: BundleEntry) -> memoryview:
        """The entry's bytes, read into a fresh buffer (a memory map would keep every page resident)."""
        buffer = np.empty(entry.size, dtype=np.uint8)
        got = self._shard_file(entry.shard).preadinto(buffer, entry.offset) if entry.size else 0
        if got != entry.size:
            raise CheckpointFormatError(f"{self._shard(entry.shard)}: tensor bytes at {entry.offset} are cut short")
        return memoryview(buffer)

    def _check_crc(self, label: str, entry: BundleEntry, actual: int) -> None:
        if entry.crc is not None and unmask(entry.crc) != actual:
            raise ChecksumError(
                f"{self._shard(entry.shard)}: tensor {label} fails its crc32c check (bytes {entry.offset}..{entry.offset + entry.size} corrupted)"
            )

    def verify(self) -> list[ChecksumProblem]:
        problems = [ChecksumProblem(str(p), "", "data shard is missing") for p in self._files() if not p.exists()]
        return problems or super().verify()

    def close(self) -> None:
        for f in self._shards.values():
            f.close()
        self._shards = {}


def _decode_strings(raw, count: int, label: str) -> tuple[np.ndarray, int]:
    """Decode ``[varint64 len]*count [masked crc of lengths] [bytes]*count``.

    Returns the values and the crc32c TensorFlow stores for them: lengths are
    checksummed as little-endian uint32 (uint64 past 4 GiB), not as varints.
    """
    lengths, pos, crc = [], 0, 0
    try:
        for _ in range(count):
            length, pos = read_varint(raw, pos)
            lengths.append(length)
            crc = crc32c(length.to_bytes(4 if length <= 0xFFFFFFFF else 8, "little"), crc)
    except ProtoError as e:
        raise CheckpointFormatError(f"string tensor {label}: corrupt lengths ({e})") from e
    if pos + 4 + sum(lengths) > len(raw):
        raise CheckpointFormatError(f"string tensor {label}: lengths exceed the stored bytes")
    crc = crc32c(raw[pos : pos + 4], crc)
    pos += 4
    out = np.empty(count, dtype=object)
    for i, length in enumerate(lengths):
        out[i] = bytes(raw[pos : pos + length])
        crc = crc32c(out[i], crc)
        pos += length
    return out, crc


class _table_errors:
    """Turn low-level table/protobuf errors into one user-facing line."""

    def __init__(self, path: "Path | RemotePath"):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if isinstance(error, (TableError, ProtoError)):
            raise CheckpointFormatError(f"{self.path}: {error}") from error
        return False
