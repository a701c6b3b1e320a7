"""Zoo throughput: --jobs 1 against --jobs 2 on the same zoo, in one run.

The zoo is every small fixture (24 checkpoints: TF1 V2 and V1, TF2, SavedModel,
HDF5; model targets with parity and generic conversions).  Prints JSON:
checkpoints/s and MB/s per job count, the speed-up, and the overhead outside
conversion itself (process start, discovery, fingerprints, reports) as a share
of the wall time: wall - sum(per-checkpoint seconds) / jobs.

What the checkpoints cost is taken two ways: ``work_s``, the sum of their
wall seconds, and ``cpu_s``, the sum of their workers' CPU seconds (all
threads).  One job has all the cores' threads, so a checkpoint whose
operations run on several threads finishes sooner in wall time on the same
CPU; ``cpu_s`` is what shows whether two workers make the same checkpoints
cost more.  With one thread per worker (2 jobs here) the workers fork from a
server that imported TensorFlow once, before the first checkpoint; with more
(1 job here) each worker is spawned and imports it inside its first model
checkpoint.  ``import_cpu_s`` is that import measured alone in a fresh
process, and ``cpu_s_less_imports`` subtracts it once per spawned worker.

When Ray is installed (``pip install ckptkit[ray]``), ``ray_2cpu`` is the
same zoo as Ray tasks on a local Ray of 2 CPUs (``--engine ray --jobs 2``),
Ray's start included in its wall time; without Ray it holds a note instead.

Usage: python bench/zoo.py [--repeat 1] [--copies 1] [--no-ray]   (the README quotes --repeat 3, and
--copies 3: the same fixtures three times, 72 checkpoints)
"""
from __future__ import annotations

import argparse
import importlib.util
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
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def make_zoo(directory: Path, copies: int = 1) -> Path:
    """Every small fixture, ``copies`` times (``copy-K/NAME`` when more than once)."""
    sys.path.insert(0, str(REPO))
    import fixtures  # noqa: PLC0415

    paths = fixtures.build(Path(os.environ.get("CKPTKIT_FIXTURES", REPO / ".cache" / "fixtures")))
    zoo = directory / "zoo"
    for copy in range(copies):
        for name, path in paths.items():
            source = path.parent if path.is_file() else path
            shutil.copytree(source, zoo / (f"copy-{copy}" if copies > 1 else "") / name)
    return zoo


def run(zoo: Path, jobs: int, engine: str = "local") -> dict:
    with tempfile.TemporaryDirectory(dir=zoo.parent) as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "migrate.cli", "zoo", str(zoo), "--out", out, "--jobs", str(jobs),
                        "--engine", engine, "--format", "json"], cwd=REPO, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        report = json.loads((Path(out) / "zoo-report.json").read_text())
    work = sum(r["seconds"] for r in report["rows"])
    cpu = sum(r["cpu_seconds"] or 0 for r in report["rows"])
    size = sum(r["bytes"] or 0 for r in report["rows"]) / 2**20
    return {"wall_s": wall, "work_s": work, "cpu_s": cpu, "checkpoints": len(report["rows"]), "mb": size,
            "failed": report["totals"]["failed"]}


def import_cpu_seconds() -> float:
    """CPU seconds of importing TensorFlow and tf_keras as a worker does, in a fresh process."""
    code = ("import time; from migrate.tf import tensorflow, tf_keras; tensorflow(); tf_keras(); "
            "print(time.process_time())")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def spawned_workers(jobs: int) -> int:
    """Workers that import TensorFlow inside their first checkpoint: spawned ones, with several threads each
    (cores / jobs); those with one thread fork from a server that imported it (``migrate/_zoo/_start.py``)."""
    return jobs if len(os.sched_getaffinity(0)) // jobs > 1 else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--copies", type=int, default=1, help="each fixture this many times: a larger zoo, where "
                        "each worker's one TensorFlow import and the run's start weigh less")
    parser.add_argument("--no-ray", action="store_true", help="skip the ray_2cpu runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        zoo = make_zoo(Path(tmp), args.copies)
        results = {1: [], 2: []}
        imports, on_ray = [], []
        has_ray = importlib.util.find_spec("ray") is not None and not args.no_ray
        for _ in range(args.repeat):
            for jobs in (1, 2):
                results[jobs].append(run(zoo, jobs))
            if has_ray:
                on_ray.append(run(zoo, 2, "ray"))
            imports.append(import_cpu_seconds())
    out = {"import_cpu_s": round(statistics.median(imports), 2)}
    for jobs, runs in results.items():
        median = {key: statistics.median(r[key] for r in runs) for key in ("wall_s", "work_s", "cpu_s")}
        wall, work = median["wall_s"], median["work_s"]
        first = runs[0]
        out[f"jobs_{jobs}"] = {
            "checkpoints": first["checkpoints"], "failed": first["failed"], "wall_s": round(wall, 2),
            "checkpoints_per_s": round(first["checkpoints"] / wall, 3), "mb_per_s": round(first["mb"] / wall, 2),
            "overhead_share": round(max(0.0, wall - work / jobs) / wall, 3), "work_s": round(work, 2),
            "cpu_s": round(median["cpu_s"], 2),
            "cpu_s_less_imports": round(median["cpu_s"] - spawned_workers(jobs) * out["import_cpu_s"], 2),
            "runs_wall_s": [round(r["wall_s"], 2) for r in runs],
        }
    one, two = out["jobs_1"], out["jobs_2"]
    out["speedup_jobs2_over_jobs1"] = round(one["wall_s"] / two["wall_s"], 2)
    out["work_jobs2_over_jobs1"] = round(two["work_s"] / one["work_s"], 3)
    out["cpu_jobs2_over_jobs1"] = round(two["cpu_s"] / one["cpu_s"], 3)
    out["cpu_less_imports_jobs2_over_jobs1"] = round(two["cpu_s_less_imports"] / one["cpu_s_less_imports"], 3)
    out["ray_2cpu"] = _ray_summary(on_ray) if on_ray else {"skipped": "--no-ray, or ray is not installed "
                                                                      "(pip install ckptkit[ray])"}
    out["targets"] = {"speedup_min": 1.8, "cost_jobs2_over_jobs1_max": 1.10, "overhead_share_max": 0.10}
    print(json.dumps(out, indent=2))


def _ray_summary(runs: list[dict]) -> dict:
    """The Ray runs' medians, in the keys of the local ones."""
    wall = statistics.median(r["wall_s"] for r in runs)
    first = runs[0]
    return {"checkpoints": first["checkpoints"], "failed": first["failed"], "wall_s": round(wall, 2),
            "checkpoints_per_s": round(first["checkpoints"] / wall, 3),
            "work_s": round(statistics.median(r["work_s"] for r in runs), 2),
            "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2),
            "runs_wall_s": [round(r["wall_s"], 2) for r in runs]}


if __name__ == "__main__":
    main()
