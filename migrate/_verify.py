"""Verify a written checkpoint by re-reading it: every tensor against its source."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._formats import CheckpointReader
from ._formats._bundle import BundleReader
from ._formats._crc import unmask
from .errors import CkptkitError


class VerificationError(CkptkitError, RuntimeError):
    """The output does not hold what the conversion meant to write."""


def verify_against(output: BundleReader, expected: dict[str, callable], source: CheckpointReader | None = None,
                   reused: dict[str, str] | None = None) -> int:
    """Compare each output key with its expected value; return how many were checked.

    ``expected`` maps output key -> function returning the expected array.
    ``reused`` maps output key -> source tensor whose bytes the output links to:
    those are checked by crc32c against the checksum TensorFlow stored in the
    source (same inode) or byte for byte (copied shard).
    """
    missing = sorted(set(expected) - set(output.keys()))
    if missing:
        raise VerificationError(f"{output.index_path}: {len(missing)} tensors were not written (first: {missing[0]})")
    for key, make in expected.items():
        if reused and key in reused and _same_file(output, key, source, reused[key]):
            _check_crc(output, key, source, reused[key])
            continue
        got, want = output.read(key), make()
        if not _identical(got, want):
            raise VerificationError(f"{output.index_path}: tensor {key} differs from its source after conversion")
    return len(expected)


def _same_file(output: BundleReader, key: str, source, name: str) -> bool:
    out_entry, src_entry = output.entry(key), source.entry(name)
    a = os.stat(output._shard(out_entry.shard))
    b = os.stat(source._shard(src_entry.shard))
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) and out_entry.offset == src_entry.offset


def _check_crc(output: BundleReader, key: str, source: BundleReader, name: str) -> None:
    entry, src = output.entry(key), source.entry(name)
    if src.crc is None or entry.crc is None or unmask(entry.crc) != unmask(src.crc) or entry.size != src.size:
        raise VerificationError(f"{output.index_path}: tensor {key} does not carry its source's checksum")
    for _ in output.iter_chunks(key):  # streams the bytes; the crc is checked at the end
        pass


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype == object:
        return [bytes(x) for x in a.ravel()] == [bytes(x) for x in b.ravel()]
    return a.tobytes() == b.tobytes()


def prefix_in(directory: Path, name: str = "ckpt-0") -> Path:
    return Path(directory) / name
