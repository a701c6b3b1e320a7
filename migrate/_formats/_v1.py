"""Native reader of TensorFlow's old V1 checkpoint format (TensorSliceWriter).

A V1 checkpoint is one table file.  Its empty key holds SavedTensorSlices with
the metadata of every tensor (name, shape, dtype, stored slices); every other
key is an encoded (name, slice) holding a SavedSlice whose TensorProto carries
the values.  The 2016 slim zoo files (vgg_16.ckpt, inception_v3.ckpt, ...)
are in this format.  There are no per-tensor checksums, only per-block ones.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import CheckpointFormatError
from ._base import ChecksumProblem, CheckpointReader, TensorSpec, decode_name, element_bytes
from ._bundle import _table_errors
from ._dtypes import dtype_name, numpy_dtype
from ._proto import LENGTH, VARINT, ProtoError, decode_shape, decode_slice, iter_fields
from ._slices import assemble, slice_key, slice_shape
from ._table import Table, TableError
from ._tensor_proto import decode_tensor_proto


class V1Reader(CheckpointReader):
    """Reader of a V1 single-file checkpoint."""

    format = "tf1-v1"

    def __init__(self, path: Path):
        super().__init__(path)
        with _table_errors(self.path):
            self._table = Table(self.path)
            try:
                self._meta = self._read_meta()
            except Exception:
                self._table.close()
                raise

    def _read_meta(self) -> dict[str, tuple[tuple[int, ...], str, tuple]]:
        header = self._table.get(b"")
        if header is None:
            raise CheckpointFormatError(f"{self.path}: table has no V1 checkpoint metadata (empty key missing)")
        meta = {}
        for field, wire, value in iter_fields(header):
            if field == 1 and wire == LENGTH:
                for sub, sub_wire, tensor in iter_fields(value):
                    if sub == 1 and sub_wire == LENGTH:
                        name, shape, dtype, slices = _slice_meta(tensor, self.path)
                        meta[name] = (shape, dtype, slices)
                        _check_size(self.path, name, shape, self._table._size)
        return meta

    def keys(self) -> list[str]:
        return sorted(self._meta)

    def spec(self, name: str) -> TensorSpec:
        shape, dtype, _ = self._entry(name)
        return TensorSpec(name, shape, dtype, element_bytes(dtype, shape) or 0)

    def _entry(self, name: str):
        try:
            return self._meta[name]
        except KeyError:
            raise KeyError(f"{self.path}: no tensor named {name!r}") from None

    def files(self) -> list[Path]:
        return [self.path]

    def read(self, name: str) -> np.ndarray:
        shape, dtype, slices = self._entry(name)
        pieces = [(extents, self._read_piece(name, dtype, shape, extents)) for extents in slices]
        if len(pieces) == 1 and all(length == -1 for _, length in pieces[0][0]):
            return pieces[0][1].reshape(shape)
        return assemble(shape, numpy_dtype(dtype) or object, pieces)

    def _read_piece(self, name, dtype, shape, extents) -> np.ndarray:
        try:
            raw = self._table.get(slice_key(name, extents))
            if raw is None:
                raise CheckpointFormatError(f"{self.path}: slice {list(extents)} of {name} is listed but not stored")
            count = math.prod(slice_shape(extents, shape))
            for field, wire, value in iter_fields(raw):
                if field == 2 and wire == LENGTH:
                    return _saved_slice_values(value, dtype, count)
        except (TableError, ProtoError, ValueError) as e:
            if isinstance(e, CheckpointFormatError):
                raise
            raise CheckpointFormatError(f"{self.path}: tensor {name}: {e}") from e
        raise CheckpointFormatError(f"{self.path}: slice of {name} holds no data")

    def verify(self) -> list[ChecksumProblem]:
        try:
            for _ in self._table.items():  # every block's crc32c is checked on read
                pass
        except TableError as e:
            return [ChecksumProblem(str(self.path), "", str(e))]
        return super().verify()

    def close(self) -> None:
        self._table.close()


def _slice_meta(buf, path: Path):
    name, shape, dtype, slices = b"", (), 0, []
    for field, wire, value in iter_fields(buf):
        if field == 1 and wire == LENGTH:
            name = bytes(value)
        elif field == 2 and wire == LENGTH:
            shape, _ = decode_shape(value)
        elif field == 3 and wire == VARINT:
            dtype = value
        elif field == 4 and wire == LENGTH:
            slices.append(decode_slice(value))
    label = decode_name(name, path)
    if any(d < 0 for d in shape):
        raise CheckpointFormatError(f"{path}: tensor {label} has negative dimension in shape {list(shape)}")
    try:
        return label, shape, dtype_name(dtype), tuple(slices)
    except ValueError as e:
        raise CheckpointFormatError(f"{path}: tensor {label}: {e}") from e


def _check_size(path: Path, name: str, shape, file_size: int) -> None:
    """Every value a V1 file holds takes at least one byte of it, so a larger element count is a lie
    (TensorProto's repeat-the-last-value rule would otherwise allocate whatever the metadata claims)."""
    count = math.prod(shape)
    if count > file_size:
        raise CheckpointFormatError(f"{path}: tensor {name} declares {count} elements (shape {list(shape)}) but the file "
                                    f"has {file_size} bytes; the metadata is corrupt")


def _saved_slice_values(buf, dtype: str, count: int) -> np.ndarray:
    for field, wire, value in iter_fields(buf):
        if field == 3 and wire == LENGTH:
            return decode_tensor_proto(value, dtype, count)
    raise ProtoError("saved slice has no TensorProto")
