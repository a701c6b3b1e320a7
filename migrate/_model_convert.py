"""Write a legacy checkpoint's tensors as a target model's checkpoint, one tensor at a time.

The target model is built (its object graph, layer and variable names are the
target's) but its variables are never assigned: each tensor streams from the
source through its declared transforms straight into the output, a V2 bundle
with TensorFlow's own object graph (``_model_graph``) or Keras HDF5 weights.
A tensor whose bytes a rule does not change (no transform, a reshape, a
squeeze) is copied in chunks as the source reader yields them (1 MiB from a V2
bundle; V1 and HDF5 sources hand over a whole tensor or rows); any other is
read whole and transformed.  Memory above "TensorFlow + the built model" is
thus at most one tensor (two while a transpose copies it).  Target variables
no source provides (a new head under ``--restore backbone``) are written with
the built model's initial values, as TensorFlow's saver would.

Verification re-reads every written tensor chunk by chunk into SHA-256 and
compares it with the digest of the bytes handed to the writer, so it holds one
chunk in memory, never a second copy of the model.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._formats._bundle import OBJECT_GRAPH_KEY, BundleReader
from ._formats._bundle_writer import BundleWriter
from ._formats._dtypes import numpy_dtype, numpy_to_name
from ._formats._h5 import H5Reader
from ._formats._objgraph import decode
from ._generic import source_value
from ._mapping import Planned
from ._model_graph import checkpoint_entries, checkpoint_root, h5_file_attributes, h5_layout, write_h5_attributes
from ._transforms import chain_apply, effective
from ._verify import VerificationError

LAYOUTS = ("object", "weights", "h5")
H5_NAME = "weights.h5"


def expected_value(reader, planned: Planned, shape) -> np.ndarray:
    return chain_apply(planned.transforms, source_value(reader, planned.item), tuple(shape))


@dataclass(frozen=True)
class Written:
    """What one output key holds: enough to check it without keeping the value."""

    sha256: str
    shape: tuple[int, ...]
    dtype: str
    target: str | None  # the planned target weight; None for a value the built model provided


def write_model(plan, reader, directory: Path, layout: str, prefix_name: str) -> tuple[Path, dict[str, Written]]:
    """Write ``plan``'s model in ``layout`` into ``directory``; return the path to restore from and every written key."""
    values = _ValueSource(plan, reader)
    if layout == "h5":
        path = directory / H5_NAME
        return path, _write_h5(plan.model, values, path)
    prefix = directory / prefix_name
    graph, by_key = checkpoint_entries(plan.model, layout)
    writer = BundleWriter(prefix)
    written = {}
    try:  # in TensorFlow's order (the object graph's, then the graph itself): the data file is TF's, byte for byte
        for key, entry in by_key.items():
            value = values.get(entry.owner, entry.tf_value)
            digest = hashlib.sha256()
            writer.add_chunks(key, value.dtype, value.shape, _hashed(value.chunks, digest))
            written[key] = Written(digest.hexdigest(), value.shape, value.dtype.name, value.target)
        writer.add_strings(OBJECT_GRAPH_KEY, np.array(graph, dtype=object))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    values.require_all_written()
    return prefix, written


@dataclass
class _Value:
    """A value to write: its shape and dtype, and its flattened value in consecutive pieces."""

    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: Iterator[np.ndarray]
    target: str | None


class _ValueSource:
    """The value of each target variable: converted from the source when planned, else the model's own."""

    def __init__(self, plan, reader):
        self._reader = reader
        self._planned = {id(plan.weights[t].variable): (t, item) for t, item in plan.planned.items()}
        self._variables = {t: plan.weights[t].variable for t in plan.planned}
        self._done: set[str] = set()

    def get(self, owner, fallback) -> _Value:
        found = self._planned.get(id(owner)) or self._planned.get(id(getattr(owner, "_variable", None)))
        if found is None:
            value = np.asarray(fallback(), order="C")  # not ascontiguousarray: it turns a scalar into shape (1,)
            return _Value(value.shape, value.dtype, iter([value.reshape(-1)]), None)
        target, item = found
        variable = self._variables[target]
        shape, dtype = tuple(variable.shape), variable.dtype.name
        self._done.add(target)
        if _bytes_unchanged(self._reader, item, shape, dtype):
            return _Value(shape, np.dtype(numpy_dtype(dtype)), self._reader.iter_chunks(item.item.sources[0]), target)
        value = np.ascontiguousarray(expected_value(self._reader, item, shape))
        if value.shape != shape or value.dtype.name != dtype:
            raise VerificationError(f"{target}: the converted value is {value.dtype.name}{list(value.shape)}, the "
                                    f"target variable {dtype}{list(shape)}; fix the rule's transform")
        return _Value(shape, value.dtype, iter([value.reshape(-1)]), target)

    def require_all_written(self) -> None:
        missing = sorted(set(self._variables) - self._done)
        if missing:
            raise VerificationError(f"{len(missing)} planned target weights are not saved by the model's checkpoint "
                                    f"(first: {missing[0]}); is the variable tracked by a layer?")


def _bytes_unchanged(reader, planned: Planned, shape: tuple[int, ...], dtype: str) -> bool:
    """Is the target's value the source tensor's bytes as they are (only reshapes and squeezes declared)?"""
    if len(planned.item.sources) != 1 or numpy_dtype(dtype) is None:
        return False
    spec = reader.spec(planned.item.sources[0])
    steps = effective(planned.transforms, spec.shape, shape)
    return spec.dtype == dtype and math.prod(spec.shape) == math.prod(shape) and all(
        t.op in ("reshape", "squeeze") for t in steps)


def _hashed(chunks: Iterable[np.ndarray], digest) -> Iterator[np.ndarray]:
    for chunk in chunks:
        chunk = np.ascontiguousarray(chunk)
        digest.update(memoryview(chunk).cast("B") if chunk.size else b"")
        yield chunk


def _write_h5(model, values: _ValueSource, path: Path) -> dict[str, Written]:
    """Keras HDF5 weights as tf_keras' save_weights writes them, one dataset (or row block) at a time."""
    from ._formats._h5 import _h5py  # noqa: PLC0415

    layer_names, groups = h5_layout(model)
    written = {}
    with _h5py().File(path, "w") as f:
        write_h5_attributes(f, "layer_names", layer_names)
        for name, value in h5_file_attributes().items():
            f.attrs[name] = value
        for group in groups:
            g = f.create_group(group.name)
            write_h5_attributes(g, "weight_names", [n for n, _ in group.weights])
            for name, variable in group.weights:
                value = values.get(variable, variable.numpy)
                digest = hashlib.sha256()
                _write_rows(g.create_dataset(name, value.shape, dtype=value.dtype), _hashed(value.chunks, digest))
                written[f"{group.name}/{name}"] = Written(digest.hexdigest(), value.shape, value.dtype.name, value.target)
    values.require_all_written()
    return written


def _write_rows(dataset, chunks: Iterable[np.ndarray]) -> None:
    """Fill ``dataset`` from pieces of its flattened value, writing whole rows (of its first axis) as they complete."""
    if not dataset.shape or not dataset.size:
        value = np.concatenate(list(chunks) or [np.empty(0, dataset.dtype)])
        dataset[()] = value.reshape(dataset.shape)
        return
    inner = dataset.shape[1:]
    per_row, row, pending = max(1, math.prod(inner)), 0, np.empty(0, dataset.dtype)
    for chunk in chunks:
        pending = np.concatenate([pending, chunk]) if pending.size else chunk
        rows = pending.size // per_row
        if rows:
            dataset[row:row + rows] = pending[: rows * per_row].reshape(rows, *inner)
            row, pending = row + rows, pending[rows * per_row:]
    if pending.size or row != dataset.shape[0]:
        raise ValueError(f"{dataset.name}: {row} of {dataset.shape[0]} rows written, {pending.size} values left over")


def verify_written(written: dict[str, Written], path: Path, layout: str) -> int:
    """Re-read every written tensor and compare it, bit for bit, with what was written; return the planned count.

    The output is streamed chunk by chunk into SHA-256 and compared with the
    digest taken when the value was written.  In a TF checkpoint, the object
    graph read back must name exactly the written keys.
    """
    reader_cls = H5Reader if layout == "h5" else BundleReader
    with reader_cls(path) as output:
        if layout != "h5":
            _check_graph(output, set(written), path)
        present = set(output.keys())
        for key, want in written.items():
            name = want.target or key
            if key not in present:
                raise VerificationError(f"{path}: {name} ({key}) is not in the written output")
            spec = output.spec(key)
            digest = hashlib.sha256()
            for chunk in output.iter_chunks(key):
                digest.update(memoryview(np.ascontiguousarray(chunk)).cast("B"))
            if spec.shape != want.shape or spec.dtype != _dtype_name(want.dtype) or digest.hexdigest() != want.sha256:
                raise VerificationError(f"{path}: {name} does not hold the value converted from its source")
    return sum(w.target is not None for w in written.values())


def _check_graph(output: BundleReader, keys: set[str], path: Path) -> None:
    nodes = decode(output.read(OBJECT_GRAPH_KEY).item())
    listed = {key for node in nodes for _, _, key in node.attributes}
    if listed != keys:
        odd = sorted(listed ^ keys)
        raise VerificationError(f"{path}: the object graph and the written tensors differ ({len(odd)} keys, first: {odd[0]})")


def load_written(model, path: Path, layout: str) -> None:
    """Restore the written output into ``model`` (for parity: the model computes with what was written)."""
    if layout == "h5":
        model.load_weights(str(path))
    elif layout == "weights":
        model.load_weights(str(path)).assert_existing_objects_matched()
    else:
        checkpoint_root(model, layout).restore(str(path)).assert_consumed()


def _dtype_name(numpy_name: str) -> str:
    return numpy_to_name(np.dtype(numpy_name)) if numpy_name != "bfloat16" else "bfloat16"
