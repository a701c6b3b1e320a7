"""``zoo``: convert every checkpoint under a directory into one compatibility report.

The parent process never imports TensorFlow: it discovers, fingerprints and
schedules; spawned workers convert.  Each finished item is recorded in a
state file at once, so an interrupted run (Ctrl-C, kill -9) resumes without
redoing finished work, and staged outputs make a half-written one impossible.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from reports import ZooReport, ZooRow, render, to_data

from .._formats import open_checkpoint
from ..errors import CkptkitError
from ._discover import ZooItem, discover
from ._manifest import read_manifest
from ._paths import inside, output_names
from ._state import ZooLock, ZooState, fingerprint, remove_stale_temporaries
from ._worker import convert_item

REPORT = "zoo-report"


def run_zoo(source_dir, output_dir, *, jobs: int | None = None, manifest=None, stream=None) -> ZooReport:
    src, out = Path(source_dir).resolve(), Path(output_dir).resolve()
    if not src.is_dir():
        raise CkptkitError(f"{source_dir}: not a directory; pass the folder that holds the zoo")
    if out == src or src in out.parents:
        raise CkptkitError(f"{output_dir}: output directory is inside the zoo directory; choose one outside it")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    jobs = max(1, jobs or os.cpu_count() or 1)
    with ZooLock(out):
        remove_stale_temporaries(out)
        items = read_manifest(manifest, src) if manifest else discover(src)
        names = output_names([i.rel for i in items])
        state = ZooState(out)
        rows, todo = _plan(items, names, state, out)
        progress = _Progress(len(items), stream or sys.stderr)
        for row in rows.values():
            progress.update(row, draw=False)
        _run(todo, rows, state, out, jobs, progress)
        report = ZooReport(str(src), str(out), tuple(rows[i.rel] for i in items), jobs,
                           round(time.perf_counter() - started, 2))
        _write_reports(out, report)
    return report


def _plan(items: list[ZooItem], names, state: ZooState, out: Path):
    rows, todo = {}, []
    for item in items:
        try:
            with open_checkpoint(item.source) as reader:
                print_ = fingerprint(reader.files())
        except (CkptkitError, OSError) as e:  # unreadable: report it without a worker
            row = ZooRow(item.rel, None, "failed", reason=str(e), reason_kind=type(e).__name__)
            rows[item.rel] = row
            state.record(item.rel, "", to_data(row))
            continue
        previous = state.done(item.rel, print_)
        if previous is not None:
            rows[item.rel] = ZooRow(**{**_fields(previous), "status": "skipped"})
        else:
            todo.append((item, names[item.rel], print_))
    return rows, todo


def _run(todo, rows, state: ZooState, out: Path, jobs: int, progress) -> None:
    if not todo:
        progress.finish()
        return
    context = multiprocessing.get_context("spawn")  # workers import TensorFlow; the parent must not fork it
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context) as pool:
        futures = {pool.submit(convert_item, str(item.source), str(inside(out, name)), item.options or {}):
                   (item, name, print_) for item, name, print_ in todo}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    item, name, print_ = futures[future]
                    data = _result(future)
                    row = ZooRow(source=item.rel, output=name if data["status"] == "converted" else None, **data)
                    rows[item.rel] = row
                    state.record(item.rel, print_, to_data(row))
                    progress.update(row)
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            raise
    progress.finish()


def _result(future) -> dict:
    try:
        return future.result()
    except BrokenProcessPool:
        return {"status": "failed", "reason": "the worker process died (killed, or out of memory); rerun to retry",
                "reason_kind": "worker died"}


def _fields(data: dict) -> dict:
    return {k: v for k, v in data.items() if k in ZooRow.__dataclass_fields__}


def _write_reports(out: Path, report: ZooReport) -> None:
    (out / f"{REPORT}.json").write_text(json.dumps(to_data(report), indent=2))
    (out / f"{REPORT}.md").write_text(render(report, "markdown"), errors="backslashreplace")  # non-UTF-8 file names
    try:
        (out / f"{REPORT}.html").write_text(render(report, "html"), errors="backslashreplace")
    except (ValueError, TypeError):  # no HTML renderer for this report kind yet
        pass


class _Progress:
    """done/failed/remaining and throughput on a terminal; one summary line always."""

    def __init__(self, total: int, stream):
        self.total, self.done, self.failed, self.skipped, self.converted, self.bytes = total, 0, 0, 0, 0, 0
        self.stream, self.start = stream, time.monotonic()
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, row: ZooRow, draw: bool = True) -> None:
        self.done += 1
        self.failed += row.status == "failed"
        self.skipped += row.status == "skipped"
        if row.status == "converted":
            self.converted += 1
            self.bytes += row.bytes or 0
        if self.tty and draw:
            self.stream.write(f"\r{self._line()}")
            self.stream.flush()

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        return (f"zoo: {self.done}/{self.total} done, {self.failed} failed, {self.total - self.done} remaining, "
                f"{self.converted / elapsed:.2f} ckpt/s, {self.bytes / 2**20 / elapsed:.1f} MB/s")

    def finish(self) -> None:
        self.stream.write(("\r" if self.tty else "") + self._line() + (f" ({self.skipped} unchanged, skipped)"
                                                                       if self.skipped else "") + "\n")
