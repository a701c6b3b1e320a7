"""Write a legacy checkpoint's tensors into a target model and save it as TF2.

Tensors are read, transformed and assigned one at a time; verification
streams the written file against digests of the assigned values.
"""
from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._formats._bundle import OBJECT_GRAPH_KEY, BundleReader
from ._formats._dtypes import numpy_to_name
from ._formats._h5 import H5Reader
from ._formats._objgraph import decode, keys_by_full_name
from ._generic import source_value
from ._mapping import Planned
from ._transforms import chain_apply
from ._verify import VerificationError

_OS_ERRORS = {errno.ENOSPC: "No space left on device", errno.EDQUOT: "Disk quota exceeded",
              errno.EROFS: "Read-only file system", errno.EACCES: "Permission denied"}

LAYOUTS = ("object", "weights", "h5")


def expected_value(reader, planned: Planned, shape) -> np.ndarray:
    return chain_apply(planned.transforms, source_value(reader, planned.item), tuple(shape))


@dataclass(frozen=True)
class Written:
    """What a target variable must hold: enough to check it without keeping the value."""

    sha256: str
    shape: tuple[int, ...]
    dtype: str


def assign_all(model_weights, planned: dict[str, Planned], reader) -> dict[str, Written]:
    """Assign every planned value, one tensor in memory at a time; return their digests."""
    written = {}
    for target, item in planned.items():
        variable = model_weights[target].variable
        value = np.ascontiguousarray(expected_value(reader, item, variable.shape))
        written[target] = Written(hashlib.sha256(memoryview(value).cast("B")).hexdigest(), value.shape, str(value.dtype))
        variable.assign(value)
        del value
    return written


def save(model, directory: Path, layout: str, prefix_name: str) -> Path:
    """Save in the requested layout; return the path to restore from."""
    from ._tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    try:
        if layout == "object":  # the OD API / Model Garden convention: Checkpoint(model=...)
            return Path(tf.train.Checkpoint(model=model).write(str(directory / prefix_name)))
        if layout == "weights":
            model.save_weights(str(directory / prefix_name))
            return directory / prefix_name
        path = directory / "weights.h5"
        model.save_weights(str(path))
        return path
    except tf.errors.OpError as e:  # TensorFlow's own types for a full disk or a read-only location
        code = next((c for c, text in _OS_ERRORS.items() if text in e.message), None)
        if code is None:
            raise
        raise OSError(code, os.strerror(code), str(directory)) from e


def verify_written(model_weights, written: dict[str, Written], path: Path, layout: str) -> int:
    """Re-read every written tensor and compare it, bit for bit, with what was assigned.

    The output is streamed chunk by chunk into SHA-256 and compared with the
    digest taken from the source value at assignment, so verification holds
    one chunk in memory, never a second copy of the model.  TF checkpoints are
    read natively through the object graph (a variable's full name -> its
    checkpoint key); HDF5 weights with h5py.
    """
    reader_cls = H5Reader if layout == "h5" else BundleReader
    with reader_cls(path) as output:
        locate = _h5_names(output) if layout == "h5" else _checkpoint_keys(output)
        for target, want in written.items():
            full_name = model_weights[target].variable.name.rsplit(":", 1)[0]
            key = locate.get(full_name)
            if key is None:
                raise VerificationError(f"{path}: {target} ({full_name}) is not in the written output")
            spec = output.spec(key)
            digest = hashlib.sha256()
            for chunk in output.iter_chunks(key):
                digest.update(memoryview(np.ascontiguousarray(chunk)).cast("B"))
            if spec.shape != want.shape or spec.dtype != _dtype_name(want.dtype) or digest.hexdigest() != want.sha256:
                raise VerificationError(f"{path}: {target} does not hold the value converted from its source")
    return len(written)


def _checkpoint_keys(output: BundleReader) -> dict[str, str]:
    return keys_by_full_name(decode(output.read(OBJECT_GRAPH_KEY).item()))


def _h5_names(output: H5Reader) -> dict[str, str]:
    return {name.split("/", 1)[-1].rsplit(":", 1)[0]: name for name in output.keys()}


def _dtype_name(numpy_name: str) -> str:
    return numpy_to_name(np.dtype(numpy_name)) if numpy_name != "bfloat16" else "bfloat16"
