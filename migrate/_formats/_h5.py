"""Reader of Keras HDF5 weight files (``save_weights('x.h5')`` or full ``model.save('x.h5')``).

Tensor names are the dataset paths inside the file (``dense/dense/kernel:0``,
``model_weights/...``, ``optimizer_weights/...``).  Only datasets are read:
the ``model_config`` attribute, which may describe Lambda layers holding
pickled code, is never deserialised.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import CheckpointFormatError
from ._base import CHUNK_BYTES, CheckpointReader, TensorSpec
from ._dtypes import numpy_to_name

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAX_COMPRESSION = 1100  # deflate expands at most ~1032:1; a larger claimed ratio is not real data


def _h5py():
    import h5py  # noqa: PLC0415 - only HDF5 inputs pay for it

    return h5py


class H5Reader(CheckpointReader):
    """Reader of one Keras ``.h5`` file."""

    format = "keras-h5"

    def __init__(self, path: Path):
        super().__init__(path)
        h5py = _h5py()
        try:
            self._file = h5py.File(self.path, "r")
            self._datasets = self._collect(h5py)
        except CheckpointFormatError:
            self.close()
            raise
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            self.close()
            raise CheckpointFormatError(f"{self.path}: not a readable HDF5 weights file ({e})") from e

    def _collect(self, h5py) -> dict[str, object]:
        found: dict[str, object] = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                found[self._checked(name, obj)] = obj

        self._file.visititems(visit)
        return found

    def _checked(self, name, ds) -> str:
        """Refuse what is not a plain tensor stored in this file, before anything is read or allocated."""
        if isinstance(name, bytes):  # h5py hands back names it cannot decode as bytes
            shown = name[:60].decode("utf-8", "backslashreplace")
            raise CheckpointFormatError(f"{self.path}: dataset name '{shown}' is not valid UTF-8; the file is corrupt "
                                        "or was not written by Keras")
        if ds.dtype.kind not in "biufcSUO" or ds.dtype.fields is not None:
            raise CheckpointFormatError(f"{self.path}: tensor {name} has HDF5 type {ds.dtype.str}, which is not a tensor "
                                        "dtype (Keras writes numbers and strings only)")
        if ds.is_virtual or ds.external:
            raise CheckpointFormatError(f"{self.path}: tensor {name} keeps its bytes in another file (external storage "
                                        "or a virtual dataset); ckptkit reads only the file it is given")
        stored = int(ds.id.get_storage_size())
        declared = int(ds.size) * (1 if ds.dtype.kind == "O" else ds.dtype.itemsize)
        ratio = _MAX_COMPRESSION if ds.id.get_create_plist().get_nfilters() else 1
        if declared > stored * ratio:
            raise CheckpointFormatError(f"{self.path}: tensor {name} declares {declared} bytes but the file stores "
                                        f"{stored}; refusing to read it (the dataset was never written, or is hostile)")
        return name

    def keys(self) -> list[str]:
        return sorted(self._datasets)

    def _dataset(self, name: str):
        try:
            return self._datasets[name]
        except KeyError:
            raise KeyError(f"{self.path}: no tensor named {name!r}") from None

    def spec(self, name: str) -> TensorSpec:
        ds = self._dataset(name)
        dtype = numpy_to_name(ds.dtype) if ds.dtype.kind not in "SUO" else "string"
        return TensorSpec(name, tuple(int(d) for d in ds.shape), dtype, int(ds.id.get_storage_size()))

    def read(self, name: str) -> np.ndarray:
        try:
            return np.asarray(self._dataset(name)[()])
        except (OSError, RuntimeError) as e:
            raise CheckpointFormatError(f"{self.path}: tensor {name} cannot be read ({e})") from e

    def iter_chunks(self, name: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
        ds = self._dataset(name)
        if ds.ndim == 0 or ds.dtype.kind in "SUO":
            yield self.read(name).reshape(-1)
            return
        row_bytes = max(1, ds.dtype.itemsize * int(np.prod(ds.shape[1:])))
        rows = max(1, chunk_bytes // row_bytes)
        for start in range(0, ds.shape[0], rows):
            try:
                yield np.asarray(ds[start : start + rows]).reshape(-1)
            except (OSError, RuntimeError) as e:
                raise CheckpointFormatError(f"{self.path}: tensor {name} cannot be read ({e})") from e

    def files(self) -> list[Path]:
        return [self.path]

    def close(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
