"""Acceptance: SSD fine-tuned from the converted legacy checkpoint vs the same SSD from random initialisation.

On ``detection_shapes`` (its pipeline.config: SSD MobileNet v1, depth 0.5,
128x128, 3 classes), two ``ckpt-finetune train`` runs with the same step
budget, batch size, schedule (cosine, stretched to the budget), BatchNorm
decay and seed, one per process, one after the other:

* ``finetuned``: fine_tune_checkpoint ``mobilenet_v1_shapes_legacy`` (a slim
  MobileNet v1 trained in TF1 on ``classify_shapes``, with RMSProp slots and
  EMA shadows), converted with ``--target auto --use-ema`` on the way;
* ``random``: ``--from-scratch``.

Reported per run: mAP@.5 (and COCO mAP) on the test split, the best validation
mAP@.5, wall time of the whole command, time in the training loop and its
steps/s; then whether fine-tuned beats random and whether the fine-tuned run
stayed within the 10-minute CPU budget.  The load average before and after
says whether the machine was shared.  Prints JSON and writes it to
``out/acceptance_finetune.json`` (the runs themselves: ``out/acceptance_finetune/{finetuned,random}``,
replaced on every call).

Usage: python bench/acceptance_finetune.py [--steps 500] [--batch-size 16] [--eval-every 100] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

LEGACY = "mobilenet_v1_shapes_legacy"
BUDGET_SECONDS = 600
BN_DECAY = 0.99


def fixtures_dir() -> Path:
    import fixtures  # noqa: PLC0415
    from fixtures import _build, _registry  # noqa: PLC0415

    out = _build.default_dir()
    fixtures.build(out, names=["detection_shapes"])
    if LEGACY in _registry.ENTRIES:
        fixtures.build(out, names=[LEGACY])
    elif not (out / LEGACY).is_dir():  # not registered yet: build it the way the registry will
        from fixtures import _legacy_model  # noqa: PLC0415

        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{LEGACY}-", dir=out))
        _legacy_model.build_mobilenet_v1_shapes_legacy(tmp)
        tmp.chmod(0o755)
        tmp.rename(out / LEGACY)
    return out


def config_for(shapes: Path, steps: int, out: Path) -> Path:
    """detection_shapes' pipeline.config with absolute paths, the cosine schedule stretched to ``steps`` and
    BatchNorm decay :data:`BN_DECAY` (the zoo's 0.9997 averages over ~3300 steps: in a run of a few hundred, the
    new layers' moving statistics, which evaluation uses, would stay near their initial values)."""
    from finetune.config import format_text, parse_file, replace_field  # noqa: PLC0415

    tree = parse_file(shapes / "pipeline.config")
    rate = "train_config.optimizer.momentum_optimizer.learning_rate.cosine_decay_learning_rate"
    edits = {
        "model.ssd.feature_extractor.conv_hyperparams.batch_norm.decay": BN_DECAY,
        "model.ssd.box_predictor.convolutional_box_predictor.conv_hyperparams.batch_norm.decay": BN_DECAY,
        f"{rate}.total_steps": steps, f"{rate}.warmup_steps": max(1, steps // 10), "train_config.num_steps": steps,
        "train_config.fine_tune_checkpoint": str(shapes.parent / LEGACY / "model.ckpt"),
        "train_input_reader.label_map_path": str(shapes / "label_map.pbtxt"),
        "train_input_reader.tf_record_input_reader.input_path": str(shapes / "train.record"),
        "eval_input_reader.label_map_path": str(shapes / "label_map.pbtxt"),
        "eval_input_reader.tf_record_input_reader.input_path": str(shapes / "val.record"),
    }
    for path, value in edits.items():
        tree = replace_field(tree, path, value)
    out.mkdir(parents=True, exist_ok=True)
    config = out / "pipeline.config"
    config.write_text(format_text(tree))
    return config


def run(name: str, config: Path, shapes: Path, model_dir: Path, args, extra=()) -> dict:
    command = [sys.executable, "-m", "finetune.cli", "train", "--pipeline-config", str(config),
               "--model-dir", str(model_dir), "--test-input-path", str(shapes / "test.record"),
               "--batch-size", str(args.batch_size), "--eval-every", str(args.eval_every), "--eval-batch-size", "20",
               "--checkpoint-every", str(args.steps), "--log-every", "50", "--report", "json", *extra]
    print(f"{name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{name}: ckpt-finetune exited {done.returncode}")
    report = json.loads(done.stdout)
    best = report["best_metric"] or {}
    return {"test_mAP@0.5": report["test_metrics"].get("mAP@0.5"), "test_mAP": report["test_metrics"].get("mAP"),
            "best_val_mAP@0.5": best.get("value"), "best_val_step": best.get("step"),
            "validation": [(m["step"], m["metrics"].get("mAP@0.5")) for m in report["metrics_history"]],
            "final_losses": report["final_losses"], "wall_seconds": round(wall, 1),
            "train_seconds": report["train_seconds"], "steps_per_sec": report["steps_per_sec"],
            "restored": (report["restore"] or {}).get("restored", 0), "warnings": report["warnings"],
            "report": str(model_dir / "finetune-report.md")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="step budget of both runs (default 500)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-every", type=int, default=100, help="validation interval in steps")
    parser.add_argument("--out", type=Path, default=REPO / "out", help="where the JSON and the runs go")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    shapes = fixtures_dir() / "detection_shapes"
    work = args.out / "acceptance_finetune"
    config = config_for(shapes, args.steps, work)
    results = {}
    for name, extra in (("finetuned", ()), ("random", ("--from-scratch",))):
        model_dir = work / name
        if model_dir.exists():
            import shutil  # noqa: PLC0415

            shutil.rmtree(model_dir)  # a fresh run, not a resumed one
        results[name] = run(name, config, shapes, model_dir, args, extra)
    fine, rand = results["finetuned"], results["random"]
    summary = {
        "data": "detection_shapes (600 train / 100 val / 100 test, 128x128, 3 classes)",
        "model": "SSD MobileNet v1, depth 0.5", "steps": args.steps, "batch_size": args.batch_size,
        "batch_norm_decay": BN_DECAY,
        "finetuned": fine, "random": rand,
        "finetuned_beats_random": (fine["test_mAP@0.5"] or 0.0) > (rand["test_mAP@0.5"] or 0.0),
        "finetuned_within_10_minutes": fine["train_seconds"] <= BUDGET_SECONDS,
        "cpu_count": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    text = json.dumps(summary, indent=2)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "acceptance_finetune.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
