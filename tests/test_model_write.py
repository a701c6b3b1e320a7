"""Model-target checkpoints written natively (migrate/_model_convert.py) against TensorFlow's and tf_keras' own savers.

The reference is the old route: assign every converted value into a freshly
built model, then let TensorFlow (``Checkpoint(model=m).write``,
``save_weights``) or tf_keras (HDF5 ``save_weights``) write it.  The native
output must have the same keys, the same object graph as TensorFlow parses it,
bit-identical values (and data file), and restore with
``assert_existing_objects_matched()`` / ``load_weights``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from migrate import open_checkpoint
from migrate._convert import convert
from migrate._formats._bundle import OBJECT_GRAPH_KEY
from migrate._model_convert import expected_value, verify_written, write_model
from migrate._plan import plan_model, require_complete
from migrate._select import SelectOptions
from migrate._staging import write_state_file
from migrate._targets import TargetSpec, build
from migrate._verify import VerificationError

# (fixture, --restore, --classes): bytes copied as they are, the head left out (written from the built model),
# and a 1001 -> 1000 class drop_background (transformed in memory, not copied)
# the OD API SSDs: the backbone alone into keras:MobileNet, the whole detector (its own object layout);
# and one case for every other rule set (vgg_16_small: the width-matched VGG)
CASES = [("mobilenet_v1_small", "full", None, "auto"), ("resnet_v1_50_small", "full", None, "auto"),
         ("mobilenet_v1_small", "backbone", None, "auto"),
         ("ssd_mobilenet_v1_small", "backbone", None, "keras:MobileNet"),
         ("ssd_mobilenet_v2_small", "detection", None, "auto"), ("mobilenet_v1_small", "full", 1000, "auto"),
         ("mobilenet_v2_small", "full", None, "auto"), ("resnet_v2_50_small", "full", None, "auto"),
         ("vgg_16_small", "full", None, "auto")]


@pytest.fixture(params=[None, 4000], ids=["1MiB-chunks", "4000B-chunks"])
def chunks(request, monkeypatch):
    """Source chunk size: the reader's default, or pieces that never line up with a tensor's rows."""
    from migrate._formats._bundle import BundleReader

    if request.param:
        iter_chunks = BundleReader.iter_chunks
        monkeypatch.setattr(BundleReader, "iter_chunks", lambda self, name, chunk_bytes=0: iter_chunks(self, name, request.param))
    return request.param


def _plan(reader, restore="full", classes=None, target="auto"):
    plan = plan_model(reader, TargetSpec(target, classes=classes), None, restore, SelectOptions())
    require_complete(plan.report)
    return plan


def _tf_reference(tf, plan, reader, directory: Path, layout: str) -> Path:
    """TensorFlow's own output for the same values: assign, then save as a client does: ``Checkpoint.save``
    (with its ``save_counter``) of the root the OD API restores from (``model``, and ``feature_extractor`` for
    a classification fine-tune checkpoint), or tf_keras' ``save_weights``."""
    for target, item in plan.planned.items():
        variable = plan.weights[target].variable
        variable.assign(expected_value(reader, item, variable.shape))
    directory.mkdir()
    if layout == "object" and hasattr(plan.model, "checkpoint_children"):  # the OD API detector's own root
        return Path(tf.train.Checkpoint(**plan.model.checkpoint_children()).save(str(directory / "ckpt")))
    if layout == "object":
        root = tf.train.Checkpoint(model=plan.model)
        root.feature_extractor = plan.model  # after ``model`` (keyword arguments are sorted): keys stay model/...
        return Path(root.save(str(directory / "ckpt")))
    path = directory / ("weights.h5" if layout == "h5" else "ckpt-0")
    plan.model.save_weights(str(path))
    return path


def _object_graph(tf, path: Path):
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    raw = tf.train.load_checkpoint(str(path)).get_tensor(OBJECT_GRAPH_KEY)
    return trackable_object_graph_pb2.TrackableObjectGraph.FromString(raw)


def _values(tf, path: Path) -> dict[str, bytes]:
    reader = tf.train.load_checkpoint(str(path))
    return {k: reader.get_tensor(k).tobytes() for k in reader.get_variable_to_shape_map() if k != OBJECT_GRAPH_KEY}


def _variables(model) -> dict[str, str]:
    return {v.name: hashlib.sha256(v.numpy().tobytes()).hexdigest() for v in model.weights}


@pytest.mark.parametrize("fixture,restore,classes,target", CASES)
@pytest.mark.parametrize("layout", ["object", "weights"])
def test_bundle_matches_tensorflows_saver(zoo, tmp_path, tf, fixture, restore, classes, target, layout, chunks):
    with open_checkpoint(zoo[fixture]) as reader:
        plan = _plan(reader, restore, classes, target)
        before = _variables(plan.model)
        (tmp_path / "native").mkdir()
        path, written = write_model(plan, reader, tmp_path / "native", layout, "ckpt-0")
        assert _variables(plan.model) == before, "the model's variables were assigned: the write is not streamed"
        assert verify_written(written, path, layout) == len(plan.planned)
        reference = _tf_reference(tf, plan, reader, tmp_path / "tf", layout)  # same model: left-out heads agree too

    native_graph, tf_graph = _object_graph(tf, path), _object_graph(tf, reference)
    assert native_graph == tf_graph  # children, attributes (full names, keys), has_checkpoint_values
    native_reader, tf_reader = tf.train.load_checkpoint(str(path)), tf.train.load_checkpoint(str(reference))
    assert native_reader.get_variable_to_shape_map() == tf_reader.get_variable_to_shape_map()
    assert native_reader.get_variable_to_dtype_map() == tf_reader.get_variable_to_dtype_map()
    assert _values(tf, path) == _values(tf, reference)
    # the same order as TensorFlow's writer: the data files are identical
    assert Path(f"{path}.data-00000-of-00001").read_bytes() == Path(f"{reference}.data-00000-of-00001").read_bytes()
    # every planned target once; a left-out head written with the built model's initial values (compared above)
    assert sorted(w.target for w in written.values() if w.target) == sorted(plan.planned)
    untargeted = {k for k, w in written.items() if w.target is None}
    counter = {"save_counter/.ATTRIBUTES/VARIABLE_VALUE"} if layout == "object" else set()
    assert counter <= untargeted and len(untargeted - counter) == len(plan.report.left_out_target)


# Each client's own idiom for each layout (issue 11): what TF2 code, Keras and the OD API's fine-tune loader
# (model_lib_v2.load_fine_tune_checkpoint: Checkpoint(**restore_from_objects(type)).restore(p).expect_partial()
# .assert_existing_objects_matched()) call.  Each takes a fresh model and the written path.
def _checkpoint_restore(tf, model, path):
    status = tf.train.Checkpoint(model=model).restore(str(path))
    status.assert_existing_objects_matched()
    status.assert_consumed()  # nothing extra in the file: the alias is the same node, the counter is bound


def _od_api_classification(tf, model, path):  # SSDMetaArch.restore_from_objects('classification')
    tf.train.Checkpoint(feature_extractor=model).restore(str(path)).expect_partial().assert_existing_objects_matched()


def _od_api_detection(tf, model, path):  # SSDMetaArch.restore_from_objects('detection')
    checkpoint = tf.train.Checkpoint(model=tf.train.Checkpoint(_feature_extractor=model._feature_extractor))
    checkpoint.restore(str(path)).expect_partial().assert_existing_objects_matched()


def _checkpoint_manager(tf, model, path):
    checkpoint = tf.train.Checkpoint(model=model)
    manager = tf.train.CheckpointManager(checkpoint, str(Path(path).parent), max_to_keep=1)
    assert manager.latest_checkpoint == str(path)
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()


def _load_weights(tf, model, path):
    status = model.load_weights(str(path))
    status.assert_existing_objects_matched()
    status.assert_consumed()


CLIENTS = {"object": [_checkpoint_restore, _od_api_classification, _checkpoint_manager],
           "weights": [_load_weights], "h5": [lambda tf, model, path: model.load_weights(str(path))]}


@pytest.mark.parametrize("fixture,restore,classes,target", CASES)
def test_restores_into_a_fresh_model(zoo, tmp_path, tf, fixture, restore, classes, target):
    """Every layout restores with each of its clients' idioms, and holds the planned values."""
    with open_checkpoint(zoo[fixture]) as reader:
        plan = _plan(reader, restore, classes, target)
        clients = dict(CLIENTS)
        if hasattr(plan.model, "checkpoint_children"):  # the OD API detector: its loader's detection idiom; no h5
            clients = {"object": [_checkpoint_restore, _od_api_detection, _checkpoint_manager],
                       "weights": CLIENTS["weights"]}
        paths = {}
        for layout in clients:
            (tmp_path / layout).mkdir()
            paths[layout], written = write_model(plan, reader, tmp_path / layout, layout, "ckpt-0")
            verify_written(written, paths[layout], layout)
            if layout != "h5":
                write_state_file(tmp_path / layout, "ckpt-0")
        for layout, path in paths.items():
            for client in clients[layout]:
                model = build(plan.target)
                client(tf, model, path)
                # the detection idiom restores the feature extractor only; the heads keep the fresh model's values
                scope = "feature_extractor/" if client is _od_api_detection else ""
                _assert_planned_values(reader, plan, model, (layout, client.__name__), scope)


def _assert_planned_values(reader, plan, model, where, scope: str = "") -> None:
    restored = {v.name: v.numpy() for v in model.weights}
    for target, item in plan.planned.items():
        if not target.startswith(scope):
            continue
        got = restored.pop(plan.weights[target].variable.name)
        assert got.tobytes() == expected_value(reader, item, got.shape).tobytes(), (where, target)
    if scope:
        return
    initial = {v.name: v.numpy().tobytes() for v in plan.model.weights}
    assert {k: v.tobytes() for k, v in restored.items()} == {k: initial[k] for k in restored}, where
    assert len(restored) == len(plan.report.left_out_target), where


@pytest.mark.parametrize("fixture,classes", [("mobilenet_v2_small", None), ("mobilenet_v1_small", 1000)])
def test_h5_matches_tf_keras_save_weights(zoo, tmp_path, tf, fixture, classes, chunks):
    import h5py

    with open_checkpoint(zoo[fixture]) as reader:
        plan = _plan(reader, classes=classes)
        (tmp_path / "native").mkdir()
        path, written = write_model(plan, reader, tmp_path / "native", "h5", "ckpt-0")
        assert verify_written(written, path, "h5") == len(plan.planned)
        reference = _tf_reference(tf, plan, reader, tmp_path / "tf", "h5")

    def tree(file) -> dict:
        found = {"/": dict(file.attrs)}
        file.visititems(lambda name, obj: found.__setitem__(
            name, (dict(obj.attrs), obj.shape, obj.dtype.str, obj[()].tobytes()) if isinstance(obj, h5py.Dataset)
            else dict(obj.attrs)))
        return found

    with h5py.File(path, "r") as ours, h5py.File(reference, "r") as theirs:
        a, b = tree(ours), tree(theirs)
    assert list(a) == list(b)  # same groups and datasets, in the same order
    for name in a:
        assert _plain(a[name]) == _plain(b[name]), name


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value.tolist() if isinstance(value, np.ndarray) else value


def test_convert_never_assigns_the_models_variables(zoo, tmp_path, monkeypatch, tf):
    """The whole model is never materialised in TF variables (without --parity, which loads the output)."""
    from tensorflow.python.ops import resource_variable_ops

    def refuse(*args, **kwargs):
        raise AssertionError("convert assigned a model variable")

    monkeypatch.setattr(resource_variable_ops.BaseResourceVariable, "assign", refuse)
    for layout in ("object", "weights", "h5"):
        report = convert(zoo["mobilenet_v1_small"], tmp_path / layout, target=TargetSpec("auto"), layout=layout)
        assert report.verified == len(report.mapping.mapped)


@pytest.mark.parametrize("layout", ["object", "h5"])
def test_verification_catches_a_changed_byte(zoo, tmp_path, layout):
    with open_checkpoint(zoo["mobilenet_v1_small"]) as reader:
        plan = _plan(reader)
        path, written = write_model(plan, reader, tmp_path, layout, "ckpt-0")
    key = max((k for k, w in written.items() if w.target), key=lambda k: np.prod(written[k].shape))
    if layout == "h5":
        import h5py

        with h5py.File(path, "r+") as f:
            value = f[key][()]
            value.reshape(-1)[7] = np.nextafter(value.reshape(-1)[7], np.float32(np.inf))
            f[key][...] = value
    else:  # rewrite the tensor's bytes and its crc32c: only the digest can tell
        _rewrite_entry(path, key)
    with pytest.raises(VerificationError, match=rf"{written[key].target} does not hold the value converted"):
        verify_written(written, path, layout)


def test_verification_requires_every_key_in_the_object_graph(zoo, tmp_path):
    with open_checkpoint(zoo["mobilenet_v1_small"]) as reader:
        plan = _plan(reader)
        path, written = write_model(plan, reader, tmp_path, "object", "ckpt-0")
    extra = dict(written, **{"model/ghost/.ATTRIBUTES/VARIABLE_VALUE": next(iter(written.values()))})
    with pytest.raises(VerificationError, match="the object graph and the written tensors differ"):
        verify_written(extra, path, "object")


def _rewrite_entry(prefix: Path, key: str) -> None:
    """Change one element of a tensor in place and re-stamp its crc32c, as a buggy writer would have."""
    from migrate._formats._bundle import BundleReader
    from migrate._formats._crc import crc32c, mask
    from migrate._formats._write import write_index
    from dataclasses import replace

    with BundleReader(prefix) as reader:
        entries = {k: reader.entry(k) for k in reader.keys()}
        value = reader.read(key).copy()
    value.reshape(-1)[7] = -value.reshape(-1)[7] - 1
    raw = value.tobytes()
    entry = entries[key]
    with open(f"{prefix}.data-00000-of-00001", "r+b") as f:
        f.seek(entry.offset)
        f.write(raw)
    entries[key] = replace(entry, crc=mask(crc32c(raw)))
    write_index(Path(f"{prefix}.index"), entries, 1)


def test_only_transformed_tensors_are_read_whole(zoo, tmp_path, monkeypatch):
    """Reshapes, squeezes and plain copies stream in chunks; a drop_background is read whole and sliced."""
    from migrate._formats._bundle import BundleReader

    read = []
    original = BundleReader.read
    monkeypatch.setattr(BundleReader, "read", lambda self, name: read.append(name) or original(self, name))
    with open_checkpoint(zoo["mobilenet_v1_small"]) as reader:
        plan = _plan(reader, classes=1000)
        read.clear()
        write_model(plan, reader, tmp_path, "object", "ckpt-0")
    assert sorted(read) == ["MobilenetV1/Logits/Conv2d_1c_1x1/biases", "MobilenetV1/Logits/Conv2d_1c_1x1/weights"]


def test_only_the_weights_no_source_provides_are_drawn(zoo, tf, monkeypatch):
    """Planning builds the target without drawing the initial values the checkpoint replaces (keras:VGG16's
    138 M random numbers took 2 s): under --restore backbone the initializers run for the left-out head alone,
    and the head holds what they drew."""
    import tf_keras

    drawn = []
    glorot = tf_keras.initializers.GlorotUniform.__call__

    def spy(self, shape, dtype=None, **kwargs):
        drawn.append(tuple(shape))
        return glorot(self, shape, dtype, **kwargs)

    monkeypatch.setattr(tf_keras.initializers.GlorotUniform, "__call__", spy)
    with open_checkpoint(zoo["mobilenet_v1_small"]) as reader:
        plan = _plan(reader, restore="backbone")
    head = [t for t in plan.report.left_out_target if t.endswith("kernel")]
    assert head and sorted(drawn) == sorted(plan.weights[t].shape for t in head)
    for name in head:
        value = plan.weights[name].variable.numpy()
        limit = np.sqrt(6 / (np.prod(value.shape[:-1]) + value.shape[-1]))
        assert np.abs(value).max() <= limit and value.std() > 0.8 * limit / np.sqrt(3)  # uniform(-limit, limit)


def test_deferred_init_draws_what_is_not_provided(tf):
    import tf_keras

    from migrate._deferred_init import DeferredInit

    deferred = DeferredInit()
    with deferred.scope():
        layer = tf_keras.layers.Dense(3, kernel_initializer=tf_keras.initializers.Constant(2.0),
                                      bias_initializer=tf_keras.initializers.Constant(5.0))
        layer.build((None, 4))
    layer.kernel.assign(np.full((4, 3), 7.0, np.float32))  # what a restore would put there
    assert deferred.initialize([layer.kernel]) == 1
    assert (layer.kernel.numpy() == 7.0).all() and (layer.bias.numpy() == 5.0).all()
    assert deferred.initialize([]) == 0  # each variable is initialized at most once
