"""``--engine ray``: each zoo item is a Ray task running the local pool's worker function.

Ray is an optional extra, imported only here and only for ``--engine ray``.
The parent keeps everything else (discovery, fingerprints, the state file,
the lock, the report); a task only converts one item, sized by its bytes,
and is retried by Ray when its worker process dies.  Without ``--address``
a local Ray is started on loopback with ``jobs`` CPUs, no dashboard and no
usage statistics, and stopped at the end.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

from ..errors import UnsupportedFeatureError
from ._paths import output_path
from ._threads import thread_env
from ._worker import convert_item

MEMORY_FLOOR = 512 * 2**20  # a worker with TensorFlow imported, before any checkpoint
MEMORY_PER_BYTE = 4  # the source's arrays, the written copy re-read for verification, parity's two models
MAX_RETRIES = 2  # Ray retries a task whose worker process died (killed, out of memory)
# Test hook, read by the task wrapper only: the first attempt to create this file exits its worker at once.
DIE_ONCE = "CKPTKIT_ZOO_RAY_TEST_DIE_ONCE"
WORKER_DIED = {"status": "failed", "reason_kind": "worker died",
               "reason": f"the Ray worker died {MAX_RETRIES + 1} times (killed, or out of memory); rerun to retry"}


def require_ray():
    """The ``ray`` module, or the one-line error that says how to get it."""
    try:
        import ray  # noqa: PLC0415 - an optional extra, only for --engine ray
    except ImportError:
        raise UnsupportedFeatureError("--engine ray needs `pip install ckptkit[ray]`") from None
    return ray


def memory_for(size: int) -> int:
    """The memory a task asks of Ray for a checkpoint of ``size`` bytes."""
    return MEMORY_FLOOR + MEMORY_PER_BYTE * max(0, size)


def ray_tasks(todo, out, jobs: int, hints, address: str | None = None) -> Iterator:
    """Run ``todo`` as Ray tasks; yield ``((item, name, print_), row data)`` in the order they finish."""
    ray = require_ray()
    started = _connect(ray, jobs, address)
    pending: dict = {}
    try:
        largest, attempt = _largest_node_memory(ray), ray.remote(_attempt)
        for entry in todo:
            item, name, _ = entry
            task = attempt.options(num_cpus=1, memory=min(memory_for(hints.bytes.get(item.rel, 0)), largest),
                                   max_retries=MAX_RETRIES, retry_exceptions=False)
            pending[task.remote(str(item.source), output_path(out, name), item.options or {})] = entry
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), _result(ray, ref)
    finally:  # Ctrl-C, or the caller stopped early: nothing keeps running behind the report
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _connect(ray, jobs: int, address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local Ray of ``jobs`` CPUs; True when we started it."""
    env = thread_env(jobs)
    if os.environ.get(DIE_ONCE):
        env[DIE_ONCE] = os.environ[DIE_ONCE]
    if ray.is_initialized():  # the caller's own Ray (a notebook, a pipeline): use it as it is
        return False
    options = {"runtime_env": {"env_vars": env}, "log_to_driver": False, "logging_level": "warning"}
    if address:
        ray.init(address=address, **options)
        return True
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no report home: loopback only
    ray.init(num_cpus=jobs, include_dashboard=False, _node_ip_address="127.0.0.1", **options)
    return True


def _largest_node_memory(ray) -> int:
    """The most memory one live node offers: a task asking for more would wait forever."""
    offered = [node["Resources"].get("memory", 0) for node in ray.nodes() if node.get("Alive")]
    return int(max(offered, default=0)) or MEMORY_FLOOR


def _attempt(source: str, output: str, options: dict) -> dict:
    """One attempt at one item, in a Ray worker: the local pool's :func:`convert_item`."""
    marker = os.environ.get(DIE_ONCE)
    if marker:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:  # the first attempt of the run: die as a killed worker would, after saying which item it held
            os.write(fd, source.encode("utf-8", "surrogateescape"))
            os.close(fd)
            os._exit(1)
    return convert_item(source, output, options)


def _result(ray, ref) -> dict:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:  # the worker died on every attempt (convert_item itself never raises)
        return {**WORKER_DIED, "reason": f"{WORKER_DIED['reason']} ({type(e).__name__})"}
