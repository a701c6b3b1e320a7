"""``ckpt-finetune``: few-step runs end to end on the fixtures, resuming, and one clear line for bad input.

Runs are tiny (2-3 steps, batch 4, 64x64 inputs, a depth-0.25 MobileNet
converted from the ``mobilenet_v1_small`` TF1 fixture) and call ``main`` in
this process, so TensorFlow is imported once.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from finetune.cli import main

REPO = Path(__file__).resolve().parent.parent
SMALL_EVAL = ["--image-size", "64", "--depth-multiplier", "0.25", "--eval-batch-size", "4", "--format", "json"]
SMALL = SMALL_EVAL + ["--batch-size", "4", "--quiet"]


@pytest.fixture(scope="module")
def data() -> dict[str, Path]:
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    return fixtures.build(out, names=["detection_shapes", "classify_shapes", "mobilenet_v1_small",
                                      "resnet_v1_50_small"])


def _head(source: Path, out: Path, n: int, extra=()) -> Path:
    """The first ``n`` records of ``source`` (then ``extra`` raw records) as a new TFRecord file."""
    from finetune.data import iter_records, write_records

    write_records(out, [r.data for r in islice(iter_records(source), n)] + list(extra))
    return out


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ----------------------------------------------------------------- detection end to end
@pytest.fixture(scope="module")
def detection_run(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finetune-detection")
    shapes = data["detection_shapes"]
    test = _head(shapes / "test.record", tmp / "test.record", 8)
    argv = ["train", "--pipeline-config", shapes / "pipeline.config", "--out", tmp / "run",
            "--fine-tune-checkpoint", data["mobilenet_v1_small"], "--num-steps", 2, "--num-examples", 4,
            "--test-input-path", test, "--log-every", 1, *SMALL]
    code = main([str(a) for a in argv])
    return code, tmp / "run", argv


def test_detection_finetunes_from_a_converted_tf1_checkpoint(detection_run, capsys):
    code, model_dir, _ = detection_run
    assert code == 0
    report = json.loads((model_dir / "finetune-report.json").read_text())
    assert report["kind"] == "finetune" and report["task"] == "detection"
    assert (report["start_step"], report["steps"]) == (0, 2)
    restore = report["restore"]
    assert restore["converted"] and restore["source_format"] == "tf1-v2"
    assert restore["restored"] > 100 and restore["initialised"] > 0  # backbone restored, SSD head fresh
    assert (model_dir / "converted" / "checkpoint").is_file()
    assert report["test_split"] == "test.record"
    assert 0.0 <= report["test_metrics"]["mAP@0.5"] <= 1.0
    assert [m["step"] for m in report["metrics_history"]] == [2]
    assert "Fine-tuning: detection" in (model_dir / "finetune-report.md").read_text()


def test_tensorboard_is_on_by_default_with_the_od_apis_tags(detection_run):
    from test_engine_loop import _events

    _, model_dir, _ = detection_run
    train, evaluation = (_events(model_dir / "tensorboard" / kind) for kind in ("train", "eval"))
    assert {"Loss/total_loss", "Loss/localization_loss", "Loss/classification_loss", "Loss/regularization_loss",
            "learning_rate"} <= set(train), sorted(train)
    assert train["config/pipeline"][0][1] == "text"  # the run's config, in the text dashboard
    assert {"DetectionBoxes_Precision/mAP", "DetectionBoxes_Precision/mAP@.50IOU", "DetectionBoxes_Recall/AR@100",
            "Loss/total_loss"} <= set(evaluation), sorted(evaluation)
    assert evaluation["predictions"][0][1] == "images"  # validation images with the predicted boxes drawn
    assert not any(tag.startswith(("loss/", "mAP")) for tag in {*train, *evaluation})


def test_report_round_trips_and_renders_with_ckpt_report(detection_run, capsys):
    from reports import load_report, render, to_data
    from reports.cli import main as report_main

    _, model_dir, _ = detection_run
    path = model_dir / "finetune-report.json"
    report = load_report(path)
    assert to_data(report) == json.loads(path.read_text())
    assert render(report, "html").startswith("<!DOCTYPE html>")
    assert report_main(["render", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Starting weights" in out and "Test metrics (test.record)" in out


def test_eval_reads_the_trained_checkpoint(detection_run, data, capsys, monkeypatch):
    from finetune.engine import _batches

    _, model_dir, _ = detection_run
    shapes = data["detection_shapes"]
    batches, real = {}, _batches.progress

    def spy(total, desc, *args, iterable, **kwargs):
        for batch in real(total, desc, *args, iterable=iterable, **kwargs):
            batches[desc] = batches.get(desc, 0) + 1
            yield batch

    monkeypatch.setattr(_batches, "progress", spy)
    code, out, err = _run(capsys, "eval", "--pipeline-config", shapes / "pipeline.config", "--out", model_dir,
                          "--num-examples", 4, "--test-input-path", model_dir.parent / "test.record", *SMALL_EVAL)
    assert code == 0, err
    assert set(batches) == {"evaluate", "test (test.record)"} and all(batches.values()), batches  # one bar a split
    report = json.loads(out)
    assert report["mode"] == "eval" and report["steps"] == 2
    from test_engine_loop import _events

    assert "DetectionBoxes_Precision/mAP@.50IOU" in _events(model_dir / "tensorboard" / "test")
    assert "mAP@0.5" in report["metrics_history"][0]["metrics"]
    assert (model_dir / "eval-report.json").is_file()


# ----------------------------------------------------------------- classification, flags only: skip, resume
@pytest.fixture(scope="module")
def classification_data(data, tmp_path_factory) -> dict[str, Path]:
    from finetune.data import classification_example
    from finetune.data._tfrecord import frame

    tmp = tmp_path_factory.mktemp("finetune-classification")
    shapes = data["classify_shapes"]
    unreadable = classification_example(b"\xff\xd8\xff\xe0 not a jpeg", height=64, width=64, label=1)
    damaged = bytearray(frame(b"any payload"))
    damaged[14] ^= 0xFF  # the data checksum no longer matches
    train = _head(shapes / "train.record", tmp / "train.record", 12, [unreadable])
    with open(train, "ab") as f:
        f.write(bytes(damaged))
    return {"train": train, "val": _head(shapes / "val.record", tmp / "val.record", 4),
            "label_map": shapes / "label_map.pbtxt", "tmp": tmp}


def _classification_argv(classification_data, data, model_dir: Path, steps: int) -> list:
    d = classification_data
    return ["train", "--out", model_dir, "--task", "classification", "--feature-extractor", "mobilenet_v1",
            "--train-input-path", d["train"], "--eval-input-path", d["val"], "--label-map-path", d["label_map"],
            "--fine-tune-checkpoint", data["mobilenet_v1_small"], "--learning-rate", 0.01, "--num-steps", steps,
            "--skip-bad-records", "--freeze", "^conv1/", *SMALL]


def test_classification_skips_bad_records_and_resumes(classification_data, data, capsys):
    model_dir = classification_data["tmp"] / "run"
    code, out, err = _run(capsys, *_classification_argv(classification_data, data, model_dir, 2))
    assert code == 0, err
    first = json.loads(out)
    train = next(s for s in first["records"] if s["split"] == "train")
    assert train["skipped"] == {"corrupt_record": 1, "unreadable_image": 1} and train["used"] == 12
    assert first["restore"]["restored"] > 50 and (first["start_step"], first["steps"]) == (0, 2)
    assert 0.0 <= first["test_metrics"]["accuracy"] <= 1.0
    assert not any("matches no trainable variable" in w for w in first["warnings"])  # --freeze found conv1/

    code, out, err = _run(capsys, *_classification_argv(classification_data, data, model_dir, 3))
    assert code == 0, err
    second = json.loads(out)
    assert (second["start_step"], second["steps"]) == (2, 3)
    assert second["resumed_from"].endswith("ckpt-2")
    assert second["restore"] == first["restore"]  # where the weights came from, carried over
    assert [m["step"] for m in second["metrics_history"]] == [2, 3]


# ----------------------------------------------------------------- bad input: one line, exit 2
def _detection_records(path: Path, *, boxes=((0.1, 0.1, 0.5, 0.5),), classes=(1,), image=None, n=4) -> Path:
    from finetune.data import detection_example, encode_image, write_examples

    pixels = np.full((32, 32, 3), 120, np.uint8)
    encoded = image if image is not None else encode_image(pixels)
    write_examples(path, [detection_example(encoded, height=32, width=32, boxes=boxes, classes=classes)] * n)
    return path


def _bad_config(tmp: Path, shapes: Path) -> list:
    text = (shapes / "pipeline.config").read_text().replace("num_classes: 3", "num_classes: = 3", 1)
    (tmp / "pipeline.config").write_text(text)
    return ["--pipeline-config", tmp / "pipeline.config"]


def _placeholder(tmp: Path, shapes: Path) -> list:
    text = (shapes / "pipeline.config").read_text().replace('"label_map.pbtxt"', '"PATH_TO_BE_CONFIGURED/lm.pbtxt"')
    (tmp / "pipeline.config").write_text(text)
    for name in ("train.record", "val.record"):
        os.symlink(shapes / name, tmp / name)
    return ["--pipeline-config", tmp / "pipeline.config"]


def _with_train(records):
    def case(tmp: Path, shapes: Path) -> list:
        return ["--pipeline-config", shapes / "pipeline.config", "--train-input-path", records(tmp / "train.record")]
    return case


def _label_map_mismatch(tmp: Path, shapes: Path) -> list:
    (tmp / "lm.pbtxt").write_text('item { id: 1 name: "circle" }\nitem { id: 2 name: "square" }\n')
    return ["--pipeline-config", shapes / "pipeline.config", "--label-map-path", tmp / "lm.pbtxt",
            "--train-input-path", _detection_records(tmp / "train.record", classes=(3,))]


BAD_INPUTS = {
    "config_syntax": (_bad_config, r"pipeline\.config:\d+:\d+"),
    "placeholder_path": (_placeholder, "PATH_TO_BE_CONFIGURED"),
    "num_classes": (lambda tmp, s: ["--pipeline-config", s / "pipeline.config", "--num-classes", 2],
                    "num_classes 2"),
    "label_map_mismatch": (_label_map_mismatch, "does not match the records"),
    "box_outside": (_with_train(lambda p: _detection_records(p, boxes=((0.1, 0.1, 1.5, 0.5),))), r"outside \[0, 1\]"),
    "xmin_gt_xmax": (_with_train(lambda p: _detection_records(p, boxes=((0.1, 0.6, 0.5, 0.2),))), "xmin > xmax"),
    "unreadable_image": (_with_train(lambda p: _detection_records(p, image=b"\xff\xd8\xff\xe0 broken")),
                         "not a complete JPEG"),
    "empty_tfrecord": (_with_train(lambda p: _detection_records(p, n=0)), "no records|no usable records"),
    "checkpoint_architecture": (lambda tmp, s: ["--pipeline-config", s / "pipeline.config", "--fine-tune-checkpoint",
                                                s.parent / "resnet_v1_50_small"],
                                "holds slim/resnet_v1_50, but the model's backbone is mobilenet_v1"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case, data, tmp_path, capsys):
    make, pattern = BAD_INPUTS[case]
    flags = make(tmp_path, data["detection_shapes"])
    code, _, err = _run(capsys, "train", "--out", tmp_path / "run", "--num-steps", 1, *flags, *SMALL)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("ckpt-finetune: error: "), err
    listed = re.fullmatch(r"ckpt-finetune: error: (\d+) problem\(s\) to fix before training:", lines[0])
    assert len(lines) == (1 + int(listed[1]) if listed else 1), err  # one line, or one line per problem
    assert re.search(pattern, err), err


def test_bad_records_without_skip_fail(classification_data, data, tmp_path, capsys):
    argv = _classification_argv(classification_data, data, tmp_path / "run", 1)
    argv.remove("--skip-bad-records")
    code, _, err = _run(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "2 bad record(s)" in err and "--skip-bad-records" in err


def test_checkpoint_that_does_not_fit_shows_the_mapping_report(data, tmp_path, capsys):
    """mobilenet_v1_small has depth multiplier 0.25; the config asks for 0.5."""
    shapes = data["detection_shapes"]
    code, out, err = _run(capsys, "train", "--pipeline-config", shapes / "pipeline.config", "--out", tmp_path,
                          "--num-steps", 1, "--fine-tune-checkpoint", data["mobilenet_v1_small"], "--batch-size", 4,
                          "--quiet")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "does not fit the mobilenet_v1 (depth 0.5" in lines[0], err
    assert "--depth-multiplier" in lines[0] and "conversion-failed.md" in lines[0]
    assert "Shape mismatches" in out and "conv1/kernel" in out
    assert (tmp_path / "conversion-failed.md").is_file() and not (tmp_path / "converted").exists()


# ----------------------------------------------------------------- the other classification modes
@pytest.mark.parametrize("mode", ["features", "domain_adversarial"])
def test_classification_modes(mode, classification_data, data, tmp_path, capsys):
    argv = _classification_argv(classification_data, data, tmp_path / "run", 2) + ["--mode", mode]
    if mode == "domain_adversarial":
        argv += ["--target-input-path", _head(data["detection_shapes"] / "val.record", tmp_path / "t.record", 8)]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    report = json.loads(out)
    assert report["mode"] == mode and report["steps"] == 2
    if mode == "features":
        assert not any("get no gradient" in w for w in report["warnings"])
    else:
        assert "domain" in report["final_losses"]
    shutil.rmtree(tmp_path / "run")


@pytest.mark.parametrize(("text", "steps", "freeze", "multiplier"), [
    ("50", 50, (), 1.0), ("100:^conv_dw", 100, ("^conv_dw",), 1.0), ("100:^conv:0.1", 100, ("^conv",), 0.1)])
def test_stage_flag(text, steps, freeze, multiplier):
    from finetune.cli import _stage

    stage = _stage(text)
    assert (stage.steps, stage.freeze, stage.lr_multiplier) == (steps, freeze, multiplier)


def test_stage_flag_rejects_nonsense(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", "x", "--stage", "many:^conv"])
    assert exit_info.value.code == 2 and "STEPS[:REGEX[:LR_MULT]]" in capsys.readouterr().err


# ----------------------------------------------------------------- validate: the dry run
def _validate(capsys, config, *extra) -> tuple[int, dict, str]:
    code = main(["validate", "--pipeline-config", str(config), "--format", "json", *map(str, extra)])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def test_validate_passes_the_fixture_config(data, capsys):
    code, report, _ = _validate(capsys, data["detection_shapes"] / "pipeline.config")
    assert code == 0 and report["kind"] == "validate"
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    assert main(["validate", "--pipeline-config", str(data["detection_shapes"] / "pipeline.config")]) == 0
    assert "ready to train" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "tests" / "data" / "configs").glob("*.config")))
def test_validate_lists_every_placeholder_of_the_zoo_configs(name, capsys):
    code, report, _ = _validate(capsys, REPO / "tests" / "data" / "configs" / name)
    assert code == 1
    placeholders = [f for f in report["findings"] if f["code"] == "placeholder"]
    assert {f["path"].split("[")[0] for f in placeholders} >= {"train_config.fine_tune_checkpoint",
                                                              "train_input_reader.label_map_path"}
    assert len(placeholders) == 5 and all(f["severity"] == "error" and ":" in f["where"] for f in placeholders)
    first = report["findings"][0]
    if name.startswith("faster_rcnn_inception"):  # support first (the backbone, at its line), then the placeholders
        assert (first["code"], first["path"], first["where"]) == (
            "unsupported_model", "model.faster_rcnn.feature_extractor.type", "12:13")
    elif "faster_rcnn" in name:  # a ResNet Faster R-CNN: ckptkit builds it; only the placeholders block
        assert first["code"] == "placeholder"
        assert not [f for f in report["findings"] if f["code"] == "unsupported_model"]


def test_validate_flags_typos_paths_and_the_label_map(data, tmp_path, capsys):
    shapes = data["detection_shapes"]
    text = (shapes / "pipeline.config").read_text().replace("num_classes: 3", "num_classes: 2\n    num_clases: 3", 1)
    (tmp_path / "pipeline.config").write_text(text)
    (tmp_path / "label_map.pbtxt").write_text((shapes / "label_map.pbtxt").read_text())
    code, report, _ = _validate(capsys, tmp_path / "pipeline.config")
    by_code = {f["code"]: f for f in report["findings"]}
    missing = " ".join(f["message"] for f in report["findings"] if f["code"] == "missing_path")
    assert code == 1
    assert by_code["unknown_field"]["path"].endswith("num_clases") and by_code["unknown_field"]["where"]
    assert "num_classes 2" in by_code["label_map"]["message"]
    assert "train.record" in missing and "val.record" in missing  # the records stayed beside the fixture


def test_validate_syntax_error_exits_2_with_file_line_col(data, tmp_path, capsys):
    _bad_config(tmp_path, data["detection_shapes"])
    code, _, err = _validate(capsys, tmp_path / "pipeline.config")
    assert code == 2 and re.search(r"pipeline\.config:\d+:\d+", err) and len(err.strip().splitlines()) == 1


def test_train_refuses_every_blocking_problem_at_once(tmp_path, capsys):
    zoo = REPO / "tests" / "data" / "configs" / "faster_rcnn_inception_v2_coco_2018_01_28.pipeline.config"
    code = main(["train", "--pipeline-config", str(zoo), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "6 problem(s) to fix before training" in err
    assert err.index("model.faster_rcnn.feature_extractor.type") < err.index("PATH_TO_BE_CONFIGURED")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------- error findings refuse; --substitute names them
def _keep_aspect_ratio(tmp: Path, shapes: Path) -> Path:
    """The fixture's config with ssd_mobilenet_v2_fullyconv_coco's resizer, which ckptkit cannot build, and a
    misspelled field; its relative paths made absolute so it can live elsewhere."""
    text = (shapes / "pipeline.config").read_text()
    text = text.replace("fixed_shape_resizer {\n        height: 128\n        width: 128",
                        "keep_aspect_ratio_resizer {\n        min_dimension: 128\n        max_dimension: 128", 1)
    text = text.replace("num_classes: 3", "num_classes: 3\n    encode_background_as_zeroes: false", 1)
    text = re.sub(r'(label_map_path|input_path): "([^"]+)"', lambda m: f'{m[1]}: "{shapes / m[2]}"', text)
    assert "keep_aspect_ratio_resizer" in text
    (tmp / "pipeline.config").write_text(text)
    return tmp / "pipeline.config"


def test_error_findings_refuse_to_start_one_line_each(data, tmp_path, capsys):
    config = _keep_aspect_ratio(tmp_path, data["detection_shapes"])
    code, _, err = _run(capsys, "train", "--pipeline-config", config, "--out", tmp_path / "run", *SMALL)
    lines = err.strip().splitlines()
    assert code == 2 and lines[0] == "ckpt-finetune: error: 2 problem(s) to fix before training:", err
    resizer = next(line for line in lines if "keep_aspect_ratio_resizer" in line)
    assert re.match(rf"{re.escape(str(config))}:8:7: model\.ssd\.image_resizer\.keep_aspect_ratio_resizer: ", resizer)
    assert "--substitute model.ssd.image_resizer.keep_aspect_ratio_resizer" in resizer
    assert any("encode_background_as_zeroes" in line and "did you mean" in line for line in lines)
    assert not (tmp_path / "run").exists()
    code, report, _ = _validate(capsys, config)
    assert code == 1 and {"unknown_field", "unsupported"} <= {f["code"] for f in report["findings"]
                                                              if f["severity"] == "error"}


def test_a_substitution_named_with_a_flag_trains_and_is_recorded(data, tmp_path, capsys):
    config = _keep_aspect_ratio(tmp_path, data["detection_shapes"])
    named = ["--substitute", "model.ssd.image_resizer", "--substitute", "model.ssd.encode_background_as_zeroes"]
    code, out, err = _run(capsys, "train", "--pipeline-config", config, "--out", tmp_path / "run", "--num-steps", 1,
                          "--num-examples", 4, "--from-scratch", *named, *SMALL)
    assert code == 0, err
    report = json.loads(out)
    assert report["substitutions"] == ["model.ssd.encode_background_as_zeroes",
                                       "model.ssd.image_resizer.keep_aspect_ratio_resizer"]
    substituted = [f for f in report["findings"] if f["code"] == "substituted"]
    assert len(substituted) == 2 and all(f["severity"] == "warning" and f["where"] for f in substituted)
    assert "substituted on request" in (tmp_path / "run" / "finetune-report.md").read_text()
    from test_engine_loop import _events

    assert ("config/substitutions" in _events(tmp_path / "run" / "tensorboard" / "train"))
    # eval rebuilds the model the run trained: the run's substitutions apply without naming them again
    code, out, err = _run(capsys, "eval", "--pipeline-config", config, "--out", tmp_path / "run", "--num-examples", 4,
                          *SMALL_EVAL)
    assert code == 0, err
    assert json.loads(out)["substitutions"] == report["substitutions"]


def test_a_substitution_that_names_nothing_is_refused(data, tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--pipeline-config", data["detection_shapes"] / "pipeline.config", "--out",
                        tmp_path / "run", "--substitute", "model.ssd.image_resizr", *SMALL)
    assert code == 2 and "--substitute model.ssd.image_resizr names no setting" in err
