"""``ckpt-finetune transfer``: the same run from the converted legacy checkpoint and from scratch, compared.

Classification in feature-extraction mode on ``classify_shapes`` (a frozen
backbone and a small classifier, 30 steps on 150 images): the trained legacy MobileNet's
features separate the three shapes, random ones do not, so the comparison has
a real gap to find.  The SSD comparison of the acceptance runs in
``bench/acceptance_finetune.py`` and ``make demo``.
"""
from __future__ import annotations

import json
import os
from itertools import islice
from pathlib import Path

import pytest

from finetune.cli import main
from reports import load_report

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data() -> dict[str, Path]:
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    return fixtures.build(out, names=["classify_shapes", "mobilenet_v1_shapes_legacy"])


@pytest.fixture(scope="module")
def splits(data, tmp_path_factory) -> dict[str, Path]:
    """The first 150 train and 50 val/test records: enough for a clear gap, quick to embed."""
    from finetune.data import iter_records, write_records

    tmp = tmp_path_factory.mktemp("transfer-data")
    sizes = {"train": 150, "val": 50, "test": 50}
    for split, n in sizes.items():
        write_records(tmp / f"{split}.record",
                      [r.data for r in islice(iter_records(data["classify_shapes"] / f"{split}.record"), n)])
    return {split: tmp / f"{split}.record" for split in sizes}


def _argv(data, splits, model_dir: Path, *extra) -> list[str]:
    shapes = data["classify_shapes"]
    argv = ["transfer", "--out", model_dir, "--task", "classification", "--mode", "features",
            "--feature-extractor", "mobilenet_v1", "--depth-multiplier", "0.5", "--image-size", "128",
            "--train-input-path", splits["train"], "--eval-input-path", splits["val"],
            "--test-input-path", splits["test"], "--label-map-path", shapes / "label_map.pbtxt",
            "--fine-tune-checkpoint", data["mobilenet_v1_shapes_legacy"] / "model.ckpt", "--num-steps", 30,
            "--batch-size", 32, "--learning-rate", 0.01, "--format", "json", "--quiet", *extra]
    return [str(a) for a in argv]


@pytest.fixture(scope="module")
def transfer(data, splits, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("transfer") / "cmp"
    code = main(_argv(data, splits, model_dir, "--target", "0.9", "--budget-seconds", "600"))
    return code, model_dir


def test_finetuned_beats_random_and_both_runs_keep_their_reports(transfer, capsys):
    code, model_dir = transfer
    assert code == 0
    report = load_report(model_dir / "transfer-report.json")
    assert report.kind == "transfer" and report.metric == "accuracy"
    assert report.finetuned.restored > 0 and report.random.restored == 0
    assert report.finetuned.test_metric >= 0.9, report.finetuned
    assert report.beats_random and report.gain >= 0.2, (report.finetuned.test_metric, report.random.test_metric)
    assert report.reaches_target and report.within_budget and report.passed
    for name in ("finetuned", "random"):
        run = json.loads((model_dir / name / "finetune-report.json").read_text())
        assert run["steps"] == 30
    markdown = (model_dir / "transfer-report.md").read_text()
    assert "fine-tuned beats random" in markdown and "| yes" in markdown


def test_a_second_comparison_refuses_to_resume_without_overwrite(transfer, data, splits, capsys):
    _, model_dir = transfer
    code = main(_argv(data, splits, model_dir))
    err = capsys.readouterr().err
    assert code == 2 and "exists: a comparison needs two fresh runs" in err and "--overwrite" in err


def test_transfer_needs_a_checkpoint(data, splits, tmp_path, capsys):
    argv = _argv(data, splits, tmp_path / "cmp")
    at = argv.index("--fine-tune-checkpoint")
    del argv[at:at + 2]
    assert main(argv) == 2
    assert "set train_config.fine_tune_checkpoint" in capsys.readouterr().err


def test_json_carries_the_checks_and_round_trips(transfer):
    _, model_dir = transfer
    data = json.loads((model_dir / "transfer-report.json").read_text())
    assert data["kind"] == "transfer" and data["passed"] is True and data["beats_random"] is True
    assert data["gain"] == data["finetuned"]["test_metric"] - data["random"]["test_metric"]
    report = load_report(model_dir / "transfer-report.json")
    assert report.gain == data["gain"] and report.passed


def test_a_missed_time_budget_is_reported_but_does_not_fail_the_comparison():
    from reports import TransferReport, TransferRun, render

    def run(name, metric, seconds):
        return TransferRun(name, f"/runs/{name}", metric, metric, 600, seconds, 1.0)

    report = TransferReport("p.config", "legacy", "detection", "mAP@0.5", "test", 600, 16,
                            run("finetuned", 0.16, 641.0), run("random", 0.11, 500.0), budget_seconds=600)
    assert report.within_budget is False and report.passed
    assert "reported, not a check" in render(report, "markdown")
    worse = TransferReport("p.config", "legacy", "detection", "mAP@0.5", "test", 600, 16,
                           run("finetuned", 0.10, 100.0), run("random", 0.11, 100.0), budget_seconds=600)
    assert worse.within_budget and not worse.passed  # what does fail it: no gain over random
