"""``ckpt-migrate inspect``: output formats, the JSON contract, stats and exit codes."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from migrate import open_checkpoint
from migrate.cli import main


def run_json(capsys, *args) -> tuple[int, dict]:
    code = main(["inspect", *map(str, args), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_contract(zoo, capsys):
    code, data = run_json(capsys, zoo["mobilenet_v1_rmsprop_ema"])
    assert code == 0
    assert {"path", "format", "tensors", "totals", "architecture", "findings"} <= set(data)
    assert data["format"] == "tf1-v2"
    assert set(data["totals"]) >= {"tensors", "parameters", "bytes", "by_role"}
    assert set(data["architecture"]) >= {"name", "confidence", "evidence"}
    tensor = data["tensors"][0]
    assert set(tensor) >= {"name", "shape", "dtype", "role", "bytes", "optimizer"}
    slots = [t for t in data["tensors"] if t["role"] == "optimizer_slot"]
    assert slots and all(t["optimizer"] == "RMSProp" for t in slots)
    assert data["totals"]["tensors"] == len(data["tensors"])
    assert data["totals"]["bytes"] == sum(t["bytes"] for t in data["tensors"])


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_text_formats_show_everything(zoo, capsys, fmt):
    assert main(["inspect", str(zoo["resnet_v1_50_small"]), "--format", fmt, "--depth", "2"]) == 0
    out = capsys.readouterr().out
    assert "slim/resnet_v1_50" in out
    assert "resnet_v1_50/block1/" in out  # scope tree, depth 2
    assert "normalization_statistic" in out and "counter" in out
    if fmt == "markdown":
        assert "| role" in out


def test_depth_limits_scope_tree(zoo, capsys):
    main(["inspect", str(zoo["resnet_v1_50_small"]), "--depth", "1"])
    scopes = capsys.readouterr().out.split("Scopes")[1].split("Tensors")[0]
    assert "resnet_v1_50/" in scopes and "block1/" not in scopes


def test_totals_match_tensorflow(zoo, tf):
    from migrate import inspect

    report = inspect(zoo["resnet_v2_50_small"])
    ref = tf.train.load_checkpoint(str(zoo["resnet_v2_50_small"] / "model.ckpt"))
    shapes = ref.get_variable_to_shape_map()
    assert report.totals.tensors == len(shapes)
    weights = [n for n in shapes if "Momentum" not in n and n != "global_step"]
    assert report.totals.parameters == sum(math.prod(shapes[n]) for n in weights)


def test_stats_match_numpy(zoo, capsys):
    code, data = run_json(capsys, zoo["dtypes"], "--stats")
    assert code == 0
    with open_checkpoint(zoo["dtypes"]) as reader:
        for t in data["tensors"]:
            if t["dtype"] in ("string", "bool") or "stats" not in t:
                continue
            value = reader.read(t["name"]).astype(np.float64)
            stats = t["stats"]
            if value.size == 0:
                assert stats["min"] is None and stats["zero_fraction"] == 0.0
                continue
            assert stats["min"] == pytest.approx(value.min()), t["name"]
            assert stats["max"] == pytest.approx(value.max()), t["name"]
            assert stats["mean"] == pytest.approx(value.mean(), rel=1e-5, abs=1e-6), t["name"]
            assert stats["std"] == pytest.approx(value.std(), rel=1e-4, abs=1e-6), t["name"]
            assert stats["zero_fraction"] == pytest.approx(np.mean(value == 0)), t["name"]


def _checkpoint_with(tmp_path, tf, values: dict[str, np.ndarray]):
    g = tf.Graph()
    with g.as_default():
        for name, value in values.items():
            tf.compat.v1.Variable(value, name=name)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(tmp_path / "model.ckpt"))
    return tmp_path


def test_nan_inf_is_an_error_finding(tmp_path, tf, capsys):
    bad = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], dtype=np.float32)
    path = _checkpoint_with(tmp_path, tf, {"w": bad, "zeros": np.zeros(4, np.float32), "ones": np.ones(3, np.float32)})
    code, data = run_json(capsys, path, "--stats")
    assert code == 1
    codes = {(f["code"], f["tensor"]) for f in data["findings"]}
    assert ("non-finite", "w") in codes and ("all-zero", "zeros") in codes and ("constant", "ones") in codes
    w = next(t for t in data["tensors"] if t["name"] == "w")["stats"]
    assert (w["nan"], w["inf"], w["min"], w["max"]) == (1, 2, 0.0, 1.0)


def test_clean_checkpoint_without_stats_exits_zero(zoo):
    assert main(["inspect", str(zoo["vgg_16_v1"])]) == 0


def test_verify_passes_on_every_fixture(zoo):
    for path in zoo.values():
        assert main(["inspect", str(path), "--verify", "--format", "json"]) == 0, path
