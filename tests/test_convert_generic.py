"""Generic conversion: every fixture becomes a TF2 object-based checkpoint that
tf.train.Checkpoint restores completely and bit-identically."""
from __future__ import annotations

import json

import numpy as np
import pytest

import fixtures
from migrate import open_checkpoint
from migrate._convert import convert
from migrate._formats._objgraph import object_path
from migrate._select import SelectOptions
from migrate.cli import main

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
COUNTER = "save_counter" + SUFFIX


def restore_mirror(tf, out_dir):
    """Restore into a tf.Module tree mirroring the object graph, as a client does: ``Checkpoint.restore``
    (which creates ``save_counter`` and binds it) with both assertions; and ``Checkpoint.save`` of the same
    objects writes the same keys.  Returns every restored value but the counter."""
    path = tf.train.latest_checkpoint(str(out_dir))
    ref = tf.train.load_checkpoint(path)
    shapes, dtypes = ref.get_variable_to_shape_map(), ref.get_variable_to_dtype_map()
    assert COUNTER in shapes and dtypes[COUNTER] == tf.int64  # what Checkpoint.save writes and restore requires
    root, variables = {}, {}
    for key in shapes:
        if key in ("_CHECKPOINTABLE_OBJECT_GRAPH", COUNTER):
            continue
        parts = object_path(key)
        holder = root
        for part in parts[:-1]:
            holder = holder.setdefault(part, {})
        variables[key] = holder[parts[-1]] = tf.Variable(tf.zeros(shapes[key], dtypes[key]))
    children = {name: _modules(tf, sub) if isinstance(sub, dict) else sub for name, sub in root.items()}
    checkpoint = tf.train.Checkpoint(**children)
    status = checkpoint.restore(path)
    status.assert_consumed()
    status.assert_existing_objects_matched()
    own = checkpoint.save(str(out_dir.parent / "tf-own" / "ckpt"))
    assert {k for k, _ in tf.train.list_variables(own)} == set(shapes)
    return {key: v.numpy() for key, v in variables.items()}


def _modules(tf, tree):
    module = tf.Module()
    for name, value in tree.items():
        setattr(module, name, _modules(tf, value) if isinstance(value, dict) else value)
    return module


@pytest.mark.parametrize("name", [n for n in fixtures.NAMES if n not in ("dtypes",)])
def test_generic_roundtrip(name, zoo, tmp_path, tf):
    report = convert(zoo[name], tmp_path / "out")
    restored = restore_mirror(tf, tmp_path / "out")
    assert report.verified == len(restored) + 1 and restored  # + save_counter
    with open_checkpoint(zoo[name]) as source:
        for key, value in restored.items():
            item = next(m for m in report.mapping.mapped if m.target == key)
            sources = item.source.split(", ")
            expected = np.concatenate([source.read(s) for s in sources]) if len(sources) > 1 else source.read(sources[0])
            assert value.tobytes() == expected.tobytes() and value.shape == expected.shape, key


def test_dtypes_roundtrip_without_tensorflow_variables(zoo, tmp_path, tf):
    """Strings, bool, bfloat16 ... : compare through tf.train.load_checkpoint (no tf.Variable of strings needed)."""
    convert(zoo["dtypes"], tmp_path / "out")
    ref = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "out")))
    with open_checkpoint(zoo["dtypes"]) as source:
        for name in source.keys():
            if name == "global_step":
                continue
            got = ref.get_tensor(name + SUFFIX)
            want = source.read(name)
            assert np.asarray(got).tobytes() == want.tobytes() if want.dtype != object else list(np.asarray(got).ravel()) == list(want.ravel())


def test_drops_slots_and_counters_by_default(zoo, tmp_path):
    report = convert(zoo["mobilenet_v1_rmsprop_ema"], tmp_path / "out")
    reasons = report.mapping.dropped
    assert any("RMSProp" in r for r in reasons.values())
    assert reasons["global_step"].startswith("step counter")
    assert not any("RMSProp" in m.source or "ExponentialMovingAverage" in m.source for m in report.mapping.mapped)


def test_use_ema_takes_shadows(zoo, tmp_path, tf):
    convert(zoo["mobilenet_v1_rmsprop_ema"], tmp_path / "out", options=SelectOptions(use_ema=True))
    restored = restore_mirror(tf, tmp_path / "out")
    with open_checkpoint(zoo["mobilenet_v1_rmsprop_ema"]) as source:
        name = "MobilenetV1/Conv2d_0/weights"
        assert np.array_equal(restored[name + SUFFIX], source.read(name + "/ExponentialMovingAverage"))
        assert not np.array_equal(restored[name + SUFFIX], source.read(name))


def test_keep_optimizer_and_global_step(zoo, tmp_path):
    report = convert(zoo["bert_tiny_adam"], tmp_path / "out",
                     options=SelectOptions(keep_optimizer=True, keep_global_step=True))
    sources = {m.source for m in report.mapping.mapped}
    assert {"beta1_power", "global_step", "bert/pooler/dense/kernel/Adam"} <= sources


def test_partitions_are_joined(zoo, tmp_path, tf):
    for name in ("partitioned", "partitioned_parts"):
        out = tmp_path / name
        convert(zoo[name], out)
        restored = restore_mirror(tf, out)
        assert restored["embedding/weights" + SUFFIX].shape == (64, 16), name


def test_shards_are_linked_and_output_is_complete(zoo, tmp_path):
    report = convert(zoo["sharded"], tmp_path / "out")
    kinds = list(report.shards.values())
    assert kinds.count("linked") == 2 and kinds[-1] == "written"
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["checkpoint", "ckpt-0.data-00000-of-00003", "ckpt-0.data-00001-of-00003",
                     "ckpt-0.data-00002-of-00003", "ckpt-0.index", "conversion.json", "conversion.md"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary directory left behind"


def test_existing_output_needs_overwrite(zoo, tmp_path, capsys):
    src, out = str(zoo["vgg_16_v1"]), str(tmp_path / "out")
    assert main(["convert", src, "--out", out, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mapping"]["summary"]["mapped"] == 33 and data["verified"] == 33 + 1  # + save_counter
    assert main(["convert", src, "--out", out]) == 2
    assert "output exists; pass --overwrite" in capsys.readouterr().err
    assert main(["convert", src, "--out", out, "--overwrite", "--copy"]) == 0


def test_refuses_to_replace_its_input(zoo, tmp_path):
    import shutil

    entry = shutil.copytree(zoo["mobilenet_v1_small"], tmp_path / "m")
    assert main(["convert", str(entry), "--out", str(entry), "--overwrite"]) == 2
    assert (entry / "model.ckpt.index").exists()
