"""The realistic flow, slow: the TF1 MobileNet fixture fine-tuned with ckpt-finetune, then ckpt-quantize run."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_finetuned_mobilenet_through_ckpt_quantize_run(tmp_path, capsys):
    import fixtures
    from finetune.cli import main as finetune_main
    from quantize.cli import main

    data = fixtures.build(Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures"),
                          names=["classify_shapes", "mobilenet_v1_shapes_legacy"])
    shapes = data["classify_shapes"]
    flags = ["--task", "classification", "--feature-extractor", "mobilenet_v1", "--depth-multiplier", "0.5",
             "--image-size", "128", "--label-map-path", shapes / "label_map.pbtxt", "--train-input-path",
             shapes / "train.record", "--test-input-path", shapes / "test.record", "--batch-size", "16"]
    run = tmp_path / "ft"
    assert finetune_main([str(a) for a in ["train", "--out", run, *flags, "--fine-tune-checkpoint",
                                           data["mobilenet_v1_shapes_legacy"], "--num-steps", "40",
                                           "--learning-rate", "0.001", "--quiet"]]) == 0
    capsys.readouterr()
    code = main([str(a) for a in ["run", "--trained", run, *flags, "--prune-steps", "20", "--qat-steps", "10",
                                  "--int8-io", "--out", tmp_path / "q", "--format", "json"]])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)
    by_name = {v["name"]: v for v in report["variants"]}
    assert set(by_name) == {"float32", "dynamic", "int8", "float16", "pruned", "pruned_int8", "qat_int8",
                            "prune_qat_int8"}
    assert by_name["float32"]["metrics"]["accuracy"] >= 0.9
    assert by_name["int8"]["size_ratio"] < 0.35 and by_name["int8"]["drop_points"] <= 5
    assert by_name["pruned"]["sparsity"] > 0.3
