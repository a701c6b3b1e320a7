"""Write a legacy checkpoint's tensors into a target model and save it as TF2.

Tensors are read, transformed and assigned one at a time.  Verification
re-reads each written tensor natively and compares it with its source, bit
for bit, one tensor at a time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._formats._bundle import OBJECT_GRAPH_KEY, BundleReader
from ._formats._h5 import H5Reader
from ._formats._objgraph import decode, keys_by_full_name
from ._generic import source_value
from ._mapping import Planned
from ._transforms import chain_apply
from ._verify import VerificationError

LAYOUTS = ("object", "weights", "h5")


def expected_value(reader, planned: Planned, shape) -> np.ndarray:
    return chain_apply(planned.transforms, source_value(reader, planned.item), tuple(shape))


def assign_all(model_weights, planned: dict[str, Planned], reader) -> None:
    for target, item in planned.items():
        variable = model_weights[target].variable
        variable.assign(expected_value(reader, item, variable.shape))


def save(model, directory: Path, layout: str, prefix_name: str) -> Path:
    """Save in the requested layout; return the path to restore from."""
    from ._tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    if layout == "object":  # the OD API / Model Garden convention: Checkpoint(model=...)
        return Path(tf.train.Checkpoint(model=model).write(str(directory / prefix_name)))
    if layout == "weights":
        model.save_weights(str(directory / prefix_name))
        return directory / prefix_name
    path = directory / "weights.h5"
    model.save_weights(str(path))
    return path


def verify_written(model_weights, planned: dict[str, Planned], reader, path: Path, layout: str) -> int:
    """Re-read every planned tensor from the written file and compare it with its source, one at a time.

    TF checkpoints are read natively through the object graph (a variable's
    full name -> its checkpoint key), so verification costs one tensor of
    memory, not a second model.  HDF5 weights are read with h5py.
    """
    if layout == "h5":
        return _verify_h5(model_weights, planned, reader, path)
    with BundleReader(path) as written:
        keys = keys_by_full_name(decode(written.read(OBJECT_GRAPH_KEY).item()))
        for target, item in planned.items():
            variable = model_weights[target].variable
            full_name = variable.name.rsplit(":", 1)[0]
            if full_name not in keys:
                raise VerificationError(f"{path}: {target} ({full_name}) is not in the written checkpoint")
            _compare(path, target, item, written.read(keys[full_name]), expected_value(reader, item, variable.shape))
    return len(planned)


def _verify_h5(model_weights, planned, reader, path: Path) -> int:
    with H5Reader(path) as written:
        by_suffix = {name.split("/", 1)[-1].rsplit(":", 1)[0]: name for name in written.keys()}
        for target, item in planned.items():
            variable = model_weights[target].variable
            stored = by_suffix.get(variable.name.rsplit(":", 1)[0])
            if stored is None:
                raise VerificationError(f"{path}: {target} is not in the written HDF5 file")
            _compare(path, target, item, written.read(stored), expected_value(reader, item, variable.shape))
    return len(planned)


def _compare(path: Path, target: str, item: Planned, got: np.ndarray, want: np.ndarray) -> None:
    if got.shape != want.shape or got.dtype != want.dtype or got.tobytes() != want.tobytes():
        raise VerificationError(f"{path}: {target} does not hold the value of {', '.join(item.item.sources) or item.rule}")
