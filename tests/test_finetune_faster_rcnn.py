"""``ckpt-finetune`` on a Faster R-CNN pipeline.config, as an OD API user runs it.

The TF1 zoo's faster_rcnn_resnet50 layout (the fixture, TensorFlow's own
saver) is the fine_tune_checkpoint: converted on the fly and restored as
``detection`` (both feature extractors).  The run writes the OD API's
TensorBoard tags, resumes to bit-identical weights (the samplers are seeded by
the step), freezes by regex, and exports a SavedModel whose detections, in a
fresh process, equal the training-time model's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from finetune.cli import main

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "tests" / "data" / "configs" / "faster_rcnn_shapes.config.in"
SMALL = ["--depth-multiplier", "0.0625", "--quiet", "--format", "json"]  # the fixture: ResNet-50 depths / 16
LOAD = """
import sys, numpy as np, tensorflow as tf
from finetune._export import sample_inputs
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(input_tensor=sample_inputs(sys.argv[2], (128, 128), 3))
np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
"""


@pytest.fixture(scope="module")
def data() -> dict[str, Path]:
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    return fixtures.build(out, names=["detection_shapes", "faster_rcnn_resnet50_small"])


def write_config(path: Path, data: Path, checkpoint: Path, checkpoint_type: str = "detection") -> Path:
    """The shapes data with a Faster R-CNN ResNet-50 model block (the zoo's, at 128x128 with 32-pixel anchors)."""
    text = CONFIG.read_text().replace("@DATA@", str(data)).replace("@CHECKPOINT@", str(checkpoint))
    path.write_text(text.replace('fine_tune_checkpoint_type: "detection"',
                                 f'fine_tune_checkpoint_type: "{checkpoint_type}"'))
    return path


@pytest.fixture(scope="module")
def config(data, tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("frcnn") / "pipeline.config", data["detection_shapes"],
                        data["faster_rcnn_resnet50_small"] / "model.ckpt")


def _train(capsys, config, out, *argv) -> dict:
    code = main(["train", "--pipeline-config", str(config), "--out", str(out), *SMALL, *map(str, argv)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(stdout)


@pytest.fixture(scope="module")
def run(config, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("frcnn-run") / "run"
    code = main(["train", "--pipeline-config", str(config), "--out", str(out), *SMALL, "--num-steps", "6",
                 "--eval-every", "6", "--output", str(out.parent / "report.json")])
    assert code == 0
    return out, json.loads((out.parent / "report.json").read_text())


def test_a_tf1_faster_rcnn_fine_tunes_from_its_feature_extractors(run, tf):
    out, report = run
    restore = report["restore"]
    assert restore["checkpoint_type"] == "detection" and restore["converted"] and restore["restored"] == 265
    assert restore["initialised"] == 10 and report["steps"] == 6  # the RPN and the box classifier's heads
    assert all(name.startswith("faster_rcnn_meta_arch/") for name in restore["initialised_names"])
    keys = {name for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(out)))}
    assert any(k.startswith("model/_feature_extractor_for_proposal_features/") for k in keys)
    assert any(k.startswith("model/_mask_rcnn_box_predictor/") for k in keys)
    assert {"mAP@0.5", "AR@100", "loss/rpn_objectness"} <= set(report["metrics_history"][-1]["metrics"])


def test_tensorboard_has_the_od_apis_faster_rcnn_tags(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = run
    tags = set()
    for events in (out / "tensorboard").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0})
        accumulator.Reload()
        tags |= set(accumulator.Tags()["tensors"])
    assert {"Loss/RPNLoss/localization_loss", "Loss/RPNLoss/objectness_loss",
            "Loss/BoxClassifierLoss/localization_loss", "Loss/BoxClassifierLoss/classification_loss",
            "DetectionBoxes_Precision/mAP@.50IOU", "DetectionBoxes_Recall/AR@100"} <= tags


def test_a_resumed_run_ends_with_the_uninterrupted_runs_weights(run, config, tmp_path, capsys, tf):
    out, _ = run
    half = tmp_path / "half"
    _train(capsys, config, half, "--num-steps", "3", "--checkpoint-every", "3", "--no-tensorboard")
    _train(capsys, config, half, "--num-steps", "6", "--checkpoint-every", "3", "--no-tensorboard")
    ours, theirs = (tf.train.load_checkpoint(tf.train.latest_checkpoint(str(d))) for d in (half, out))
    names = [n for n, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(out))) if n.startswith("model/")]
    assert names and all(np.array_equal(ours.get_tensor(n), theirs.get_tensor(n)) for n in names)


def test_freeze_regexes_keep_the_named_layers(config, tmp_path, capsys, tf):
    _train(capsys, config, tmp_path / "frozen", "--num-steps", "2", "--no-tensorboard",
           "--freeze", r"^resnet_v1_50\.(conv1|block1)[./]")
    converted = tf.train.load_checkpoint(str(tmp_path / "frozen" / "converted" / "ckpt-0"))
    trained = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "frozen")))
    first = "model/_feature_extractor_for_proposal_features/layer_with_weights-{}/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    conv1, block1, block2 = (first.format(i) for i in (0, 2, 2 * (1 + 3 * 3 + 1)))  # conv, BN pairs; shortcut
    for key in (conv1, block1):
        assert np.array_equal(converted.get_tensor(key), trained.get_tensor(key)), key
    assert not np.array_equal(converted.get_tensor(block2), trained.get_tensor(block2))


def test_the_export_gives_the_training_time_detections_in_a_fresh_process(run, config, tmp_path, capsys):
    from finetune import load_trained
    from finetune._export import sample_inputs
    from finetune._serving import preprocess
    from test_quantize_detection import assert_same_detections

    out, _ = run
    code = main(["export", "--trained", str(out), "--pipeline-config", str(config), "--out", str(tmp_path / "exp"),
                 "--input-type", "encoded_image_string_tensor", *SMALL])
    report, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(json.loads(report)["outputs"]) == [
        "detection_boxes", "detection_classes", "detection_scores", "num_detections"]
    found = tmp_path / "found.npz"
    subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "exp" / "saved_model"),
                    "encoded_image_string_tensor", str(found)], check=True, cwd=REPO, capture_output=True)
    got = dict(np.load(found))
    trained = load_trained(out, task="detection", config_path=config, depth_multiplier=0.0625)
    images = preprocess(sample_inputs("image_tensor", (128, 128), 3), (128, 128))
    want = {k: np.asarray(v) for k, v in trained.task.detect(images).items()}
    assert_same_detections({"boxes": got["detection_boxes"], "classes": got["detection_classes"].astype(int),
                            "scores": got["detection_scores"], "num_detections": got["num_detections"].astype(int)},
                           want, top=100)


def test_ckpt_quantize_refuses_a_two_stage_run_in_one_line(run, config, tmp_path, capsys):
    from quantize.cli import main as quantize

    out, _ = run
    code = quantize(["--quiet", "export", "--trained", str(out), "--task", "detection", "--pipeline-config",
                     str(config), "--out", str(tmp_path / "q"), "--depth-multiplier", "0.0625"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "a Faster R-CNN run" in err and "ckpt-finetune export" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "q").exists()



@pytest.mark.parametrize("shape,frame", [((100, 50), (1.0, 0.5)), ((40, 200), (0.2, 1.0)), ((64, 64), (0.5, 0.5))])
def test_keep_aspect_ratio_resizing_fits_then_pads_as_the_od_api(shape, frame, tf):
    """resize_to_range(min 60, max 120): the shorter side to 60 unless the longer would pass 120; then padded."""
    from finetune.data import fit_and_pad

    image = tf.ones([*shape, 3])
    boxes = tf.constant([[0.0, 0.0, 1.0, 1.0], [0.5, 0.25, 0.75, 0.5]])
    fitted, moved, share = fit_and_pad(image, boxes, 60, 120)
    assert fitted.shape == (120, 120, 3) and np.allclose(share, frame)
    height, width = round(frame[0] * 120), round(frame[1] * 120)
    assert float(tf.reduce_min(fitted[:height, :width])) == 1.0 and float(tf.reduce_sum(fitted)) == height * width * 3
    assert np.allclose(moved, boxes.numpy() * np.tile(frame, 2))


def test_a_keep_aspect_ratio_config_trains_padded_and_exports_boxes_on_the_image(data, tmp_path, capsys, tf):
    from finetune import load_trained
    from finetune._export import sample_inputs
    from finetune.data import fit_and_pad

    config = write_config(tmp_path / "pipeline.config", data["detection_shapes"],
                          data["faster_rcnn_resnet50_small"] / "model.ckpt")
    resizer = "keep_aspect_ratio_resizer { min_dimension: 96 max_dimension: 128 pad_to_max_dimension: true }"
    config.write_text(config.read_text().replace("fixed_shape_resizer { height: 128 width: 128 }", resizer))
    report = _train(capsys, config, tmp_path / "run", "--num-steps", "2", "--no-tensorboard")
    assert report["backbone"].endswith("128x128)") and not report["warnings"][1:]  # the EMA note only
    code = main(["export", "--trained", str(tmp_path / "run"), "--pipeline-config", str(config),
                 "--out", str(tmp_path / "exp"), *SMALL])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    serve = tf.saved_model.load(str(tmp_path / "exp" / "saved_model")).signatures["serving_default"]
    pixels = sample_inputs("image_tensor", (128, 128), 2)
    got = serve(input_tensor=pixels)
    trained = load_trained(tmp_path / "run", task="detection", config_path=config, depth_multiplier=0.0625)
    fitted = tf.stack([fit_and_pad(tf.cast(p, tf.float32) / 255.0, tf.zeros([0, 4]), 96, 128)[0] for p in pixels])
    want = trained.task.detect(fitted * 2.0 - 1.0)  # 96x96 pictures in 128x128 frames: boxes scaled by 128 / 96
    np.testing.assert_allclose(got["detection_boxes"], np.clip(want["boxes"].numpy() * 128 / 96, 0, 1), atol=1e-4)
    np.testing.assert_allclose(got["detection_scores"], want["scores"], atol=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two runs of about 7 minutes each
def test_transfer_from_a_tf1_classification_resnet_beats_random_initialisation(data, tmp_path, capsys):
    """The OD API's TF1 recipe, scaled down: a slim ResNet-50 classifier (at 1/8 depth, trained in TF1 on the
    shapes classification task) as a classification fine_tune_checkpoint, against random initialisation:
    600 steps of batch 8 at learning rate 0.003 on 150 images each, scored on the 100 test images."""
    import fixtures
    from reports import load_report

    legacy = fixtures.build(data["detection_shapes"].parent, names=["resnet_v1_50_shapes_legacy"])
    shapes = data["detection_shapes"]
    config = write_config(tmp_path / "pipeline.config", shapes,
                          legacy["resnet_v1_50_shapes_legacy"] / "model.ckpt", "classification")
    code = main(["transfer", "--pipeline-config", str(config), "--out", str(tmp_path / "cmp"),
                 "--depth-multiplier", "0.125", "--num-steps", "600", "--learning-rate", "0.003",
                 "--eval-every", "200", "--num-examples", "100", "--eval-batch-size", "10",
                 "--test-input-path", str(shapes / "test.record"), "--no-tensorboard", "--quiet", "--format", "json"])
    capsys.readouterr()
    report = load_report(tmp_path / "cmp" / "transfer-report.json")
    assert code == 0 and report.finetuned.restored == 265 and report.random.restored == 0
    assert report.beats_random and report.gain >= 0.02, (report.finetuned.test_metric, report.random.test_metric)
