"""Write a legacy checkpoint's tensors into a target model and save it as TF2.

Tensors are read, transformed and assigned one at a time, so peak memory is
the model plus one tensor.  Verification zeroes every variable, restores the
written file into the same model (asserting every object matched) and
compares each mapped variable with its source, bit for bit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

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


def verify_by_restore(model, model_weights, planned: dict[str, Planned], reader, path: Path, layout: str) -> int:
    from ._tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    for weight in model_weights.values():
        weight.variable.assign(tf.zeros_like(weight.variable))
    if layout == "object":
        tf.train.Checkpoint(model=model).read(str(path)).assert_existing_objects_matched()
    elif layout == "weights":
        model.load_weights(str(path)).assert_existing_objects_matched()
    else:
        model.load_weights(str(path))
    for target, item in planned.items():
        variable = model_weights[target].variable
        want = expected_value(reader, item, variable.shape)
        got = variable.numpy()
        if got.shape != want.shape or got.tobytes() != want.astype(got.dtype).tobytes():
            raise VerificationError(f"{path}: {target} does not restore to the value of {', '.join(item.item.sources)}")
    return len(planned)
