"""Inspect speed, end to end as a user runs it, against TensorFlow, in one run.

Prints JSON: median wall times (seconds) of
  - `ckpt-migrate inspect` on ~100 MB and ~1 GB checkpoints (targets 0.3 s, 0.5 s),
  - `tf.train.list_variables` in a fresh interpreter (import included),
  - `ckpt-migrate inspect --stats` against `cat DATA > /dev/null` (target: >= 70% of cat's MB/s).
Both sides of each ratio run on the same files, alternately, in the same run.
For stats and cat the data files are evicted from the page cache before each
run (posix_fadvise DONTNEED), so both read from the disk.

Usage: python bench/inspect.py [--sizes 100,1000] [--repeat 5] [--dir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def evict(files: list[Path]) -> None:
    """Drop these files' pages from the page cache so the next read hits the disk.

    Only the checkpoint's files: the interpreter and its libraries stay cached,
    as they are for a user who runs the tool more than once.
    """
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(cmd: list[str] | str, runs: int, cold: list[Path] = (), warmup: int = 1) -> float:
    """Median wall time of ``runs`` runs after ``warmup`` discarded ones; ``cold`` files are evicted first."""
    times = []
    for _ in range(warmup + runs):
        evict(list(cold))
        start = time.perf_counter()
        subprocess.run(cmd, shell=isinstance(cmd, str), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def ensure_checkpoint(directory: Path, mb: int) -> Path:
    out = directory / f"big_{mb}mb"
    if not (out / "model.ckpt.index").exists():
        subprocess.run([sys.executable, "-m", "fixtures", "big", "--out", str(out), "--mb", str(mb)], check=True, cwd=REPO)
    return out


def data_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob("*.data-*"))


def bench_size(path: Path, repeat: int) -> dict:
    cli = [sys.executable, "-m", "migrate.cli", "inspect"]
    listing = [sys.executable, "-c", "import sys; from migrate.tf import tensorflow; tensorflow().train.list_variables(sys.argv[1])", str(path)]
    size = data_bytes(path)
    inspect_s = timed(cli + [str(path), "--format", "json"], repeat)
    list_s = timed(listing, max(1, repeat // 2))
    cold = sorted(path.glob("*.data-*"))  # "disk read speed": both sides read the data from the disk
    stats_runs, cat_runs = [], []
    for _ in range(repeat):  # alternate so both sides see the same disk conditions
        stats_runs.append(timed(cli + [str(path), "--stats", "--format", "json"], 1, cold, warmup=0))
        cat_runs.append(timed(f"cat {path}/*.data-* > /dev/null", 1, cold, warmup=0))
    stats_s, cat_s = statistics.median(stats_runs), statistics.median(cat_runs)
    return {
        "data_mb": round(size / 2**20, 1),
        "inspect_s": round(inspect_s, 3),
        "tf_list_variables_s": round(list_s, 3),
        "inspect_speedup_vs_tf": round(list_s / inspect_s, 2),
        "stats_s": round(stats_s, 3),
        "stats_mb_per_s": round(size / 2**20 / stats_s, 1),
        "cat_mb_per_s": round(size / 2**20 / cat_s, 1),
        "stats_vs_cat_ratio": round(cat_s / stats_s, 3),
        # streaming alone: the index-only run's time is the fixed start-up cost
        "stats_streaming_mb_per_s": round(size / 2**20 / max(stats_s - inspect_s, 1e-3), 1),
        "stats_streaming_vs_cat_ratio": round(cat_s / max(stats_s - inspect_s, 1e-3), 3),
        "page_cache": "data files evicted before each stats/cat run",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("CKPTKIT_FIXTURES", REPO / ".cache" / "fixtures")) / "bench")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    results = {f"{mb}mb": bench_size(ensure_checkpoint(args.dir, mb), args.repeat) for mb in map(int, args.sizes.split(","))}
    targets = {"inspect_100mb_s_max": 0.3, "inspect_1000mb_s_max": 0.5, "stats_vs_cat_ratio_min": 0.7}
    print(json.dumps({"results": results, "targets": targets, "cpu_count": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
