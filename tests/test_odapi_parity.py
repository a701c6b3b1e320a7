"""Detector parity: the TF1 OD API SSD graph and the converted TF2 detector give the same raw outputs.

A "live" SSD (the fixture's names and shapes, He-scaled random weights, so
activations do not collapse) must pass on every feature map and both heads;
the same checkpoint converted with two extra layers swapped must fail at the
first map they feed; the untrained fixture, whose outputs do not depend on
the image, is ``inconclusive``.
"""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from migrate import TargetSpec, convert, open_checkpoint
from migrate._parity import ParityError
from migrate.formats import BundleWriter

SWAP = "layer_19_2_Conv2d_{}_3x3_s2_256_depthwise"  # maps 3 and 4: same shapes, different places


def _write_live(source, out, config: bool = True) -> None:
    """``source``'s names and shapes with He-scaled weights and neutral BatchNorm (and its pipeline.config)."""
    rng = np.random.default_rng(0)
    out.mkdir(parents=True)
    with open_checkpoint(source) as reader:
        items = sorted((n, tuple(reader.spec(n).shape), reader.spec(n).dtype) for n in reader.keys())
    writer = BundleWriter(out / "model.ckpt")
    for name, shape, dtype in items:
        if np.dtype(dtype).kind != "f":
            value = np.zeros(shape, dtype)
        elif name.endswith("weights"):
            fan_in = math.prod(shape[:2]) * (1 if name.endswith("depthwise_weights") else shape[2])
            value = rng.normal(0.0, math.sqrt(2 / fan_in), shape).astype(dtype)
        elif name.endswith(("gamma", "moving_variance")):
            value = np.ones(shape, dtype)
        else:
            value = rng.normal(0.0, 0.1, shape).astype(dtype)
        writer.add_array(name, value)
    writer.close()
    (out / "checkpoint").write_text('model_checkpoint_path: "model.ckpt"\n')
    if config:
        shutil.copy(source / "pipeline.config", out / "pipeline.config")


@pytest.fixture(scope="module")
def live(zoo, tmp_path_factory):
    root = tmp_path_factory.mktemp("live_ssd")
    for name in ("ssd_mobilenet_v1_small", "ssd_mobilenet_v2_small"):
        _write_live(zoo[name], root / name)
    return root


@pytest.mark.parametrize("name", ["ssd_mobilenet_v1_small", "ssd_mobilenet_v2_small"])
def test_a_live_detector_agrees_on_every_feature_map_and_head(live, tmp_path, name):
    report = convert(live / name, tmp_path / "out", target=TargetSpec("auto"), parity=True, parity_layers=True)
    parity = report.parity
    assert parity.verdict == "passed", parity
    names = {e.name for e in parity.layers}
    assert names == {f"{kind}[{i}]" for i in range(6)
                     for kind in ("feature_maps", "box_encodings", "class_predictions_with_background")}
    assert all(e.max_rel <= parity.threshold and e.spread > 0.1 for e in parity.outputs + parity.layers)


def test_swapped_extra_layers_are_caught_at_the_first_map_they_feed(live, tmp_path):
    from migrate.cli import main

    rules = tmp_path / "swap.toml"
    target = "feature_extractor/feature_map_generator/{}/depthwise_kernel"
    rules.write_text("".join(
        f"[[rule]]\nsource = '^FeatureExtractor/MobilenetV2/{SWAP.format(a)}/depthwise_weights$'\n"
        f"target = '{target.format(SWAP.format(b))}'\npart = \"detection\"\n\n" for a, b in ((3, 4), (4, 3))))
    with pytest.raises(ParityError) as e:
        convert(live / "ssd_mobilenet_v2_small", tmp_path / "out", target=TargetSpec("auto"), rules=rules,
                parity=True)
    parity = e.value.report.parity
    assert parity.verdict == "failed" and parity.first_divergence == "feature_maps[3]"
    assert {x.name for x in parity.layers if x.max_rel > parity.threshold} >= {"feature_maps[3]", "feature_maps[4]"}
    assert not (tmp_path / "out").exists()  # no output written
    code = main(["convert", str(live / "ssd_mobilenet_v2_small"), "--out", str(tmp_path / "cli"), "--target",
                 "auto", "--rules", str(rules), "--parity", "--quiet"])
    assert code == 1


def test_the_untrained_fixture_is_inconclusive_and_restore_detection_compares_the_features(zoo, live, tmp_path):
    report = convert(zoo["ssd_mobilenet_v2_small"], tmp_path / "untrained", target=TargetSpec("auto"), parity=True)
    assert report.parity.verdict == "inconclusive" and "does not depend on its input" in report.parity.explanation
    detection = convert(live / "ssd_mobilenet_v2_small", tmp_path / "det", target=TargetSpec("auto"),
                        restore="detection", parity=True, parity_layers=True)
    assert detection.parity.verdict == "passed"  # the heads were re-initialised: only the features compare
    assert {e.name.split("[")[0] for e in detection.parity.layers} == {"feature_maps"}


def test_a_tf1_ssdlite_checkpoint_converts_with_its_depthwise_heads(tmp_path, tf):
    """SSDLite (depthwise extra layers and depthwise box predictor heads), saved by TensorFlow's own TF1
    saver from the reference graph: keys as the OD API's own ssdlite model (3 classes), parity passes."""
    from migrate.tf1_nets.ssd import ssd_mobilenet
    from test_odapi_convert import _prefix
    from test_odapi_ssd import reference_keys

    fields = dict(feature_extractor="ssd_mobilenet_v2_keras", depth_multiplier=1.0, use_depthwise=True,
                  box_predictor_kernel_size=3, box_predictor_depthwise=True, anchors_per_location=[3, 6, 6, 6, 6, 6],
                  num_classes=3)
    source = tmp_path / "ssdlite"
    source.mkdir()
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        ssd_mobilenet(v1.placeholder(tf.float32, [1, 300, 300, 3]), **fields)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, str(source / "model.ckpt"))
    live = tmp_path / "live"
    _write_live(source, live, config=False)
    report = convert(live, tmp_path / "out", target=TargetSpec("auto"), parity=True)
    assert report.mapping.complete and report.parity.verdict == "passed"
    got = {name: tuple(shape) for name, shape in tf.train.list_variables(_prefix(tmp_path / "out"))}
    expected = reference_keys("ssdlite_mobilenet_v2_coco.keras")
    assert set(got) == set(expected)
    for key, shape in expected.items():
        if "class_predictions_with_background" in key and key.endswith("/kernel/.ATTRIBUTES/VARIABLE_VALUE") \
                or "class_predictions_with_background" in key and "/bias/" in key:
            shape = shape[:-1] + (shape[-1] // 91 * 4,)
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH":
            assert got[key] == shape, key


def test_restore_classification_compares_the_backbones_two_maps(live, tmp_path):
    """The classification layout holds the backbone alone: the extra layers and heads are not compared."""
    report = convert(live / "ssd_mobilenet_v2_small", tmp_path / "cls", target=TargetSpec("auto"),
                     restore="classification", parity=True, parity_layers=True)
    assert report.parity.verdict == "passed"
    assert {e.name for e in report.parity.layers} == {"feature_maps[0]", "feature_maps[1]"}
