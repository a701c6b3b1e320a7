"""Generic conversion of a ~1 GB checkpoint: ckptkit against the migration guide's recipe.

The guide's converter (TF "Migrate checkpoints" page) loads every tensor with
tf.train.load_checkpoint into a tf.Variable in a dict and saves
tf.train.Checkpoint(**vars).  Both run as fresh processes on the same source,
alternately; we report median wall time and peak RSS (ru_maxrss of the child)
and the ratios.  Targets: ckptkit under 1 s and 200 MB, both >= 10x better.

Model-target conversion (full-size resnet_v1_50, and with --models any other
full-size fixture, into its default Keras target): peak RSS against a process
that imports TensorFlow and builds the same model, and inside the converting
process from the moment its model is built (Linux: VmHWM reset through
/proc/self/clear_refs); the target is at most one tensor (the largest) more.
--layout measures the weights and h5 layouts too;
--v2 also measures each source rewritten as a V2 bundle (the full-size
fixtures are 2016-style V1 files, whose reader hands over a whole tensor; a V2
bundle streams in 1 MiB chunks).

Usage: python bench/convert.py [--only generic|model] [--mb 1000] [--repeat 3]
                               [--models resnet_v1_50,vgg_16] [--layout object] [--v2]
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
from migrate.tf import tensorflow
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
            t, m = run([sys.executable, "-m", "migrate.cli", "convert", str(source), "--out", f"{tmp}/out", "--format", "json"])
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


LAYOUT_FLAGS = {"object": [], "weights": ["--layout", "weights"], "h5": ["--layout", "h5"]}
BUILD_ONLY = """
import sys
import migrate, migrate.cli, reports
migrate.convert  # loads the code the converting process loads
migrate.map_checkpoint(sys.argv[1], migrate.TargetSpec("auto"))   # TF + the model, no conversion
"""


# Instrumentation, not use: it wraps the private step convert() calls after building the model (no public
# hook marks that point), so the peak it reports leaves out TensorFlow's import and the model build.
IN_PROCESS = """
import sys
import time
import migrate._convert as convert
from migrate.cli import main


def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key)) / 1024


built = {}
plan_model = convert.plan_model


def plan_then_reset_peak(*args, **kwargs):
    plan = plan_model(*args, **kwargs)
    with open("/proc/self/clear_refs", "w") as f:  # Linux: VmHWM restarts from the current RSS
        f.write("5")
    built["rss"], built["at"] = status("VmRSS:"), time.perf_counter()
    return plan


convert.plan_model = plan_then_reset_peak
code = main(sys.argv[1:])
print(f"{status('VmHWM:') - built['rss']:.3f} {time.perf_counter() - built['at']:.3f}", file=sys.stderr)
sys.exit(code)
"""


def run_in_process(cmd: list[str]) -> tuple[float, float]:
    """Peak RSS (MB) a conversion adds to its own process after the model is built (VmHWM reset there), and
    the seconds from then to the end (writing, verifying, the report): the conversion without imports and build."""
    result = subprocess.run([sys.executable, "-c", IN_PROCESS, *cmd], cwd=REPO, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"in-process measurement failed: {result.stderr.strip().splitlines()[-1:]}")
    extra, seconds = result.stderr.strip().splitlines()[-1].split()
    return float(extra), float(seconds)


def v2_copy(source: Path, directory: Path) -> Path:
    """``source`` rewritten as a TF1 V2 bundle (same tensor names), once."""
    out = directory / f"{source.name}_v2"
    if not (out / "model.ckpt.index").exists():
        sys.path.insert(0, str(REPO))
        from migrate import open_checkpoint  # noqa: PLC0415
        from migrate.formats import BundleWriter  # noqa: PLC0415

        out.mkdir(parents=True, exist_ok=True)
        with open_checkpoint(source) as reader:
            writer = BundleWriter(out / "model.ckpt")
            for name in reader.keys():
                writer.add_array(name, reader.read(name))
            writer.close()
    return out


def measure_model(source: Path, repeat: int, layout: str = "object") -> dict:
    """Model-target conversion against the same process stopping after building the model."""
    sys.path.insert(0, str(REPO))
    from migrate import open_checkpoint  # noqa: PLC0415

    with open_checkpoint(source) as reader:
        specs = reader.specs()
    largest = max(s.nbytes for s in specs.values()) / 2**20
    convert_runs, build_runs, in_process = [], [], []
    for _ in range(repeat):
        args = ["convert", str(source), "--out", "OUT", "--target", "auto", *LAYOUT_FLAGS[layout], "--format", "json"]
        with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
            convert_runs.append(run([sys.executable, "-m", "migrate.cli", *[a.replace("OUT", f"{tmp}/out") for a in args]]))
        build_runs.append(run([sys.executable, "-c", BUILD_ONLY, str(source)]))
        with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
            in_process.append(run_in_process([a.replace("OUT", f"{tmp}/out") for a in args]))
    convert_rss = statistics.median(r[1] for r in convert_runs)
    build_rss = statistics.median(r[1] for r in build_runs)
    return {
        "source": source.name, "layout": layout, "source_mb": round(sum(s.nbytes for s in specs.values()) / 2**20, 1),
        "convert_s": round(statistics.median(r[0] for r in convert_runs), 2),
        "convert_peak_rss_mb": round(convert_rss, 1),
        "tf_plus_model_rss_mb": round(build_rss, 1), "largest_tensor_mb": round(largest, 1),
        "extra_over_tf_plus_model_mb": round(convert_rss - build_rss, 1),
        "extra_in_largest_tensors": round((convert_rss - build_rss) / largest, 2),
        # the same quantity measured inside the converting process (peak reset once the model is built):
        # free of the run-to-run spread of two processes' baselines (several MB)
        "extra_after_build_in_process_mb": round(statistics.median(r[0] for r in in_process), 1),
        "extra_after_build_in_largest_tensors": round(statistics.median(r[0] for r in in_process) / largest, 2),
        "after_build_s": round(statistics.median(r[1] for r in in_process), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("generic", "model"), help="run one of the two benchmarks")
    parser.add_argument("--mb", type=int, default=1000, help="size of the generic source")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; medians are reported")
    parser.add_argument("--models", default="resnet_v1_50", help="comma-separated full-size fixtures for the model target")
    parser.add_argument("--layout", default="object", help="comma-separated: object, weights, h5")
    parser.add_argument("--v2", action="store_true", help="also measure each model source rewritten as a V2 bundle")
    args = parser.parse_args()
    fixtures = Path(os.environ.get("CKPTKIT_FIXTURES", REPO / ".cache" / "fixtures"))
    directory = fixtures / "bench"
    result = {}
    if args.only != "model":
        source = directory / f"big_{args.mb}mb"
        if not (source / "model.ckpt.index").exists():
            subprocess.run([sys.executable, "-m", "fixtures", "big", "--out", str(source), "--mb", str(args.mb)], check=True, cwd=REPO)
        result["generic"] = measure(source, args.repeat)
    if args.only != "generic":
        runs = []
        for name in args.models.split(","):
            model_source = fixtures / name
            if not model_source.exists():
                subprocess.run([sys.executable, "-m", "fixtures", "build", "--full", "--only", name], check=True, cwd=REPO)
            sources = [model_source] + ([v2_copy(model_source, directory)] if args.v2 else [])
            runs += [measure_model(s, args.repeat, layout) for s in sources for layout in args.layout.split(",")]
        result["model_target"] = runs[0] if len(runs) == 1 else runs
    result["targets"] = {"generic_s_max": 1.0, "generic_peak_rss_mb_max": 200, "generic_ratios_min": 10,
                         "model_target_extra_in_largest_tensors_max": 1.0}
    print(json.dumps(result, indent=2))
    shutil.rmtree(directory / ".tmp", ignore_errors=True)


if __name__ == "__main__":
    main()
