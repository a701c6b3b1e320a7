"""ckpt-finetune's SSD reads and writes the TF2 OD API's checkpoint layout (issue 22, "Back").

One layout for the three ways a detector comes in or goes out of a run: a TF1
zoo checkpoint converted whole, a TF2 zoo tarball's ``checkpoint/ckpt-0``
beside its pipeline.config, and what fine-tuning writes, which the TF2 OD
API's own idioms restore (its fine-tune loader for ``detection``, its
exporter's ``Checkpoint(model=m).restore(p).expect_partial()``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from finetune.cli import main
from migrate.models import odapi_ssd

REPO = Path(__file__).resolve().parent.parent
RUN = ["--num-steps", "2", "--num-examples", "4", "--batch-size", "4", "--eval-batch-size", "4", "--quiet",
       "--format", "json", "--checkpoint-type", "detection"]


@pytest.fixture(scope="module")
def data() -> dict[str, Path]:
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    return fixtures.build(out, names=["detection_shapes", "ssd_mobilenet_v1_small"])


def _train(config: Path, checkpoint: Path, out: Path) -> dict:
    code = main(["train", "--pipeline-config", str(config), "--out", str(out), "--fine-tune-checkpoint",
                 str(checkpoint), *RUN])
    assert code == 0
    return json.loads((out / "finetune-report.json").read_text())


def _fields(config: Path) -> dict:
    """The odapi_ssd fields of the fixture's pipeline.config (SSD MobileNet v1, fixed_shape_resizer)."""
    text = config.read_text()
    number = lambda name: re.search(rf"{name}: ([\d.]+)", text).group(1)  # noqa: E731
    return dict(feature_extractor="ssd_mobilenet_v1_keras", num_classes=int(number("num_classes")),
                depth_multiplier=float(number("depth_multiplier")), image_size=int(number("height")))


@pytest.fixture(scope="module")
def from_tf1(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("odapi-finetune") / "run"
    return out, _train(data["detection_shapes"] / "pipeline.config", data["ssd_mobilenet_v1_small"], out)


def _restored_groups(report: dict) -> tuple[list[str], list[str]]:
    restore = report["restore"]
    return restore["restored_names"], restore["initialised_names"]


def test_a_tf1_detection_checkpoint_is_converted_whole_and_restores_as_detection(from_tf1):
    _, report = from_tf1
    restore = report["restore"]
    assert restore["converted"] and restore["checkpoint_type"] == "detection"
    restored, initialised = _restored_groups(report)
    assert any("/feature_map_generator/" in name for name in restored)  # the extra layers came from the TF1 SSD
    assert "conv_pw_{1..13}/kernel" in restored and restore["restored"] == 175 and restore["initialised"] == 24
    assert initialised and all(name.startswith("ssd_meta_arch/box_predictor/") for name in initialised)
    assert not any("backbone only" in warning for warning in report["warnings"])


def test_what_fine_tuning_writes_the_od_api_restores(from_tf1, data):
    """The TF2 OD API's exporter restores ``Checkpoint(model=detection_model)`` with expect_partial; its
    fine-tune loader restores ``detection`` from ``model/_feature_extractor``.  Both find every variable of a
    model with the OD API's structure, and nothing under ``model/`` is left over."""
    import tensorflow as tf

    out, _ = from_tf1
    path = tf.train.latest_checkpoint(str(out))
    fields = _fields(data["detection_shapes"] / "pipeline.config")
    exported = odapi_ssd(**fields)
    tf.train.Checkpoint(model=exported).restore(path).expect_partial().assert_existing_objects_matched()
    detection = odapi_ssd(**fields)
    fine_tune = tf.train.Checkpoint(model=tf.train.Checkpoint(_feature_extractor=detection._feature_extractor))
    fine_tune.restore(path).expect_partial().assert_existing_objects_matched()
    reference = tf.train.Checkpoint(model=odapi_ssd(**fields)).write(str(out.parent / "reference"))
    model_keys = lambda p: {k for k, _ in tf.train.list_variables(p) if k.startswith("model/")}  # noqa: E731
    written = {k for k in model_keys(path) if "/.OPTIMIZER_SLOT/" not in k}
    assert written == model_keys(reference)  # one layout: the same keys as the OD API structure writes
    value = tf.train.load_variable(path, "model/_box_predictor/_prediction_heads/box_encodings/0/"
                                         "_box_encoder_layers/0/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_array_equal(
        exported._box_predictor._prediction_heads["box_encodings"][0].stack[0].kernel.numpy(), value)


def test_a_tf2_zoo_tarball_layout_fine_tunes_as_detection(from_tf1, data, tmp_path):
    """``checkpoint/ckpt-0`` beside ``pipeline.config``, as the TF2 zoo ships them (here: what ckpt-migrate
    convert wrote for the TF1 checkpoint, moved into that layout)."""
    converted = from_tf1[0] / "converted"
    zoo = tmp_path / "ssd_mobilenet_v1_tf2"
    (zoo / "checkpoint").mkdir(parents=True)
    for part in converted.glob("ckpt-0.*"):
        shutil.copy(part, zoo / "checkpoint" / part.name)
    shutil.copy(converted / "pipeline.config", zoo / "pipeline.config")
    report = _train(data["detection_shapes"] / "pipeline.config", zoo / "checkpoint" / "ckpt-0", tmp_path / "run")
    restore = report["restore"]
    assert not restore["converted"] and restore["source_format"] == "tf2-object"
    assert restore["checkpoint_type"] == "detection"
    assert _restored_groups(report) == _restored_groups(from_tf1[1])  # the same variables as from the TF1 source


def _ssdlite_config(shapes: Path, out: Path) -> Path:
    """The fixture's pipeline.config as ssdlite_mobilenet_v2_coco says it: SSD MobileNet v2 at depth 1.0 with
    depthwise extra layers (feature_extractor.use_depthwise) and depthwise 3x3 box predictor heads."""
    text = (shapes / "pipeline.config").read_text()
    for old, new in (('type: "ssd_mobilenet_v1"', 'type: "ssd_mobilenet_v2"'),
                     ("depth_multiplier: 0.5", "depth_multiplier: 1.0\n      use_depthwise: true"),
                     ("kernel_size: 1", "kernel_size: 3\n        use_depthwise: true")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text = re.sub(r'(label_map_path|input_path): "([^"]+)"', lambda m: f'{m[1]}: "{shapes / m[2]}"', text)
    out.write_text(text)
    return out


SSDLITE = dict(feature_extractor="ssd_mobilenet_v2_keras", depth_multiplier=1.0, use_depthwise=True,
               box_predictor_kernel_size=3, box_predictor_depthwise=True, num_classes=3)


def _tf1_ssdlite(out: Path) -> Path:
    """A TF1 SSDLite MobileNet v2 checkpoint with ssdlite_mobilenet_v2_coco_2018_05_09's names (3 classes),
    saved by TensorFlow's own TF1 saver from the reference graph."""
    import tensorflow as tf

    from migrate.tf1_nets.ssd import ssd_mobilenet

    out.mkdir()
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        ssd_mobilenet(v1.placeholder(tf.float32, [1, 128, 128, 3]), anchors_per_location=[3, 6, 6, 6, 6, 6],
                      **SSDLITE)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, str(out / "model.ckpt"))
    return out


@pytest.fixture(scope="module")
def ssdlite(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ssdlite")
    config = _ssdlite_config(data["detection_shapes"], tmp / "ssdlite.config")
    return config, tmp / "run", _train(config, _tf1_ssdlite(tmp / "ssdlite"), tmp / "run")


def test_an_ssdlite_config_fine_tunes_from_a_converted_tf1_ssdlite(ssdlite):
    _, _, report = ssdlite
    restore = report["restore"]
    assert restore["converted"] and restore["checkpoint_type"] == "detection"
    model = odapi_ssd(**SSDLITE, image_size=128)
    heads = model._box_predictor.variables
    assert len(heads) == 6 * 2 * 7  # per map and head: depthwise kernel, its BatchNorm (4), 1x1 kernel and bias
    # everything but the SSDLite heads came from the TF1 checkpoint, the depthwise extra layers included
    assert (restore["restored"], restore["initialised"]) == (len(model.variables) - len(heads), len(heads))
    _, initialised = _restored_groups(report)
    assert all(name.startswith("ssd_meta_arch/box_predictor/") for name in initialised)
    assert "_depthwise/depthwise_kernel" in initialised[0]
    assert 0.0 <= report["test_metrics"]["mAP@0.5"] <= 1.0


def test_the_fine_tuned_ssdlite_exports_to_tflite_with_tensorflows_detections(ssdlite, data, tf):
    from quantize._source import load_run
    from quantize.detection import export_detection_tflite, open_detection_tflite, tflite_detections
    from test_quantize_detection import assert_same_detections

    config, run, _ = ssdlite
    source = load_run(run, task="detection", config_path=config)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 128, 128, 3)).astype(np.float32)
    path = export_detection_tflite(source.finetune_task, run.parent / "ssdlite.tflite", "float32")
    found = tflite_detections(open_detection_tflite(path), images)
    assert (found["num_detections"] > 0).all()
    reference = {k: np.asarray(v) for k, v in source.finetune_task.detect(images).items()}
    assert_same_detections(found, reference, top=100)
