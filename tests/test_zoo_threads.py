"""Zoo workers size their thread pools to their share of the machine, generic work never starts TensorFlow, workers
fork from a server that imported TensorFlow once, and a worker that started it ends without TensorFlow's teardown."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from migrate._zoo._threads import cores, threads_per_worker, worker_threads

REPO = Path(__file__).resolve().parent.parent
NAMES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
         "MKL_NUM_THREADS")


@pytest.mark.parametrize("jobs,available,expected", [(1, 2, 2), (2, 2, 1), (4, 2, 1), (3, 8, 2), (0, 4, 4)])
def test_each_worker_gets_cores_over_jobs_and_at_least_one(jobs, available, expected):
    assert threads_per_worker(jobs, available) == expected


def _environment(_=None) -> dict:
    return {name: os.environ.get(name) for name in NAMES}


def _converts_without_tensorflow(source: str, output: str) -> tuple[str, bool]:
    from migrate._zoo._worker import convert_item

    row = convert_item(source, output, {"target": "generic"})
    return row["status"], "tensorflow" in sys.modules


def test_spawned_workers_inherit_their_share_and_the_parent_is_left_as_it_was(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own setting wins
    context = multiprocessing.get_context("spawn")
    with worker_threads(2) as share, ProcessPoolExecutor(1, mp_context=context) as pool:
        seen = pool.submit(_environment).result()
    assert share == threads_per_worker(2)
    assert seen["TF_NUM_INTRAOP_THREADS"] == seen["OPENBLAS_NUM_THREADS"] == seen["MKL_NUM_THREADS"] == str(share)
    assert seen["OMP_NUM_THREADS"] == "3" and seen["TF_NUM_INTEROP_THREADS"] in ("1", "2")
    assert _environment() == {**dict.fromkeys(NAMES), "OMP_NUM_THREADS": "3"}  # nothing left behind


def test_a_generic_conversion_in_a_worker_never_imports_tensorflow(tmp_path):
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    source = fixtures.build(out, names=["bert_tiny"])["bert_tiny"]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        status, imported = pool.submit(_converts_without_tensorflow, str(source), str(tmp_path / "out")).result()
    assert status == "converted" and not imported


SKIPS_TEARDOWN = """
import atexit, sys, types
from pathlib import Path
from migrate._zoo import _worker
atexit.register(Path(sys.argv[1]).write_text, "teardown ran")  # stands for TensorFlow's own exit handlers
if sys.argv[2] == "tensorflow":
    sys.modules["tensorflow"] = types.ModuleType("tensorflow")
_worker._skip_teardown_once_tensorflow_is_loaded()
print("result sent")
"""


@pytest.mark.parametrize("loaded", ["tensorflow", "nothing"])
def test_a_pool_worker_that_loaded_tensorflow_ends_without_its_teardown(tmp_path, loaded):
    marker = tmp_path / "teardown"
    done = subprocess.run([sys.executable, "-c", SKIPS_TEARDOWN, str(marker), loaded], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0 and done.stdout == "result sent\n", done.stderr  # flushed before the exit
    assert marker.exists() == (loaded == "nothing")


FORKED = """
import json, os, sys
from concurrent.futures import ProcessPoolExecutor
from migrate._zoo._start import worker_context
from migrate._zoo._threads import worker_threads

def probe():
    parent = len(os.listdir(f"/proc/{os.getppid()}/task"))  # the fork server's threads (its only thread: safe)
    return {"tensorflow": "tensorflow" in sys.modules, "intra": os.environ.get("TF_NUM_INTRAOP_THREADS"),
            "omp": os.environ.get("OMP_NUM_THREADS"), "parent_threads": parent}

if __name__ == "__main__":
    seen = []
    for jobs, tensorflow, environment in json.loads(sys.argv[1]):
        os.environ.update(environment)
        with worker_threads(jobs):
            context = worker_context(jobs, tensorflow)
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                seen.append({"method": context.get_start_method(), **pool.submit(probe).result()})
    print(json.dumps(seen))
"""


def _forked(tmp_path, runs) -> list[dict]:
    script = tmp_path / "forked.py"
    script.write_text(FORKED)
    env = {k: v for k, v in os.environ.items() if k not in NAMES}
    done = subprocess.run([sys.executable, str(script), json.dumps(runs)], capture_output=True, text=True, cwd=REPO,
                          env={**env, "PYTHONPATH": str(REPO)}, check=True)
    return json.loads(done.stdout)


ONE_THREAD_EACH = cores()  # as many jobs as cores: each worker has one thread
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; other systems spawn alike")


@LINUX
def test_workers_fork_with_tensorflow_loaded_once_and_keep_their_share(tmp_path):
    """A run with model conversions, one thread per worker: the workers start with TensorFlow imported, by a
    fork server that has no other thread when it forks them; a later run in the same process with another
    environment (here the user's own OpenMP setting) spawns its workers, in that environment."""
    jobs = ONE_THREAD_EACH
    runs = [[jobs, True, {}], [jobs, True, {}], [jobs, True, {"OMP_NUM_THREADS": "3"}]]
    first, again, other = _forked(tmp_path, runs)
    assert first["method"] == again["method"] == "forkserver" and first["tensorflow"] and again["tensorflow"]
    assert first["parent_threads"] == again["parent_threads"] == 1
    assert first["intra"] == again["intra"] == "1"
    assert other["method"] == "spawn" and not other["tensorflow"] and other["omp"] == "3"


@LINUX
@pytest.mark.skipif(ONE_THREAD_EACH < 2, reason="one core: every worker has one thread")
def test_workers_with_several_threads_each_are_spawned(tmp_path):
    (one,) = _forked(tmp_path, [[1, True, {}]])  # a forking process must have no other thread: BLAS would start some
    assert one["method"] == "spawn" and not one["tensorflow"] and one["intra"] == str(threads_per_worker(1))


@LINUX
def test_a_run_of_generic_conversions_never_loads_tensorflow_in_its_workers(tmp_path):
    generic, models = _forked(tmp_path, [[ONE_THREAD_EACH, False, {}], [ONE_THREAD_EACH, True, {}]])
    assert generic["method"] == "forkserver" and not generic["tensorflow"]
    assert models["method"] == "spawn"  # the server without TensorFlow is not reused for model conversions
