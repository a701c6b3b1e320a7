"""``ckpt-finetune export``: the OD API exporter's contract, checked as its users use the output.

The SavedModel is loaded in a fresh process and its detections compared with
the training-time model's on fixed images; ``checkpoint/ckpt-0`` is restored
with the TF2 OD API's own idiom; a converted checkpoint exports with the
pipeline.config written beside it.
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
SMALL = ["--image-size", "64", "--depth-multiplier", "0.25"]
LOAD = """
import sys, numpy as np, tensorflow as tf
from finetune._export import sample_inputs
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(input_tensor=sample_inputs(sys.argv[2], (64, 64), 3))
np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
"""


@pytest.fixture(scope="module")
def data() -> dict[str, Path]:
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    return fixtures.build(out, names=["detection_shapes", "ssd_mobilenet_v1_small"])


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    code = main(["train", "--pipeline-config", str(data["detection_shapes"] / "pipeline.config"), "--out", str(out),
                 "--from-scratch", "--num-steps", "2", "--num-examples", "4", "--batch-size", "4",
                 "--eval-batch-size", "4", "--quiet", "--no-tensorboard", *SMALL])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def exported(run, data, tmp_path_factory) -> tuple[Path, dict]:
    """One image_tensor export of the run and its report, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("exported")
    code = main(["export", "--format", "json", "--quiet", "--output", str(out / "report.json"), "--trained", str(run),
                 "--pipeline-config", str(data["detection_shapes"] / "pipeline.config"), "--out", str(out / "exp"),
                 "--input-type", "image_tensor", *SMALL])
    assert code == 0
    return out / "exp", json.loads((out / "report.json").read_text())


def _export(capsys, *argv) -> tuple[int, dict, str]:
    code = main(["export", "--format", "json", "--quiet", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


@pytest.mark.parametrize("input_type", ["image_tensor", "tf_example"])
def test_the_exported_saved_model_gives_the_training_time_detections_in_a_fresh_process(run, data, tmp_path,
                                                                                      capsys, input_type, request):
    from finetune import load_trained
    from finetune._export import sample_inputs
    from test_quantize_detection import assert_same_detections

    config = data["detection_shapes"] / "pipeline.config"
    if input_type == "image_tensor":
        exp, report = request.getfixturevalue("exported")
    else:
        exp = tmp_path / "exp"
        code, report, err = _export(capsys, "--trained", run, "--pipeline-config", config, "--out", exp,
                                    "--input-type", input_type, *SMALL)
        assert code == 0, err
    assert report["kind"] == "export" and report["checked_images"] == 3 and report["step"] == 2
    assert sorted(report["outputs"]) == ["detection_boxes", "detection_classes", "detection_scores", "num_detections"]
    from finetune.config import load_pipeline_config

    written = load_pipeline_config(exp / "pipeline.config")  # paths still name the same files
    assert written.input_files("train") == load_pipeline_config(config).input_files("train")
    found = tmp_path / "found.npz"
    subprocess.run([sys.executable, "-c", LOAD, str(exp / "saved_model"), input_type, str(found)],
                   check=True, cwd=REPO, capture_output=True)
    got = dict(np.load(found))
    trained = load_trained(run, task="detection", config_path=config, num_steps=1, image_size=64,
                           depth_multiplier=0.25)
    images = sample_inputs("image_tensor", (64, 64), 3)
    from finetune._serving import preprocess

    want = {k: np.asarray(v) for k, v in trained.task.detect(preprocess(images, (64, 64))).items()}
    assert_same_detections({"boxes": got["detection_boxes"], "classes": got["detection_classes"].astype(int),
                            "scores": got["detection_scores"], "num_detections": got["num_detections"].astype(int)},
                           want, top=100)


def test_the_exported_checkpoint_restores_with_the_od_apis_idiom(run, data, exported, capsys):
    import tensorflow as tf

    from migrate.models import odapi_ssd

    exp, _ = exported
    prefix = tf.train.latest_checkpoint(str(exp / "checkpoint"))
    assert prefix.endswith("ckpt-0")
    model = odapi_ssd("ssd_mobilenet_v1_keras", num_classes=3, depth_multiplier=0.25, image_size=64)
    tf.train.Checkpoint(model=model).restore(prefix).assert_consumed()  # the model alone, every value used
    before = sorted((p, p.stat().st_mtime_ns) for p in exp.rglob("*"))
    config = data["detection_shapes"] / "pipeline.config"
    code, _, err = _export(capsys, "--trained", run, "--pipeline-config", config, "--out", exp, *SMALL)
    assert code != 0 and "--overwrite" in err  # an export is never replaced silently
    assert sorted((p, p.stat().st_mtime_ns) for p in exp.rglob("*")) == before


def test_ckpt_quantize_takes_an_export_as_its_input(run, data, exported):
    import quantize
    from finetune._export import sample_inputs
    from finetune._serving import preprocess

    config = data["detection_shapes"] / "pipeline.config"
    images = preprocess(sample_inputs("image_tensor", (64, 64), 2), (64, 64))
    detections = []
    for model_dir, settings in ((exported[0], {}), (run, {"config_path": config})):
        task = quantize.load("detection", model_dir=model_dir, image_size=64, depth_multiplier=0.25, **settings)
        detections.append({k: v.numpy() for k, v in task.ssd.detect(images).items()})
    for name, value in detections[0].items():
        np.testing.assert_array_equal(value, detections[1][name], err_msg=name)


def test_a_converted_checkpoint_exports_with_its_pipeline_config(data, tmp_path, capsys):
    from migrate.cli import main as migrate_main

    assert migrate_main(["convert", str(data["ssd_mobilenet_v1_small"]), "--out", str(tmp_path / "conv"),
                         "--target", "auto", "--quiet"]) == 0
    capsys.readouterr()
    code, report, err = _export(capsys, "--checkpoint", tmp_path / "conv" / "ckpt-0", "--pipeline-config",
                                tmp_path / "conv" / "pipeline.config", "--out", tmp_path / "exp",
                                "--input-type", "encoded_image_string_tensor")
    assert code == 0, err
    assert report["checkpoint"].endswith("ckpt-0") and report["input_type"] == "encoded_image_string_tensor"
    assert (tmp_path / "exp" / "saved_model" / "saved_model.pb").is_file()


def test_a_checkpoint_of_another_model_is_one_line(data, tmp_path, capsys):
    code, _, err = _export(capsys, "--checkpoint", data["ssd_mobilenet_v1_small"] / "model.ckpt", "--pipeline-config",
                           data["detection_shapes"] / "pipeline.config", "--out", tmp_path / "exp")
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "exp").exists()
