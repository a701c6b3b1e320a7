"""The one interface every checkpoint format is read through."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import CheckpointFormatError
from ._dtypes import numpy_dtype
from ._storage import RemotePath

CHUNK_BYTES = 1 << 20  # small enough that several passes over a chunk stay in cache


@dataclass(frozen=True)
class TensorSpec:
    """What the index says about a tensor, without reading its bytes."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int  # bytes stored on disk for this tensor

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class ChecksumProblem:
    """One stored checksum that does not match its bytes."""

    file: str
    name: str
    detail: str


class CheckpointReader(ABC):
    """Lazy, read-only access to one checkpoint; use as a context manager."""

    format: str = ""

    def __init__(self, path: "Path | RemotePath"):
        self.path = path if isinstance(path, RemotePath) else Path(path)

    def __enter__(self) -> "CheckpointReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release open files."""

    @abstractmethod
    def keys(self) -> list[str]:
        """Tensor names in sorted order."""

    @abstractmethod
    def spec(self, name: str) -> TensorSpec:
        """Shape, dtype and stored size of ``name``."""

    @abstractmethod
    def read(self, name: str) -> np.ndarray:
        """The full value of ``name`` (checked against its stored checksum)."""

    @abstractmethod
    def files(self) -> list:
        """Every file this checkpoint consists of: Paths, or URL strings for a remote one."""

    def specs(self) -> dict[str, TensorSpec]:
        return {name: self.spec(name) for name in self.keys()}

    def iter_chunks(self, name: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
        """The flattened value of ``name`` in pieces; formats override to stream."""
        yield self.read(name).reshape(-1)

    def prefetch(self, name: str) -> None:
        """Hint that ``name`` will be read soon; formats that can read ahead do."""

    def verify(self) -> list[ChecksumProblem]:
        """Check every stored checksum; formats without checksums check readability."""
        problems = []
        for name in self.keys():
            try:
                for _ in self.iter_chunks(name):
                    pass
            except CheckpointFormatError as e:
                problems.append(ChecksumProblem(str(self.path), name, str(e)))
        return problems


def element_bytes(spec_dtype: str, shape: tuple[int, ...]) -> int | None:
    """Bytes a dense tensor of this dtype and shape occupies, None if variable."""
    np_dtype = numpy_dtype(spec_dtype)
    if np_dtype is None:
        return None
    return math.prod(shape) * np_dtype.itemsize


def decode_name(raw: bytes, file: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        shown = raw[:60].decode("utf-8", "backslashreplace")
        raise CheckpointFormatError(
            f"{file}: tensor name '{shown}' is not valid UTF-8; the index is corrupt or was not written by TensorFlow"
        ) from e
