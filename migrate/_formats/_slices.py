"""Keys under which sliced (partitioned) tensors store their pieces.

TensorFlow's ``EncodeTensorNameSlice`` orders pieces with OrderedCode:
``num(0) . string(name) . num(rank) . signed(start_0) . signed(len_0) ...``,
a full extent being start 0, length -1.
"""
from __future__ import annotations

import numpy as np

# header bits that OrderedCode puts before a signed number of n bytes
_SIGNED_HEADER = {
    1: (0x80, 0), 2: (0xC0, 0), 3: (0xE0, 0), 4: (0xF0, 0), 5: (0xF8, 0),
    6: (0xFC, 0), 7: (0xFE, 0), 8: (0xFF, 0), 9: (0xFF, 0x80), 10: (0xFF, 0xC0),
}


def _num_increasing(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return bytes([len(body)]) + body


def _string(value: bytes) -> bytes:
    return value.replace(b"\xff", b"\xff\x00").replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def _signed_increasing(value: int) -> bytes:
    magnitude = ~value if value < 0 else value
    if magnitude < 64:
        return bytes([(0x80 ^ value) & 0xFF])
    length = (magnitude.bit_length() + 1 + 6) // 7  # 7 bits per byte, one for the sign
    body = bytearray(value.to_bytes(10, "big", signed=True)[10 - length :])
    first, second = _SIGNED_HEADER[length]
    body[0] ^= first
    body[1] ^= second
    return bytes(body)


def slice_key(name: str, extents: tuple[tuple[int, int], ...]) -> bytes:
    """Table key of one stored piece of ``name``."""
    key = _num_increasing(0) + _string(name.encode("utf-8")) + _num_increasing(len(extents))
    for start, length in extents:
        key += _signed_increasing(start) + _signed_increasing(length)
    return key


def slice_index(extents: tuple[tuple[int, int], ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """numpy index of a piece inside the full tensor; raises on out-of-range extents."""
    index = []
    for (start, length), dim in zip(extents, shape, strict=True):
        stop = dim if length == -1 else start + length
        if start < 0 or stop > dim or stop < start:
            raise ValueError(f"slice [{start}:{stop}] does not fit dimension {dim}")
        index.append(slice(start, stop))
    return tuple(index)


def slice_shape(extents, shape) -> tuple[int, ...]:
    return tuple(s.stop - s.start for s in slice_index(extents, shape))


def assemble(shape, dtype, pieces) -> np.ndarray:
    """Full tensor from (extents, array) pieces."""
    out = np.zeros(shape, dtype=dtype)
    for extents, value in pieces:
        out[slice_index(extents, shape)] = value.reshape(slice_shape(extents, shape))
    return out
