"""Each worker's share of the machine: thread pools sized before TensorFlow or numpy start them.

A worker process that starts TensorFlow with pools sized for the whole
machine (intra-op, inter-op, oneDNN's OpenMP, BLAS) oversubscribes it as
soon as two workers run: the same checkpoints then cost more CPU time.  The
pools read these variables once, when they start, so they are set in the
environment the spawned workers inherit, not from inside a worker.
"""
from __future__ import annotations

import contextlib
import os

# intra-op (TensorFlow, oneDNN's OpenMP, BLAS) and inter-op pool sizes
_PER_WORKER = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_INTER_OP = "TF_NUM_INTEROP_THREADS"


def cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(jobs: int, available: int | None = None) -> int:
    """``cores / jobs``, at least 1."""
    return max(1, (available or cores()) // max(1, jobs))


def thread_env(jobs: int) -> dict[str, str]:
    """The pool-size variables of a worker with ``cores / jobs`` threads; those the user set keep their values
    (a Ray task gets this whole dict, since a remote node does not have this process's environment)."""
    share = str(threads_per_worker(jobs))
    wanted = {name: share for name in _PER_WORKER} | {_INTER_OP: "1" if share == "1" else "2"}
    return {name: os.environ.get(name, value) for name, value in wanted.items()}


@contextlib.contextmanager
def worker_threads(jobs: int):
    """While open, processes started from here size their thread pools to ``cores / jobs``; the variables the
    user set themselves are kept."""
    added = {name: value for name, value in thread_env(jobs).items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield threads_per_worker(jobs)
    finally:
        for name in added:
            os.environ.pop(name, None)
