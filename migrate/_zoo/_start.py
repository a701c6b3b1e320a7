"""How the local pool's workers start: forked from a server that loaded the workers' modules once, else spawned.

A spawned worker starts a new interpreter and imports everything itself:
TensorFlow alone is 3.5 s of CPU per worker.  Python's fork server imports
the modules it is told to preload once, then forks each worker from that
state.  Forking is safe only from a process with no other thread (the known
hangs of forked TensorFlow all follow a session or an operation, whose
thread pools the child inherits without their threads); the server creates
no TensorFlow context and runs no operation, and importing TensorFlow starts
no thread only while every pool, BLAS's included, is sized to one thread.  So
workers fork when each has one thread (as many jobs as cores or more), and
are spawned otherwise.  The server is one per process and keeps the
environment it started with (each worker's pool sizes), so a later run that
needs another environment or preload spawns its workers too.
"""
from __future__ import annotations

import multiprocessing
from multiprocessing import forkserver

from ._threads import thread_env, threads_per_worker

WORKER = "migrate._zoo._worker"
TENSORFLOW = "migrate._zoo._preload"

_server: tuple | None = None  # (environment, preloaded modules) of this process's fork server, once started


def worker_context(jobs: int, tensorflow: bool):
    """The multiprocessing context for ``jobs`` workers; ``tensorflow``: some item converts into a model, so the
    server loads TensorFlow (a run of generic conversions never does).  Open it inside ``worker_threads(jobs)``:
    the server starts now, in the environment of this moment."""
    global _server
    if threads_per_worker(jobs) > 1 or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    wanted = (tuple(sorted(thread_env(jobs).items())), (WORKER, TENSORFLOW) if tensorflow else (WORKER,))
    if _server is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(wanted[1]))
        forkserver.ensure_running()
        _server = wanted
        return context
    return multiprocessing.get_context("forkserver" if _server == wanted else "spawn")
