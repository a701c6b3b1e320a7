"""Decode a TensorProto's values (the V1 format stores tensors this way)."""
from __future__ import annotations

import numpy as np

from ._dtypes import numpy_dtype
from ._proto import FIXED32, FIXED64, LENGTH, ProtoError, iter_fields, packed_varints, signed64

# field number -> how its values are encoded
_FIXED_FIELDS = {5: "<f4", 6: "<f8", 9: "<f4", 12: "<f8"}  # float, double, scomplex, dcomplex
_VARINT_FIELDS = {7, 10, 11, 13, 16, 17}  # int, int64, bool, half, uint32, uint64
_STRING_FIELD = 8
_CONTENT_FIELD = 4


def decode_tensor_proto(buf, dtype: str, count: int) -> np.ndarray:
    """Flat array of ``count`` values of ``dtype`` from a serialized TensorProto."""
    np_dtype = numpy_dtype(dtype)
    if np_dtype is None and dtype != "string":
        raise ProtoError(f"dtype {dtype} holds no values")
    fixed: list[np.ndarray] = []
    varints: list[int] = []
    strings: list[bytes] = []
    for field, wire, value in iter_fields(buf):
        if field == _CONTENT_FIELD and wire == LENGTH:
            return _from_content(value, np_dtype, count)
        if field in _FIXED_FIELDS:
            fixed.append(_fixed_values(field, wire, value))
        elif field in _VARINT_FIELDS:
            varints.extend(packed_varints(wire, value))
        elif field == _STRING_FIELD and wire == LENGTH:
            strings.append(bytes(value))
    if dtype == "string":
        return _fill(np.array(strings, dtype=object), count)
    if fixed:
        values = fixed[0] if len(fixed) == 1 else np.concatenate(fixed)  # one packed field: no copy
        if dtype.startswith("complex"):
            if values.nbytes % np_dtype.itemsize:
                raise ProtoError("complex values come in (real, imaginary) pairs; one is missing")
            values = values.view(np_dtype)
        return _fill(values.astype(np_dtype, copy=False), count)
    return _fill(_from_varints(varints, dtype, np_dtype), count)


def _from_content(value, np_dtype, count: int) -> np.ndarray:
    if np_dtype is None or len(value) != count * np_dtype.itemsize:
        raise ProtoError(f"tensor_content holds {len(value)} bytes, expected {count} values")
    return np.frombuffer(value, dtype=np_dtype).copy()


def _fixed_values(field: int, wire: int, value) -> np.ndarray:
    fmt = _FIXED_FIELDS[field]
    if wire == LENGTH:
        if len(value) % np.dtype(fmt).itemsize:
            raise ProtoError(f"packed field {field} has a partial value")
        return np.frombuffer(value, dtype=fmt)
    if wire != (FIXED32 if np.dtype(fmt).itemsize == 4 else FIXED64):
        raise ProtoError(f"field {field} has wire type {wire}")
    as_int = np.array([value], dtype="<u4" if wire == FIXED32 else "<u8")
    return as_int.view(fmt)


def _from_varints(varints: list[int], dtype: str, np_dtype) -> np.ndarray:
    try:
        return _varint_array(varints, dtype, np_dtype)
    except OverflowError as e:  # e.g. 300 stored for a uint8 tensor
        raise ProtoError(f"a stored value does not fit {dtype} ({e})") from e


def _varint_array(varints: list[int], dtype: str, np_dtype) -> np.ndarray:
    if dtype in ("float16", "bfloat16"):  # half_val holds the raw 16-bit patterns
        return np.array(varints, dtype="<u2").view(np_dtype)
    if dtype == "bool":
        return np.array([bool(v) for v in varints], dtype=np_dtype)
    if np_dtype.kind == "u":
        return np.array(varints, dtype=np_dtype)
    return np.array([signed64(v) for v in varints], dtype=np.int64).astype(np_dtype)


def _fill(values: np.ndarray, count: int) -> np.ndarray:
    """TensorProto semantics: fewer values than elements repeat the last one."""
    if len(values) == count:
        return values
    if len(values) > count or len(values) == 0 and count:
        raise ProtoError(f"holds {len(values)} values for a tensor of {count} elements")
    return np.concatenate([values, np.repeat(values[-1:], count - len(values))])
