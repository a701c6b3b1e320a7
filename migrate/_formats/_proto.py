"""Minimal protocol-buffer wire-format decoding.

The handful of messages a checkpoint holds (BundleEntryProto, TensorProto,
SavedTensorSlices, ...) are decoded field by field, so reading an index never
needs the protobuf runtime or TensorFlow's generated classes.  Every read is
bounds-checked: malformed bytes raise :class:`ProtoError`, never IndexError.
"""
from __future__ import annotations

import struct
from typing import Iterator

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class ProtoError(ValueError):
    """The bytes are not a well-formed protocol buffer."""


def read_varint(buf, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return (value, next position)."""
    result = shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ProtoError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint longer than 10 bytes")


def iter_fields(buf) -> Iterator[tuple[int, int, object]]:
    """Yield (field number, wire type, value); LENGTH values are memoryviews."""
    view = memoryview(buf)
    pos, end = 0, len(view)
    while pos < end:
        tag, pos = read_varint(view, pos)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise ProtoError("field number 0")
        if wire == VARINT:
            value, pos = read_varint(view, pos)
        elif wire == FIXED64:
            value, pos = _fixed(view, pos, 8, "<Q")
        elif wire == FIXED32:
            value, pos = _fixed(view, pos, 4, "<I")
        elif wire == LENGTH:
            size, pos = read_varint(view, pos)
            if size > end - pos:
                raise ProtoError(f"field {field} claims {size} bytes, {end - pos} left")
            value, pos = view[pos : pos + size], pos + size
        else:
            raise ProtoError(f"unsupported wire type {wire} for field {field}")
        yield field, wire, value


def _fixed(view, pos: int, size: int, fmt: str) -> tuple[int, int]:
    if pos + size > len(view):
        raise ProtoError("truncated fixed-width field")
    return struct.unpack_from(fmt, view, pos)[0], pos + size


def signed64(value: int) -> int:
    """Reinterpret an unsigned varint as a two's-complement int64."""
    return value - (1 << 64) if value >= 1 << 63 else value


def packed_varints(wire: int, value) -> list[int]:
    """Values of a repeated varint field, packed (LENGTH) or not."""
    if wire == VARINT:
        return [value]
    if wire != LENGTH:
        raise ProtoError(f"expected varints, got wire type {wire}")
    out, pos = [], 0
    while pos < len(value):
        item, pos = read_varint(value, pos)
        out.append(item)
    return out


def decode_shape(buf) -> tuple[tuple[int, ...], bool]:
    """TensorShapeProto -> (dims, unknown_rank)."""
    dims: list[int] = []
    unknown = False
    for field, wire, value in iter_fields(buf):
        if field == 2 and wire == LENGTH:
            size = 0
            for sub, sub_wire, sub_value in iter_fields(value):
                if sub == 1 and sub_wire == VARINT:
                    size = signed64(sub_value)
            dims.append(size)
        elif field == 3 and wire == VARINT:
            unknown = bool(value)
    return tuple(dims), unknown


def decode_slice(buf) -> tuple[tuple[int, int], ...]:
    """TensorSliceProto -> ((start, length), ...); a full extent is (0, -1)."""
    extents = []
    for field, wire, value in iter_fields(buf):
        if field == 1 and wire == LENGTH:
            start, length = 0, -1
            for sub, sub_wire, sub_value in iter_fields(value):
                if sub == 1 and sub_wire == VARINT:
                    start = signed64(sub_value)
                elif sub == 2 and sub_wire == VARINT:
                    length = signed64(sub_value)
            extents.append((start, length))
    return tuple(extents)
