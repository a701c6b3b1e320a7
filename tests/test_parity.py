"""Parity that can fail: agreement counts only where the compared outputs depend on the input.

A checkpoint whose values are random normal(0, 0.05) (what an untrained or
damaged slim ResNet looks like) drives the network into collapsed activations:
its logits are the same for every image, so any two networks agree on them.
Parity must say ``inconclusive`` there for the right target, and ``failed``
for Keras' ResNet50, which strides in another unit (the layers show it).
"""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from migrate import open_checkpoint
from migrate._convert import convert
from migrate._parity import MIN_SPREAD, ParityError, _verdict, parity_images
from migrate._targets import TargetSpec
from migrate.cli import main
from migrate.formats import BundleWriter
from reports import LayerError


def _write_random(out, names_shapes_dtypes) -> None:
    """A TF1 checkpoint (bundle + state file) whose float values are normal(0, 0.05), BatchNorm variances
    1 + |normal(0, 0.05)| (valid, near their initial value): untrained weights, whose signal fades."""
    rng = np.random.default_rng(0)
    writer = BundleWriter(out / "model.ckpt")
    for name, shape, dtype in sorted(names_shapes_dtypes):
        if np.dtype(dtype).kind == "f":
            value = rng.normal(0.0, 0.05, shape).astype(dtype)
            value = 1 + np.abs(value) if name.endswith("moving_variance") else value
        else:
            value = np.zeros(shape, dtype)
        writer.add_array(name, value)
    writer.close()
    (out / "checkpoint").write_text('model_checkpoint_path: "model.ckpt"\n')


@pytest.fixture(scope="module")
def random_resnet(zoo, tmp_path_factory):
    """resnet_v1_50_small's names and shapes, random values."""
    out = tmp_path_factory.mktemp("random_resnet")
    with open_checkpoint(zoo["resnet_v1_50_small"]) as reader:
        _write_random(out, [(n, reader.spec(n).shape, reader.spec(n).dtype) for n in reader.keys()])
    return out


@pytest.fixture(scope="module")
def random_resnet_full_width(tmp_path_factory, tf):
    """A slim resnet_v1_50 at the zoo's widths (what Keras' ResNet50 holds), random values: the issue's case."""
    from fixtures import _classifiers, _tf1

    with _tf1.graph():
        _classifiers.resnet_v1_50()
        variables = [(v.op.name, tuple(v.shape.as_list()), v.dtype.base_dtype.as_numpy_dtype)
                     for v in tf.compat.v1.global_variables()]
    out = tmp_path_factory.mktemp("random_resnet_full_width")
    _write_random(out, variables)
    return out


def test_the_right_target_on_collapsed_weights_is_inconclusive_not_passed(random_resnet, tmp_path):
    report = convert(random_resnet, tmp_path / "out", target=TargetSpec("auto"), parity=True)
    parity = report.parity
    assert parity.verdict == "inconclusive" and not parity.passed
    assert parity.outputs[0].max_rel <= parity.threshold  # the outputs agree ...
    assert parity.outputs[0].spread < MIN_SPREAD  # ... because they do not depend on the input
    assert "does not depend on its input" in parity.explanation
    assert (tmp_path / "out" / "checkpoint").is_file()  # the verified conversion is kept


def test_keras_resnet50_on_collapsed_weights_fails_at_its_first_block(random_resnet_full_width, tmp_path):
    """The false pass of before: the logits agreed (both collapsed), so parity said passed."""
    with pytest.raises(ParityError) as e:
        convert(random_resnet_full_width, tmp_path / "out", target=TargetSpec("keras:ResNet50"),
                parity=True)
    parity = e.value.report.parity
    assert parity.verdict == "failed" and parity.outputs[0].max_rel <= parity.threshold  # the outputs agree ...
    assert parity.outputs[0].spread < MIN_SPREAD  # ... because neither depends on its input
    # block 1 already differs (pool1's padding, then the stride in another unit): the layers show it
    assert parity.first_divergence.startswith("conv2_block"), parity.first_divergence
    assert parity.layers and all(not e.max_rel <= parity.threshold for e in parity.layers)  # only divergent ones
    assert "not function-compatible" in parity.explanation  # the rule set's note says why
    assert not (tmp_path / "out").exists()


def test_cli_exits_1_on_inconclusive_parity(random_resnet, tmp_path, capsys):
    code = main(["convert", str(random_resnet), "--out", str(tmp_path / "out"), "--target", "auto", "--parity",
                 "--parity-layers", "--format", "json", "--quiet"])
    assert code == 1
    captured = capsys.readouterr()
    parity = json.loads(captured.out)["parity"]
    assert parity["verdict"] == "inconclusive" and parity["layers"]  # every layer listed with --parity-layers
    assert all({"spread", "zero_fraction"} <= set(layer) for layer in parity["layers"])
    assert "parity inconclusive" in captured.err


def test_zoo_shows_inconclusive_parity_never_as_passed(random_resnet, tmp_path):
    from migrate import zoo

    source = tmp_path / "zoo"
    shutil.copytree(random_resnet, source / "resnet_v1_50_random")
    report = zoo(source, tmp_path / "out", jobs=1, quiet=True)
    (row,) = report.rows
    assert row.status == "converted" and row.parity_verdict == "inconclusive" and row.parity_passed is False
    assert "INCONCLUSIVE" in row.parity_text()


def test_verdict_rules():
    live, dead = dict(spread=0.5, zero_fraction=0.0), dict(spread=0.0, zero_fraction=1.0)
    ok = LayerError("out", 1e-7, 1e-7, **live)
    assert _verdict([ok, LayerError("l1", 0.0, 0.0, **live)], 1e-4, 4) == ("passed", None, None)
    assert _verdict([ok, LayerError("l1", 1.0, 0.5, **live)], 1e-4, 4)[:2] == ("failed", "l1")
    assert _verdict([LayerError("out", math.nan, math.nan, **live)], 1e-4, 4)[:2] == ("failed", "out")
    verdict, _, why = _verdict([LayerError("out", 0.0, 0.0, **dead), LayerError("l1", 0.0, 0.0, **live)], 1e-4, 4)
    assert verdict == "inconclusive" and "100% zeros" in why and "1 of 1 compared layers" in why


def test_parity_images_differ_from_each_other():
    images = parity_images(32)
    assert images.shape == (4, 32, 32, 3) and images.min() >= -1 and images.max() <= 1
    assert all(np.abs(images[i] - images[j]).mean() > 0.1 for i in range(4) for j in range(i))
