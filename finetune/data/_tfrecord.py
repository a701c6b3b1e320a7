"""TFRecord files and ``tf.train.Example`` messages, natively (no TensorFlow).

A TFRecord file is a sequence of records::

    uint64 length | uint32 masked_crc32c(length) | data[length] | uint32 masked_crc32c(data)

:func:`iter_records` reads them one by one and reports each framing problem
with its record number and offset instead of stopping at the first: a bad
data checksum loses one record, a bad length checksum (or a truncated file)
loses the rest of the file, since nothing after it can be trusted.

An Example is ``Features { map<string, Feature> }`` with a Feature holding a
``bytes_list``, ``float_list`` or ``int64_list``; :func:`encode_example` writes
what ``tf.train.Example.SerializeToString(deterministic=True)`` writes and
:func:`decode_example` reads any valid serialisation (packed or not).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np

from migrate.formats import (
    FIXED32, LENGTH, ProtoError, crc32c, field_bytes, iter_fields, mask, packed_varints, signed64, varint,
)
from migrate.errors import CkptkitError

KINDS = ("bytes", "float", "int64")
_HEADER = struct.Struct("<QI")


class DataError(CkptkitError, ValueError):
    """TFRecord data that cannot be used as it is."""


@dataclass(frozen=True)
class Record:
    """One framed record: ``data`` is None when ``problem`` says why it cannot be read."""

    path: str
    index: int  # 0-based position in the file
    offset: int  # byte offset of its header
    length: int
    data: Optional[bytes] = None
    problem: str = ""


def _masked(data) -> int:
    return mask(crc32c(data))


def frame(data: bytes) -> bytes:
    """``data`` as one TFRecord record."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked(length)) + data + struct.pack("<I", _masked(data))


def write_records(path, records: Iterable[bytes]) -> int:
    """Write ``records`` to a new TFRecord file (atomically: a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    count = 0
    try:
        with open(tmp, "wb") as f:
            for data in records:
                f.write(frame(data))
                count += 1
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def iter_records(path) -> Iterator[Record]:
    """Every record of ``path``, good ones with ``data``, damaged ones with ``problem``."""
    path = str(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        index = offset = 0
        while offset < size:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                yield Record(path, index, offset, 0, None, f"truncated record header ({len(header)} of 12 bytes) "
                             "at the end of the file")
                return
            length, length_crc = _HEADER.unpack(header)
            if _masked(header[:8]) != length_crc:
                yield Record(path, index, offset, 0, None, f"corrupt length field (checksum mismatch); the "
                             f"remaining {size - offset} bytes of the file cannot be read")
                return
            if offset + _HEADER.size + length + 4 > size:
                yield Record(path, index, offset, length, None, f"truncated record: needs {length} bytes, the file "
                             f"ends {size - offset - _HEADER.size} bytes after its header")
                return
            data = f.read(length)
            (data_crc,) = struct.unpack("<I", f.read(4))
            if _masked(data) != data_crc:
                yield Record(path, index, offset, length, None, "corrupt record data (checksum mismatch)")
            else:
                yield Record(path, index, offset, length, data)
            index += 1
            offset += _HEADER.size + length + 4


def read_record(handle, offset: int, length: int) -> bytes:
    """The data of the (already verified) record whose header is at ``offset`` of an open file."""
    return os.pread(handle.fileno(), length, offset + _HEADER.size)


# ----------------------------------------------------------------- tf.train.Example
def _feature(kind: str, values) -> bytes:
    if kind == "bytes":
        items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
        return field_bytes(1, b"".join(field_bytes(1, v) for v in items))
    if kind == "float":
        packed = np.asarray(values, dtype="<f4").tobytes()
        return field_bytes(2, field_bytes(1, packed) if packed else b"")
    if kind == "int64":
        packed = b"".join(varint(int(v)) for v in values)
        return field_bytes(3, field_bytes(1, packed) if packed else b"")
    raise ValueError(f"feature kind must be one of {KINDS}, got {kind!r}")


def encode_example(features: Mapping[str, tuple[str, Sequence]]) -> bytes:
    """Serialise ``{name: (kind, values)}`` (kind: bytes, float or int64) as a tf.train.Example."""
    entries = b"".join(
        field_bytes(1, field_bytes(1, name.encode("utf-8")) + field_bytes(2, _feature(kind, values)))
        for name, (kind, values) in sorted(features.items()))
    return field_bytes(1, entries)


def decode_example(data) -> dict[str, tuple[str, list]]:
    """Parse a serialised tf.train.Example into ``{name: (kind, values)}``; bad bytes raise ProtoError."""
    out: dict[str, tuple[str, list]] = {}
    for number, wire, features in iter_fields(data):
        if number != 1 or wire != LENGTH:
            continue
        for entry_number, entry_wire, entry in iter_fields(features):
            if entry_number != 1 or entry_wire != LENGTH:
                continue
            name, feature = "", b""
            for sub, sub_wire, value in iter_fields(entry):
                if sub == 1 and sub_wire == LENGTH:
                    name = bytes(value).decode("utf-8", errors="replace")
                elif sub == 2 and sub_wire == LENGTH:
                    feature = value
            out[name] = _decode_feature(feature)
    return out


def _decode_feature(feature) -> tuple[str, list]:
    kind, values = "bytes", []
    for number, wire, body in iter_fields(feature):
        if wire != LENGTH or number not in (1, 2, 3):
            continue
        kind = KINDS[number - 1]
        values = []
        for sub, sub_wire, value in iter_fields(body):
            if sub != 1:
                continue
            if kind == "bytes":
                values.append(bytes(value))
            elif kind == "float":
                values.extend(_floats(sub_wire, value))
            else:
                values.extend(signed64(v) for v in packed_varints(sub_wire, value))
    return kind, values


def _floats(wire: int, value) -> list[float]:
    if wire == FIXED32:
        return [struct.unpack("<f", struct.pack("<I", value))[0]]
    if wire != LENGTH or len(value) % 4:
        raise ProtoError("malformed float list")
    return np.frombuffer(value, dtype="<f4").tolist()
