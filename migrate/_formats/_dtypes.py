"""TensorFlow DataType enum values and their numpy equivalents."""
from __future__ import annotations

import numpy as np

try:  # ships with TensorFlow; gives bfloat16 without importing TensorFlow
    import ml_dtypes

    _BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - numpy alone: keep the raw bits
    _BFLOAT16 = np.dtype("<u2")

# enum value -> (name as TensorFlow prints it, numpy dtype or None)
DTYPES: dict[int, tuple[str, object]] = {
    1: ("float32", np.dtype("<f4")),
    2: ("float64", np.dtype("<f8")),
    3: ("int32", np.dtype("<i4")),
    4: ("uint8", np.dtype("u1")),
    5: ("int16", np.dtype("<i2")),
    6: ("int8", np.dtype("i1")),
    7: ("string", None),
    8: ("complex64", np.dtype("<c8")),
    9: ("int64", np.dtype("<i8")),
    10: ("bool", np.dtype("?")),
    14: ("bfloat16", _BFLOAT16),
    17: ("uint16", np.dtype("<u2")),
    18: ("complex128", np.dtype("<c16")),
    19: ("float16", np.dtype("<f2")),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", np.dtype("<u4")),
    23: ("uint64", np.dtype("<u8")),
}

FLOATING = {"float32", "float64", "float16", "bfloat16"}


def dtype_name(enum: int) -> str:
    """Readable name of a DataType enum value (reference types end in _ref)."""
    if 100 < enum <= 200:  # DT_*_REF = DT_* + 100 (once: a huge enum must not recurse)
        return dtype_name(enum - 100)
    if enum not in DTYPES:
        raise ValueError(f"unknown TensorFlow dtype enum {enum}")
    return DTYPES[enum][0]


def numpy_dtype(name: str):
    """numpy dtype for a dtype name, or None for string/resource/variant."""
    for known, np_dtype in DTYPES.values():
        if known == name:
            return np_dtype
    return None


def numpy_to_name(dtype) -> str:
    """Name of a numpy dtype in TensorFlow's spelling."""
    dtype = np.dtype(dtype)
    for name, np_dtype in DTYPES.values():
        if np_dtype is not None and np_dtype == dtype:
            return name
    if dtype.kind in "SUO":
        return "string"
    raise ValueError(f"no TensorFlow dtype for numpy {dtype}")
