"""Where TensorFlow and tf_keras would save a target model's variables, without letting them save.

``tf.train.Checkpoint(...).write`` works in two halves: it gathers the
TrackableObjectGraph and one *lazy* value per checkpoint key (nothing is read
yet), then reads every variable and writes them all.  ckptkit keeps the first
half, so keys, object graph and full names are TensorFlow's own for any model,
and writes the values itself, streaming each from the source checkpoint.
Keras HDF5 weights are laid out as tf_keras' ``save_weights_to_hdf5_group``
lays them out (the same helpers, one dataset at a time).

TensorFlow has no public API for the first half; :func:`checkpoint_entries`
calls the saver's own gathering step (``TrackableSaver._gather_serialized_tensors``,
the code ``Checkpoint.write`` runs) and fails with a clear message if a
TensorFlow release renames it.  ``tests/test_model_write.py`` compares the
result with TensorFlow's saver output.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._formats._objgraph import SAVE_COUNTER, checkpoint_key, saved_counter
from .errors import CkptkitError

# layout -> the root object TensorFlow saves: Checkpoint(model=m) (the OD API / Model Garden
# convention) or the model itself (what tf_keras' save_weights writes: Checkpoint(root=m))
ROOTS = {"object": "model", "weights": "root"}
# The object layout also names the model ``feature_extractor``: the OD API restores a classification
# fine-tune checkpoint with Checkpoint(feature_extractor=backbone) (SSDMetaArch.restore_from_objects).
# Both names lead to one node of the object graph, so the file holds each tensor once, keys stay
# ``model/...`` (the first name) and Checkpoint(model=m).restore(...).assert_consumed() still holds.
ALIASES = ("feature_extractor",)


class NativeWriteError(CkptkitError, RuntimeError):
    """The target model holds state ckptkit cannot write itself."""


@dataclass(frozen=True)
class Saved:
    """One value TensorFlow's saver would write: its key, the object it belongs to and TF's lazy value."""

    key: str
    owner: object  # the tf.Variable (or other trackable) whose value is saved under ``key``
    lazy: object  # a SaveSpec, tensor_callable.Callable or tensor: read only when no plan provides the value

    def tf_value(self) -> np.ndarray:
        """The value TensorFlow would save (the model's current value, e.g. a freshly initialised head)."""
        value = self.lazy.tensor if hasattr(self.lazy, "tensor") else self.lazy
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def checkpoint_entries(model, layout: str) -> tuple[bytes, dict[str, Saved]]:
    """The serialized object graph and every saved value by checkpoint key, for ``layout`` object or weights."""
    from ._tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    root = checkpoint_root(model, layout)
    gather = getattr(getattr(root, "_saver", None), "_gather_serialized_tensors", None)
    if gather is None:
        raise NativeWriteError(f"TensorFlow {tf.__version__} has no TrackableSaver._gather_serialized_tensors; "
                               "ckptkit cannot lay out model checkpoints with it; use the TensorFlow release in "
                               "pyproject.toml")
    tensors, _, registered, graph = gather(None)
    if registered:
        raise NativeWriteError(f"the target saves objects with registered savers ({', '.join(registered)}); "
                               "ckptkit writes variables only")
    entries = {}
    for owner, values in tensors.items():
        if owner is None:  # the object graph itself, written from ``graph`` below
            continue
        for key, lazy in values.items():
            if isinstance(lazy, dict):  # {slice spec: tensor}: a partitioned or legacy saveable
                raise NativeWriteError(f"{key}: the target saves it in slices; ckptkit writes whole tensors only")
            entries[key] = Saved(key, owner, lazy)
    if layout == "object":  # the counter as Checkpoint.save leaves it, not as just created (0)
        key = checkpoint_key([SAVE_COUNTER])
        entries[key] = Saved(key, entries[key].owner, saved_counter())
    return graph.SerializeToString(), entries


def checkpoint_root(model, layout: str):
    """The root TensorFlow saves for ``layout``, as ``Checkpoint.save`` would see it.

    Object layout: ``Checkpoint(model=m)`` with the OD API alias and a ``save_counter``, so that every
    client's own idiom (``restore(...).assert_existing_objects_matched()`` creates the counter and requires
    it) finds everything it creates.  Weights layout: the model itself, as tf_keras' ``save_weights``.
    """
    from ._tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    children = getattr(model, "checkpoint_children", None)  # a model with a layout of its own (the OD API's)
    if layout == "object" and children is not None:
        root = tf.train.Checkpoint(**children())
        root.save_counter  # noqa: B018 - as below
        return root
    root = tf.train.Checkpoint(**{ROOTS[layout]: model})
    if layout == "object":
        for alias in ALIASES:
            setattr(root, alias, model)  # after ``model``: TensorFlow names each tensor by its first path
        root.save_counter  # noqa: B018 - the property creates the variable, as save() and restore() do
    return root


@dataclass(frozen=True)
class H5Group:
    """One group of a Keras HDF5 weights file: its name and (dataset name, variable) in order."""

    name: str
    weights: tuple[tuple[str, object], ...]


def h5_layout(model) -> tuple[list[str], list[H5Group]]:
    """tf_keras' HDF5 weights layout: the ``layer_names`` attribute and the groups in writing order."""
    from tf_keras.src.saving.legacy import hdf5_format  # noqa: PLC0415

    groups = [H5Group(layer.name, _named(hdf5_format._legacy_weights(layer)))
              for layer in sorted(model.layers, key=lambda x: x.name)]  # sorted, as tf_keras writes them
    groups.append(H5Group("top_level_model_weights", _named(model._trainable_weights + model._non_trainable_weights)))
    return [layer.name for layer in model.layers], groups


def write_h5_attributes(group, name: str, values: list[str]) -> None:
    """tf_keras' own attribute writer (it splits long name lists into chunks HDF5 can hold)."""
    from tf_keras.src.saving.legacy import hdf5_format  # noqa: PLC0415

    hdf5_format.save_attributes_to_hdf5_group(group, name, [v.encode("utf8") for v in values])


def h5_file_attributes() -> dict[str, bytes]:
    from tf_keras.src import __version__ as keras_version  # noqa: PLC0415

    from ._tf import tf_keras  # noqa: PLC0415

    return {"backend": tf_keras().backend.backend().encode("utf8"), "keras_version": str(keras_version).encode("utf8")}


def _named(variables) -> tuple[tuple[str, object], ...]:
    return tuple((v.name, v) for v in variables)
