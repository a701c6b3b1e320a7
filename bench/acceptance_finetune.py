"""Acceptance of issue 5: SSD fine-tuned from the converted legacy checkpoint against the same SSD from random
initialisation, at the same step budget, and the test mAP@.5 the fine-tuned one reaches within 10 minutes.

One ``ckpt-finetune transfer`` over ``detection_shapes``' own pipeline.config
(SSD MobileNet v1, depth 0.5, 128x128, 3 classes, 1000 steps, batch 16;
fine_tune_checkpoint ``mobilenet_v1_shapes_legacy``: a slim MobileNet v1
trained in TF1 on ``classify_shapes``, RMSProp slots and EMA shadows,
converted on the way), validation every 250 steps, test on ``test.record``.
Prints the comparison as JSON (``finetune.TransferReport``) with the load
average before and after (whether the machine was shared) and writes it to
``OUT/acceptance_finetune.json``; the runs are in ``OUT/acceptance_finetune``,
replaced on every call.

Usage: python bench/acceptance_finetune.py [--steps N] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

BUDGET_SECONDS = 600


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="step budget of both runs (default: the config's)")
    parser.add_argument("--target", type=float, help="the test mAP@.5 the fine-tuned run must reach")
    parser.add_argument("--out", type=Path, default=REPO / "out", help="where the JSON and the runs go")
    args = parser.parse_args(argv)
    import fixtures  # noqa: PLC0415

    shapes = fixtures.build(names=["detection_shapes", "mobilenet_v1_shapes_legacy"])["detection_shapes"]
    load_before = os.getloadavg()
    command = [sys.executable, "-m", "finetune.cli", "transfer", "--pipeline-config", str(shapes / "pipeline.config"),
               "--out", str(args.out / "acceptance_finetune"), "--overwrite",
               "--test-input-path", str(shapes / "test.record"), "--eval-every", "250", "--log-every", "250",
               "--budget-seconds", str(BUDGET_SECONDS), "--format", "json"]
    command += ["--num-steps", str(args.steps)] if args.steps else []
    command += ["--target", str(args.target)] if args.target is not None else []
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"ckpt-finetune transfer exited {done.returncode}")
    result = json.loads(done.stdout)
    result |= {"cpu_count": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
               "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    text = json.dumps(result, indent=2)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "acceptance_finetune.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
