"""The native readers agree with TensorFlow on every fixture, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

import fixtures
from migrate import open_checkpoint

TF_READABLE = ("tf1-v1", "tf1-v2", "tf2-object", "saved-model")


def _same(ours: np.ndarray, theirs) -> bool:
    theirs = np.asarray(theirs)
    if ours.dtype == object:
        return [bytes(v) for v in ours.ravel()] == [bytes(v) for v in theirs.ravel()]
    return ours.shape == theirs.shape and ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


H5_NAMES = [n for n in fixtures.NAMES if n.startswith("keras_h5")]


@pytest.mark.parametrize("name", [n for n in fixtures.NAMES if n not in H5_NAMES])
def test_native_reader_matches_tensorflow(name, zoo, tf):
    with open_checkpoint(zoo[name]) as reader:
        assert reader.format in TF_READABLE
        ref = tf.train.load_checkpoint(str(reader.path))
        shapes, dtypes = ref.get_variable_to_shape_map(), ref.get_variable_to_dtype_map()
        assert reader.keys() == sorted(shapes)
        for key in reader.keys():
            spec = reader.spec(key)
            assert spec.shape == tuple(shapes[key]), key
            assert spec.dtype == dtypes[key].name, key
            assert _same(reader.read(key), ref.get_tensor(key)), key


@pytest.mark.parametrize("name", H5_NAMES)
def test_h5_reader_matches_keras_listing(name, zoo):
    import h5py

    with h5py.File(zoo[name], "r") as f, open_checkpoint(zoo[name]) as reader:
        root = f["model_weights"] if "model_weights" in f else f
        prefix = "model_weights/" if "model_weights" in f else ""
        listed = [
            f"{prefix}{_text(layer)}/{_text(weight)}"
            for layer in root.attrs["layer_names"]
            for weight in root[_text(layer)].attrs["weight_names"]
        ]
        assert listed, "fixture has no weights"
        assert set(listed) <= set(reader.keys())
        for key in listed:
            assert np.array_equal(reader.read(key), f[key][()]), key


@pytest.mark.parametrize("name", fixtures.NAMES)
def test_streamed_chunks_equal_full_read(name, zoo):
    with open_checkpoint(zoo[name]) as reader:
        for key in reader.keys():
            if reader.spec(key).dtype == "string":
                continue
            whole = reader.read(key).reshape(-1)
            streamed = np.concatenate(list(reader.iter_chunks(key, chunk_bytes=64))) if whole.size else whole
            assert streamed.tobytes() == whole.tobytes(), key


def test_v1_sliced_tensor_is_assembled(tmp_path, tf):
    """TensorFlow itself refuses sliced V1 tensors; the native reader assembles them."""
    g = tf.Graph()
    with g.as_default():
        part = tf.compat.v1.get_variable("emb", [10, 3], partitioner=tf.compat.v1.fixed_size_partitioner(3),
                                         initializer=tf.compat.v1.random_normal_initializer(seed=3))
        full = tf.concat(list(part), axis=0)
        v1 = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            expected = sess.run(full)
            v1.save(sess, str(tmp_path / "model.ckpt"))
    with open_checkpoint(tmp_path / "model.ckpt") as reader:
        assert reader.format == "tf1-v1"
        assert np.array_equal(reader.read("emb"), expected)


def test_inspect_does_not_import_tensorflow(zoo):
    import subprocess
    import sys

    code = (
        "import sys, migrate; r = migrate.inspect(sys.argv[1], stats=True, verify=True);"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    for name in ("mobilenet_v1_rmsprop_ema", "vgg_16_v1", "tf2_object", "keras_h5"):
        subprocess.run([sys.executable, "-c", code, str(zoo[name])], check=True)
