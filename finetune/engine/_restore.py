"""Restore a converted (TF2 object-based) checkpoint into a task's model, per fine_tune_checkpoint_type.

A model variable's checkpoint key is its object path from the checkpoint
root (``model/layer_with_weights-3/kernel``), found the way TensorFlow
finds it: breadth-first over the trackable children.  Variables the path does
not find are looked up by the name they were saved under (the object graph
stores it), which covers a backbone wrapped inside a bigger task model.  The
chosen variables are restored with ``tf.train.Checkpoint`` over a tree that
holds only them, then re-read and compared bit for bit.

* ``classification`` (alias ``backbone``): the task's backbone variables, found under the task's own
  structure, or a backbone saved alone: ``model/...`` (``ckpt-migrate convert --target keras:...``) or
  ``feature_extractor/...`` (the TF2 OD API's classification checkpoints).
* ``detection``: the task's ``feature_extractor_variables()`` when it has them (SSD: backbone and extra
  feature layers, not the box predictors), else everything but its head.
* ``full``: every model variable.

Non-trainable companions (BatchNorm moving statistics) follow their layer.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path

from migrate import open_checkpoint
from migrate.formats import (
    OBJECT_GRAPH_KEY, SAVE_COUNTER, VALUE_ATTRIBUTE, checkpoint_key, decode_object_graph, object_path,
)
from migrate.errors import CkptkitError
from reports import group_names

from ._errors import RestoreError
from ._freeze import variable_name
from ._report import Mismatch, RestoreReport
from ._task import checkpointed

COUNTER_KEY = checkpoint_key([SAVE_COUNTER])  # Checkpoint.save's bookkeeping, not a weight: never "unused"

CHECKPOINT_TYPES = {"classification": "backbone", "backbone": "backbone", "detection": "detection", "full": "full"}
ROOT = "model"  # the converted checkpoint's root child: tf.train.Checkpoint(model=m)
CLASSIFICATION_ROOT = "feature_extractor"  # the OD API's classification type: Checkpoint(feature_extractor=backbone)


def restore(task, checkpoint, checkpoint_type: str = "classification", *, strict: bool = True) -> RestoreReport:
    """Set the task model's variables in scope from ``checkpoint``; report restored and initialised names."""
    scope_kind = CHECKPOINT_TYPES.get(checkpoint_type)
    if scope_kind is None:
        raise RestoreError(f"fine_tune_checkpoint_type {checkpoint_type!r}: not known; choose one of "
                           f"{', '.join(CHECKPOINT_TYPES)}")
    prefix, saved = _saved_variables(checkpoint)
    variables = list(task.model.variables)
    wanted = _in_scope(task, variables, scope_kind)
    plan, by_name, missing, mismatched = _plan(variables, wanted, saved, _object_keys(task, scope_kind))
    if strict and (missing or mismatched):
        raise RestoreError(_misfit_message(prefix, checkpoint_type, missing, mismatched, saved),
                           _report(prefix, checkpoint_type, variables, plan, by_name, missing, mismatched, saved, 0))
    _read(prefix, plan)
    verified = _verify(prefix, plan)
    return _report(prefix, checkpoint_type, variables, plan, by_name, missing, mismatched, saved, verified)


def _saved_variables(checkpoint) -> tuple[Path, dict[str, tuple[str, tuple, str]]]:
    """(prefix, {checkpoint key: (saved name, shape, dtype)}) read natively from the index and object graph."""
    try:
        with open_checkpoint(checkpoint) as reader:
            if reader.format != "tf2-object":
                raise RestoreError(f"{checkpoint}: expected a TF2 object-based checkpoint (tf.train.Checkpoint("
                                   f"model=m)), found {reader.format}; convert it first: ckpt-migrate convert "
                                   f"{checkpoint} --out DIR --target auto")
            keys = set(reader.keys())
            saved = {key: (full_name, tuple(reader.spec(key).shape), reader.spec(key).dtype)
                     for node in decode_object_graph(reader.read(OBJECT_GRAPH_KEY).item())
                     for attribute, full_name, key in node.attributes
                     if attribute == VALUE_ATTRIBUTE and key in keys and key != COUNTER_KEY}
            return Path(reader.path), saved
    except RestoreError:
        raise
    except CkptkitError as e:
        raise RestoreError(f"fine-tune checkpoint: {e}") from e


def _object_keys(task, kind: str) -> dict[int, list[str]]:
    """id(variable) -> the checkpoint keys it may be saved under, most specific first: under the task's
    checkpointed structure, and for a backbone restore under a checkpoint of the backbone alone."""
    roots = [(ROOT, checkpointed(task))]
    backbone = getattr(task, "backbone", None)
    if kind == "backbone" and backbone is not None:
        roots += [(ROOT, backbone), (CLASSIFICATION_ROOT, backbone)]
    keys: dict[int, list[str]] = {}
    for name, obj in roots:
        for i, key in _keys_under(name, obj).items():
            keys.setdefault(i, []).append(key)
    return keys


def _keys_under(name: str, obj) -> dict[int, str]:
    """id(variable) -> its checkpoint key under tf.train.Checkpoint(name=obj), as TensorFlow assigns it."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    root = tf.train.Checkpoint(**{name: obj})
    view = tf.train.TrackableView(root)
    paths, keys, queue = {id(root): []}, {}, deque([root])
    while queue:
        obj = queue.popleft()
        for name, child in view.children(obj).items():
            if id(child) in paths:
                continue
            paths[id(child)] = paths[id(obj)] + [name]
            if isinstance(child, tf.Variable):
                keys[id(child)] = checkpoint_key(paths[id(child)])
            else:
                queue.append(child)
    return keys


def _in_scope(task, variables, kind: str) -> set[int]:
    every = {id(v) for v in variables}
    if kind == "full":
        return every
    companions = _layer_companions(task.model)
    if kind == "backbone":
        return _with_companions({id(v) for v in task.backbone_variables()}, companions) & every
    if hasattr(task, "feature_extractor_variables"):  # detection: the task says what its feature extractor is
        return _with_companions({id(v) for v in task.feature_extractor_variables()}, companions) & every
    head = _with_companions({id(v) for v in task.head_variables()}, companions)
    return every - head


def _layer_companions(model) -> dict[int, set[int]]:
    """id(weight) -> ids of every weight of the innermost layer that owns it."""
    from migrate.tf import tf_keras  # noqa: PLC0415

    keras = tf_keras()
    owner: dict[int, set[int]] = {}
    layers = [m for m in model.submodules if isinstance(m, keras.layers.Layer) and not isinstance(m, keras.Model)]
    for layer in sorted(layers, key=lambda layer: len(layer.weights), reverse=True):  # innermost wins
        ids = {id(w) for w in layer.weights}
        for i in ids:
            owner[i] = ids
    return owner


def _with_companions(ids: set[int], companions: dict[int, set[int]]) -> set[int]:
    out = set(ids)
    for i in ids:
        out |= companions.get(i, set())
    return out


def _plan(variables, wanted: set[int], saved: dict, object_keys: dict[int, list[str]]):
    """({id(variable): (variable, key to restore)}, names found by name, missing names, mismatches)."""
    by_saved_name: dict[str, list[str]] = {}
    for key, (full_name, _, _) in saved.items():
        by_saved_name.setdefault(full_name, []).append(key)
    plan, by_name, missing, mismatched = {}, [], [], []
    for variable in variables:
        if id(variable) not in wanted:
            continue
        name = variable_name(variable)
        key = next((k for k in object_keys.get(id(variable), ()) if k in saved), None)
        if key is None:
            candidates = by_saved_name.get(name, [])
            key = candidates[0] if len(candidates) == 1 else None
            if key is None:
                missing.append(name)
                continue
            by_name.append(name)
        _, shape, dtype = saved[key]
        if tuple(variable.shape) != shape or variable.dtype.name != dtype:
            mismatched.append(Mismatch(name, key, tuple(variable.shape), shape, variable.dtype.name, dtype))
            continue
        plan[id(variable)] = (variable, key)
    return plan, by_name, missing, mismatched


def _read(prefix: Path, plan: dict) -> None:
    """Restore ``plan`` with tf.train.Checkpoint over a tree of tf.Modules mirroring the keys' object paths."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    tree: dict = {}
    for variable, key in plan.values():
        *parents, leaf = object_path(key)
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = variable
    if not tree:
        return
    status = tf.train.Checkpoint(**{k: _module(tf, v) for k, v in tree.items()}).read(str(prefix))
    status.expect_partial().assert_existing_objects_matched()


def _module(tf, tree):
    if not isinstance(tree, dict):
        return tree
    module = tf.Module()
    for name, sub in tree.items():
        setattr(module, name, _module(tf, sub))
    return module


def _verify(prefix: Path, plan: dict) -> int:
    """Re-read every restored tensor and compare it, bit for bit, with the variable it went into."""
    with open_checkpoint(prefix) as reader:
        for variable, key in plan.values():
            want, got = reader.read(key), variable.numpy()
            if want.shape != got.shape or want.tobytes() != got.tobytes():
                raise RestoreError(f"{prefix}: {variable_name(variable)} does not hold the value of {key} after "
                                   "restoring; the checkpoint changed while it was read, or this is a bug")
    return len(plan)


def _report(prefix, checkpoint_type, variables, plan, by_name, missing, mismatched, saved, verified) -> RestoreReport:
    used = {key for _, key in plan.values()}
    restored = tuple(variable_name(v) for v in variables if id(v) in plan)
    initialised = tuple(variable_name(v) for v in variables if id(v) not in plan)
    unused = tuple(saved[k][0] for k in saved if k not in used)
    return RestoreReport(str(prefix), checkpoint_type, restored, initialised, tuple(by_name), tuple(missing),
                         tuple(mismatched), unused, verified)


def _misfit_message(prefix, checkpoint_type, missing, mismatched, saved) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} model variables have no counterpart in the checkpoint: "
                     + "; ".join(group_names(missing, max_items=6)))
    if mismatched:
        shown = ", ".join(f"{m.name} (model {m.model_shape} {m.model_dtype}, checkpoint {m.checkpoint_shape} "
                          f"{m.checkpoint_dtype})" for m in mismatched[:4])
        more = f" and {len(mismatched) - 4} more" if len(mismatched) > 4 else ""
        parts.append(f"{len(mismatched)} {'has' if len(mismatched) == 1 else 'have'} another shape or dtype: "
                     f"{shown}{more}")
    holds = "; ".join(group_names([v[0] for v in saved.values()], max_items=4)) or "no variables"
    return (f"{prefix} does not fit the task's model for fine_tune_checkpoint_type {checkpoint_type!r}: "
            f"{'; '.join(parts)}. The checkpoint holds {holds}. Build the task on the architecture the checkpoint "
            "was converted to (same depth multiplier and input channels), choose a narrower "
            "fine_tune_checkpoint_type, or pass strict=False to initialise these variables freshly")
