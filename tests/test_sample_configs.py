"""The OD API's own sample configs (test copies in tests/data/configs) through ``validate`` and ``train``.

Every field in them is a real proto field, so none may be an ``unknown_field``;
the ones ckptkit cannot build as written are refused in one pass, one line per
problem at its ``file:line:col``, before anything is written and before
TensorFlow is imported; the SSDLite sample is supported and only waits for
its ``PATH_TO_BE_CONFIGURED`` paths.
"""
from __future__ import annotations

import json
import re

import pytest

from finetune.cli import main

from conftest import CONFIGS

SAMPLES = {
    "fullyconv": CONFIGS / "ssd_mobilenet_v2_fullyconv_coco.config",
    "ssdlite": CONFIGS / "ssdlite_mobilenet_v2_coco.config",
    "oid_v4": CONFIGS / "ssd_mobilenet_v2_oid_v4.config",
    "tf1_fpn_shared": CONFIGS / "ssd_mobilenet_v1_fpn_shared_box_predictor_640x640_coco14_sync.config",
    "tf2_mobilenet_fpn": CONFIGS / "tf2_ssd_mobilenet_v1_fpn_640x640_coco17_tpu-8.config",
    "tf2_resnet50_fpn": CONFIGS / "tf2_ssd_resnet50_v1_fpn_640x640_coco17_tpu-8.config",
    "tf2_efficientdet_d0": CONFIGS / "tf2_ssd_efficientdet_d0_512x512_coco17_tpu-8.config",
}
_TYPE = "model.ssd.feature_extractor.type"
_ANCHORS = "model.ssd.anchor_generator.multiscale_anchor_generator"
_SHARED = "model.ssd.box_predictor.weight_shared_convolutional_box_predictor"
_KEEP_ASPECT = "model.ssd.image_resizer.keep_aspect_ratio_resizer"
# What ckptkit cannot build in each sample as written (the feature extractor type: FPN, ResNet, EfficientNet)
UNBUILDABLE = {
    "fullyconv": {_KEEP_ASPECT},
    "tf1_fpn_shared": {_TYPE, _ANCHORS, _SHARED},
    "tf2_mobilenet_fpn": {_TYPE, _ANCHORS, _SHARED, "model.ssd.feature_extractor.fpn"},
    "tf2_resnet50_fpn": {_TYPE, _ANCHORS, _SHARED, "model.ssd.feature_extractor.fpn"},
    "tf2_efficientdet_d0": {_TYPE, _ANCHORS, _SHARED, _KEEP_ASPECT, "model.ssd.feature_extractor.bifpn"},
}
SUPPORTED = ["ssdlite", "oid_v4"]
FEATURE_EXTRACTOR = ["--feature-extractor", "ssd_mobilenet_v1"]
PROBLEM = re.compile(r"(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<path>[\w.\[\]]+): (?P<message>.+)")


def _placeholders(path) -> int:
    return sum("PATH_TO_BE_CONFIGURED" in line and not line.lstrip().startswith("#")
               for line in path.read_text().splitlines())


def _validate(capsys, path, *extra) -> tuple[int, list[dict]]:
    code = main(["validate", "--pipeline-config", str(path), "--format", "json", "-q", *extra])
    return code, json.loads(capsys.readouterr().out)["findings"]


def _blocking(findings: list[dict]) -> list[dict]:
    return [f for f in findings if f["severity"] == "error"]


def _refusal(capsys, tmp_path, path, *extra) -> list[re.Match]:
    """``train``'s refusal as matched problem lines; checks the exit code, the count and that nothing was written."""
    out = tmp_path / "run"
    code = main(["train", "--pipeline-config", str(path), "--out", str(out), "--quiet", *extra])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2, lines
    head = re.fullmatch(r"ckpt-finetune: error: (\d+) problem\(s\) to fix before training:", lines[0])
    assert head and int(head.group(1)) == len(lines) - 1, lines
    problems = [PROBLEM.fullmatch(line) for line in lines[1:]]
    assert all(problems), lines
    assert not out.exists()
    return problems


def _is_support(path: str) -> bool:
    return path.startswith("model.")


def _points_at_its_setting(source, problem: re.Match) -> bool:
    """The ``line:col`` is the setting's own line, at its field name or at its value."""
    line = source.read_text().splitlines()[int(problem["line"]) - 1]
    name = problem["path"].rsplit(".", 1)[-1].split("[")[0]
    before, at = line[:int(problem["col"]) - 1], line[int(problem["col"]) - 1:]
    return line.lstrip().startswith(name) and (at.startswith(name) or before.rstrip().endswith(":"))


# ----------------------------------------------------------------- every field is a real proto field
@pytest.mark.parametrize("name", list(SAMPLES))
def test_no_sample_field_is_unknown(name, capsys):
    code, findings = _validate(capsys, SAMPLES[name])
    assert code == 1  # the placeholders, at least
    assert not [f for f in findings if f["code"] == "unknown_field"], findings


# ----------------------------------------------------------------- samples ckptkit cannot build
@pytest.mark.parametrize("name", list(UNBUILDABLE))
def test_train_refuses_every_problem_in_one_pass(name, capsys, tmp_path):
    source = SAMPLES[name]
    problems = _refusal(capsys, tmp_path, source)
    assert {p["file"] for p in problems} == {str(source)}
    assert all(_points_at_its_setting(source, p) for p in problems), [p.group(0) for p in problems]
    support = {p["path"] for p in problems if _is_support(p["path"])}
    assert support == UNBUILDABLE[name]
    placeholders = [p for p in problems if "PATH_TO_BE_CONFIGURED" in p["message"]]
    assert len(placeholders) == _placeholders(source) == len(problems) - len(support)
    if _TYPE in support:  # the support finding ckptkit itself makes comes first
        assert problems[0]["path"] == _TYPE


@pytest.mark.parametrize("name", list(UNBUILDABLE))
def test_a_feature_extractor_flag_replaces_nothing_else(name, capsys, tmp_path):
    """--feature-extractor answers the type only: FPN, BiFPN, anchors, predictor and resizer still refuse."""
    problems = _refusal(capsys, tmp_path, SAMPLES[name], *FEATURE_EXTRACTOR)
    assert {p["path"] for p in problems if _is_support(p["path"])} == UNBUILDABLE[name] - {_TYPE}
    assert sum("PATH_TO_BE_CONFIGURED" in p["message"] for p in problems) == _placeholders(SAMPLES[name])


@pytest.mark.parametrize("name", list(UNBUILDABLE))
def test_validate_reports_every_problem_in_one_pass(name, capsys):
    code, findings = _validate(capsys, SAMPLES[name])
    blocking = _blocking(findings)
    assert code == 1
    assert {f["path"] for f in blocking if _is_support(f["path"])} == UNBUILDABLE[name]
    assert sum(f["code"] == "placeholder" for f in blocking) == _placeholders(SAMPLES[name])
    assert all(re.fullmatch(r"\d+:\d+", f["where"]) for f in blocking)
    assert [f["severity"] for f in findings[:len(blocking)]] == ["error"] * len(blocking)  # blocking ones first


@pytest.mark.parametrize("extra", [(), tuple(FEATURE_EXTRACTOR)], ids=["as-written", "feature-extractor-flag"])
@pytest.mark.parametrize("name", list(UNBUILDABLE))
def test_support_problems_come_before_placeholders(name, extra, capsys, tmp_path):
    paths = [p["path"] for p in _refusal(capsys, tmp_path, SAMPLES[name], *extra)]
    assert paths == sorted(paths, key=lambda path: not _is_support(path))
    _, findings = _validate(capsys, SAMPLES[name], *extra)
    paths = [f["path"] for f in _blocking(findings)]
    assert paths == sorted(paths, key=lambda path: not _is_support(path))


# ----------------------------------------------------------------- samples ckptkit builds
@pytest.mark.parametrize("name", SUPPORTED)
def test_supported_samples_only_wait_for_their_placeholders(name, capsys, tmp_path):
    """SSDLite (depthwise extra layers and heads) and the Open Images SSD pass the support checks."""
    code, findings = _validate(capsys, SAMPLES[name])
    blocking = _blocking(findings)
    assert code == 1 and blocking
    assert {f["code"] for f in blocking} == {"placeholder"}
    assert len(blocking) == _placeholders(SAMPLES[name])
    problems = _refusal(capsys, tmp_path, SAMPLES[name])
    assert all("PATH_TO_BE_CONFIGURED" in p["message"] for p in problems)
    assert len(problems) == _placeholders(SAMPLES[name])
