"""``zoo``: convert every checkpoint under a directory into one compatibility report.

The parent process never imports TensorFlow: it discovers, fingerprints and
schedules; workers convert (``_start``: forked from a server that loaded
TensorFlow, or spawned).  Each finished item is recorded in a
state file at once, so an interrupted run (Ctrl-C, kill -9) resumes without
redoing finished work, and staged outputs make a half-written one impossible.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from reports import ZooReport, ZooRow, render, to_data
from reports.console import progress

from .._formats import CheckpointReader, open_checkpoint
from .._formats._storage import RemotePath, location
from ..errors import CkptkitError
from ._discover import ZooItem, discover
from ._manifest import read_manifest
from ._paths import output_names, output_path
from ._state import ZooLock, ZooState, fingerprint_and_size, remove_stale_temporaries, write_text
from ._start import worker_context
from ._store import StoreLock
from ._threads import worker_threads
from ._worker import converts_into_a_model, pool_item

REPORT = "zoo-report"


def run_zoo(source_dir, output_dir, *, jobs: int | None = None, manifest=None, stream=None,
            quiet: bool = False, engine: str = "local", address: str | None = None) -> ZooReport:
    """Convert every checkpoint under ``source_dir`` into ``output_dir``; entries an earlier run converted
    from the same bytes are kept with their status and finish time.  ``quiet``: no progress bar (the
    summary line still goes to ``stream``, default stderr).  ``engine``: ``local``, a pool of ``jobs``
    processes; ``ray``, Ray tasks on the cluster at ``address``, or on a local Ray of ``jobs`` CPUs."""
    schedule = _scheduler(engine, address)  # before anything is written: a missing Ray is one line
    src, out = _zoo_root(source_dir), _out_root(output_dir)
    if _within(out, src):
        raise CkptkitError(f"{output_dir}: output directory is inside the zoo directory; choose one outside it")
    started = time.perf_counter()
    jobs = max(1, jobs or os.cpu_count() or 1)
    with _lock(out) as lock:
        items = read_manifest(manifest, src) if manifest else discover(src)
        names = output_names([i.rel for i in items])
        state = ZooState(out, guard=lock.check)
        rows, todo, hints = _plan(items, names, state)
        with progress(len(items), "zoo", "ckpt", quiet, initial=len(rows)) as bar:
            _run(todo, rows, state, bar, functools.partial(schedule, out=out, jobs=jobs, hints=hints))
        report = ZooReport(str(src), str(out), tuple(rows[i.rel] for i in items), jobs,
                           round(time.perf_counter() - started, 2), engine=engine)
        _write_reports(out, report)
    (stream or sys.stderr).write(_summary(report, time.perf_counter() - started) + "\n")
    return report


def _zoo_root(source_dir) -> Path | RemotePath:
    """The zoo folder: a local directory, or a folder on object storage (an fsspec URL)."""
    src = location(source_dir)
    if isinstance(src, Path):
        src = src.resolve()
    else:
        src.fs.invalidate_cache()  # listings an earlier run in this process cached: see the store as it is now
    if not src.is_dir():
        raise CkptkitError(f"{source_dir}: not a directory; pass the folder that holds the zoo")
    return src


def _out_root(output_dir) -> Path | RemotePath:
    """The output folder: a local directory, or a folder on object storage (an fsspec URL)."""
    out = location(output_dir)
    if isinstance(out, RemotePath):
        out.fs.invalidate_cache()  # see the state and lock objects as they are now
        return out
    return out.resolve()


def _within(out, src) -> bool:
    """Is ``out`` the zoo folder or inside it (the same kind of storage only)?"""
    if type(out) is not type(src):
        return False
    if isinstance(out, RemotePath):
        return out.fs.protocol == src.fs.protocol and (out.path + "/").startswith(src.path + "/")
    return out == src or src in out.parents


@contextlib.contextmanager
def _lock(out):
    """Hold the output folder for this run: an flock here (the folder created, and the staging a killed run left
    removed), or a lock object on a store."""
    if isinstance(out, RemotePath):
        with StoreLock(out) as lock:
            yield lock
        return
    out.mkdir(parents=True, exist_ok=True)
    with ZooLock(out) as lock:
        remove_stale_temporaries(out)
        yield lock


@dataclass(frozen=True)
class Hints:
    """What the plan learnt of the items left to convert, for the scheduler: their bytes (Ray's memory
    request), and those that convert into a model (the local pool's workers then start with TensorFlow)."""

    bytes: dict[str, int]
    models: frozenset[str]


def _plan(items: list[ZooItem], names, state: ZooState):
    """Rows settled before any worker starts (reused, unreadable), the items left to convert, largest
    first (the longest conversions start early instead of running alone at the end), and their hints."""
    rows, todo, sizes, models = {}, [], {}, set()
    for item in items:
        try:
            with open_checkpoint(item.source) as reader:
                print_, sizes[item.rel] = fingerprint_and_size(reader.files())
                previous = state.done(item.rel, print_)
                if previous is None and _into_a_model(reader, item):  # tensor names read for the items to run only
                    models.add(item.rel)
        except (CkptkitError, OSError) as e:  # unreadable: report it without a worker
            _settle(ZooRow(item.rel, None, "failed", reason=str(e), reason_kind=type(e).__name__), "", rows, state)
            continue
        if previous is not None:
            rows[item.rel] = ZooRow(**_fields(previous)).reused()
        else:
            todo.append((item, names[item.rel], print_))
    todo.sort(key=lambda entry: -sizes.get(entry[0].rel, 0))
    return rows, todo, Hints(sizes, frozenset(models))


def _into_a_model(reader: CheckpointReader, item: ZooItem) -> bool:
    try:
        return converts_into_a_model(reader.specs(), item.options or {})
    except (CkptkitError, OSError):  # unreadable tensors: the worker says so, in its row
        return False


def _run(todo, rows, state: ZooState, bar, schedule) -> None:
    """Settle each item as the scheduler reports it finished, whichever scheduler runs them."""
    if not todo:
        return
    failed = sum(r.status == "failed" for r in rows.values())
    with contextlib.closing(schedule(todo)) as finished:  # closed on Ctrl-C: pending work is cancelled
        for (item, name, print_), data in finished:
            row = ZooRow(source=item.rel, output=name if data["status"] == "converted" else None, **data)
            _settle(row, print_, rows, state)
            failed += row.status == "failed"
            bar.set_postfix(failed=failed, refresh=False)
            bar.update(1)


def _scheduler(engine: str, address: str | None):
    """How the items run: ``local``, a process pool here; ``ray``, Ray tasks (Ray is imported only then)."""
    if engine == "ray":
        from ._ray import ray_tasks, require_ray  # noqa: PLC0415 - an optional extra

        require_ray()
        return functools.partial(ray_tasks, address=address)
    if engine != "local":
        raise CkptkitError(f"--engine {engine}: expected local or ray")
    if address:
        raise CkptkitError(f"--address {address}: a Ray cluster's address needs --engine ray")
    return _local_pool


def _local_pool(todo, *, out, jobs: int, hints: Hints) -> Iterator:
    """Run ``todo`` in ``jobs`` processes; yield ``((item, name, print_), row data)`` as each finishes."""
    with worker_threads(jobs), ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                                                   mp_context=worker_context(jobs, bool(hints.models))) as pool:
        futures = {pool.submit(pool_item, str(item.source), output_path(out, name), item.options or {}):
                   (item, name, print_) for item, name, print_ in todo}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield futures[future], _result(future)
        finally:
            for future in pending:
                future.cancel()


def _settle(row: ZooRow, print_: str, rows: dict, state: ZooState) -> None:
    """Stamp a row this run finished with the time, keep it for the report and record it for later runs."""
    row = replace(row, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"), this_run=row.status)
    rows[row.source] = row
    stored = to_data(row)
    del stored["this_run"]  # what one run did; a later run decides its own
    state.record(row.source, print_, stored)


def _result(future) -> dict:
    try:
        return future.result()
    except BrokenProcessPool:
        return {"status": "failed", "reason": "the worker process died (killed, or out of memory); rerun to retry",
                "reason_kind": "worker died"}


def _fields(data: dict) -> dict:
    return {k: v for k, v in data.items() if k in ZooRow.__dataclass_fields__}


def _write_reports(out, report: ZooReport) -> None:
    write_text(out / f"{REPORT}.json", json.dumps(to_data(report), indent=2))
    write_text(out / f"{REPORT}.md", render(report, "markdown"))
    write_text(out / f"{REPORT}.html", render(report, "html"))


def _summary(report: ZooReport, seconds: float) -> str:
    """One line: what the zoo holds, what this run reused, and the throughput of this run's conversions."""
    t, seconds = report.totals, max(seconds, 1e-9)
    converted = [r for r in report.rows if r.this_run == "converted"]
    megabytes = sum(r.bytes or 0 for r in converted) / 2**20
    return (f"zoo: {t['checkpoints']}/{t['checkpoints']} done, {t['converted']} converted, {t['failed']} failed, "
            f"{report.reused} unchanged (reused from earlier runs); this run {len(converted) / seconds:.2f} ckpt/s, "
            f"{megabytes / seconds:.1f} MB/s")
