"""crc32c as TensorFlow stores it (masked).

Uses the ``crc32c`` package: hardware-accelerated (SSE4.2/ARMv8) and it
accepts any buffer (mmap slices, numpy arrays), so streaming needs no copies.
"""
from __future__ import annotations

import crc32c as _crc32c

_MASK_DELTA = 0xA282EAD8


def crc32c(data, crc: int = 0) -> int:
    """crc32c of ``data`` (any buffer), continuing from ``crc``."""
    return _crc32c.crc32c(data, value=crc)


def mask(crc: int) -> int:
    """TensorFlow/LevelDB store crcs rotated and offset so crcs of crcs stay strong."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
