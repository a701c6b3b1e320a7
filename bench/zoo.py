"""Zoo throughput: --jobs 1 against --jobs 2 on the same zoo, in one run.

The zoo is every small fixture (23 checkpoints: TF1 V2 and V1, TF2, SavedModel,
HDF5; model targets with parity and generic conversions).  Prints JSON:
checkpoints/s and MB/s per job count, the speed-up, and the overhead outside
conversion itself (process start, discovery, fingerprints, reports) as a share
of the wall time: wall - sum(per-checkpoint seconds) / jobs.

Usage: python bench/zoo.py [--repeat 1]
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
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def make_zoo(directory: Path) -> Path:
    sys.path.insert(0, str(REPO))
    import fixtures  # noqa: PLC0415

    paths = fixtures.build(Path(os.environ.get("CKPTKIT_FIXTURES", REPO / ".cache" / "fixtures")))
    zoo = directory / "zoo"
    for name, path in paths.items():
        source = path.parent if path.is_file() else path
        shutil.copytree(source, zoo / name)
    return zoo


def run(zoo: Path, jobs: int) -> dict:
    with tempfile.TemporaryDirectory(dir=zoo.parent) as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "migrate.cli", "zoo", str(zoo), "--out", out, "--jobs", str(jobs),
                        "--format", "json"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        report = json.loads((Path(out) / "zoo-report.json").read_text())
    work = sum(r["seconds"] for r in report["rows"])
    size = sum(r["bytes"] or 0 for r in report["rows"]) / 2**20
    return {"wall_s": wall, "work_s": work, "checkpoints": len(report["rows"]), "mb": size,
            "failed": report["totals"]["failed"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        zoo = make_zoo(Path(tmp))
        results = {1: [], 2: []}
        for _ in range(args.repeat):
            for jobs in (1, 2):
                results[jobs].append(run(zoo, jobs))
    out = {}
    for jobs, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        work = statistics.median(r["work_s"] for r in runs)
        first = runs[0]
        out[f"jobs_{jobs}"] = {
            "checkpoints": first["checkpoints"], "failed": first["failed"], "wall_s": round(wall, 2),
            "checkpoints_per_s": round(first["checkpoints"] / wall, 3), "mb_per_s": round(first["mb"] / wall, 2),
            "overhead_share": round(max(0.0, wall - work / jobs) / wall, 3), "work_s": round(work, 2),
        }
    out["speedup_jobs2_over_jobs1"] = round(out["jobs_1"]["wall_s"] / out["jobs_2"]["wall_s"], 2)
    out["targets"] = {"speedup_approaches": 2.0, "overhead_share_max": 0.10}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
