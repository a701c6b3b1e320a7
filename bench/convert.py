"""Generic conversion of a ~1 GB checkpoint: ckptkit against the migration guide's recipe.

The guide's converter (TF "Migrate checkpoints" page) loads every tensor with
tf.train.load_checkpoint into a tf.Variable in a dict and saves
tf.train.Checkpoint(**vars).  Both run as fresh processes on the same source,
alternately; we report median wall time and peak RSS (ru_maxrss of the child)
and the ratios.  Targets: ckptkit under 1 s and 200 MB, both >= 10x better.

Usage: python bench/convert.py [--mb 1000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

GUIDE = """
import sys
from migrate._tf import tensorflow
tf = tensorflow()
reader = tf.train.load_checkpoint(sys.argv[1])
variables = {name.replace("/", "."): tf.Variable(reader.get_tensor(name))
             for name in reader.get_variable_to_shape_map()}
tf.train.Checkpoint(**variables).save(sys.argv[2] + "/ckpt")
"""


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process (its own rusage, via wait4)."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed with exit code {child.returncode}")
    return wall, usage.ru_maxrss / 1024


def measure(source: Path, repeat: int) -> dict:
    ours_t, ours_m, guide_t, guide_m = [], [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
            t, m = run([sys.executable, "-m", "migrate.cli", "convert", str(source), f"{tmp}/out", "--format", "json"])
            ours_t.append(t)
            ours_m.append(m)
        with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
            t, m = run([sys.executable, "-c", GUIDE, str(source / "model.ckpt"), tmp])
            guide_t.append(t)
            guide_m.append(m)
    ours = (statistics.median(ours_t), statistics.median(ours_m))
    guide = (statistics.median(guide_t), statistics.median(guide_m))
    return {
        "source_mb": round(sum(p.stat().st_size for p in source.glob("*.data-*")) / 2**20, 1),
        "ckptkit_s": round(ours[0], 3), "ckptkit_peak_rss_mb": round(ours[1], 1),
        "guide_s": round(guide[0], 3), "guide_peak_rss_mb": round(guide[1], 1),
        "time_ratio_guide_over_ckptkit": round(guide[0] / ours[0], 2),
        "rss_ratio_guide_over_ckptkit": round(guide[1] / ours[1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    directory = Path(os.environ.get("CKPTKIT_FIXTURES", REPO / ".cache" / "fixtures")) / "bench"
    source = directory / f"big_{args.mb}mb"
    if not (source / "model.ckpt.index").exists():
        subprocess.run([sys.executable, "-m", "fixtures", "big", "--out", str(source), "--mb", str(args.mb)], check=True, cwd=REPO)
    result = measure(source, args.repeat)
    result["targets"] = {"ckptkit_s_max": 1.0, "ckptkit_peak_rss_mb_max": 200, "ratios_min": 10}
    print(json.dumps(result, indent=2))
    shutil.rmtree(directory / ".tmp", ignore_errors=True)


if __name__ == "__main__":
    main()
