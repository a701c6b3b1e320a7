"""Generic conversion of a ~1 GB checkpoint: ckptkit against the migration guide's recipe.

The guide's converter (TF "Migrate checkpoints" page) loads every tensor with
tf.train.load_checkpoint into a tf.Variable in a dict and saves
tf.train.Checkpoint(**vars).  Both run as fresh processes on the same source,
alternately; we report median wall time and peak RSS (ru_maxrss of the child)
and the ratios.  Targets: ckptkit under 1 s and 200 MB, both >= 10x better.

Model-target conversion (full-size resnet_v1_50 into its slim-exact Keras
model): peak RSS against a process that imports TensorFlow and builds the same
model; the target is at most one tensor (the largest) more.

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
# bench/inspect.py would shadow the standard library's inspect for in-process imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

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
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            err.seek(0)
            last = err.read().decode(errors="replace").strip().splitlines()[-1:]
            raise SystemExit(f"{' '.join(cmd[:4])} failed with exit code {child.returncode}: {last}")
    return wall, usage.ru_maxrss / 1024


def measure(source: Path, repeat: int) -> dict:
    ours_t, ours_m, guide_t, guide_m = [], [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
            t, m = run([sys.executable, "-m", "migrate.cli", "convert", str(source), f"{tmp}/out", "--report", "json"])
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


BUILD_ONLY = """
import sys
import migrate.cli, migrate._convert, migrate._model_convert, reports  # the code the converting process loads
from migrate import open_checkpoint
from migrate._plan import plan_model
from migrate._select import SelectOptions
from migrate._targets import TargetSpec
with open_checkpoint(sys.argv[1]) as reader:
    plan_model(reader, TargetSpec("auto"), None, "full", SelectOptions())   # TF + the model, no conversion
"""


def measure_model(source: Path, repeat: int) -> dict:
    """Model-target conversion against the same process stopping after building the model."""
    sys.path.insert(0, str(REPO))
    from migrate import open_checkpoint  # noqa: PLC0415

    with open_checkpoint(source) as reader:
        specs = reader.specs()
    largest = max(s.nbytes for s in specs.values()) / 2**20
    convert_runs, build_runs = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
            convert_runs.append(run([sys.executable, "-m", "migrate.cli", "convert", str(source), f"{tmp}/out",
                                     "--target", "auto", "--report", "json"]))
        build_runs.append(run([sys.executable, "-c", BUILD_ONLY, str(source)]))
    convert_rss = statistics.median(r[1] for r in convert_runs)
    build_rss = statistics.median(r[1] for r in build_runs)
    return {
        "source": source.name, "source_mb": round(sum(s.nbytes for s in specs.values()) / 2**20, 1),
        "convert_s": round(statistics.median(r[0] for r in convert_runs), 2),
        "convert_peak_rss_mb": round(convert_rss, 1),
        "tf_plus_model_rss_mb": round(build_rss, 1), "largest_tensor_mb": round(largest, 1),
        "extra_over_tf_plus_model_mb": round(convert_rss - build_rss, 1),
        "extra_in_largest_tensors": round((convert_rss - build_rss) / largest, 2),
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
    result = {"generic": measure(source, args.repeat)}
    model_source = Path(os.environ.get("CKPTKIT_FIXTURES", REPO / ".cache" / "fixtures")) / "resnet_v1_50"
    if not model_source.exists():
        subprocess.run([sys.executable, "-m", "fixtures", "build", "--only", "resnet_v1_50"], check=True, cwd=REPO)
    result["model_target"] = measure_model(model_source, args.repeat)
    result["targets"] = {"generic_s_max": 1.0, "generic_peak_rss_mb_max": 200, "generic_ratios_min": 10,
                         "model_target_extra_in_largest_tensors_max": 1.0}
    print(json.dumps(result, indent=2))
    shutil.rmtree(directory / ".tmp", ignore_errors=True)


if __name__ == "__main__":
    main()
