"""A checkpoint on object storage, copied beside its output for the writers, which need local files; an
output on object storage, written into a local folder and uploaded when it is converted.

Only what a conversion reads is copied: the reader's files (index and
shards) and, from the checkpoint's folder, its ``checkpoint`` state file,
``pipeline.config`` and ``saved_model.pb``.  The copy is a ``.NAME-source.tmp-*``
directory in the output folder, so a killed run's copy is removed by the
next run like any other staging directory, and it is deleted when the
conversion ends.  An output on a store is written under a local temporary folder (``TMPDIR``), which
holds the source's copy too, and is removed once uploaded; a killed worker's folder is removed by the next
worker (each holds an flock on its own, which the kernel drops when the process dies).
"""
from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import re
import shutil
import tempfile
from pathlib import Path

from .._formats import open_checkpoint
from .._formats._storage import RemotePath, location
from .._staging import lock_directory, remove_unlocked
from ..errors import CkptkitError
from ._store import publish

BESIDE = ("checkpoint", "pipeline.config", "saved_model.pb")
SCRATCH = "ckptkit-zoo-"  # a worker's local folder for an output on a store, under TMPDIR


@contextlib.contextmanager
def local_source(source: str, output: str):
    """``source`` itself when it is local, else the path of its local copy while the block runs."""
    remote = location(source)
    if not isinstance(remote, RemotePath):
        yield source
        return
    output = Path(output)
    scratch = output.parent / f".{output.name}-source.tmp-{os.getpid()}"  # not the output staging's own .NAME.tmp-*
    try:
        local = str(_copy(remote, scratch))
        with _naming(re.escape(local), source):
            yield local
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def local_output(output: str):
    """``output`` itself when it is local, else a local folder to write it in, uploaded to ``output`` when the
    block ends without an error."""
    remote = location(output)
    if not isinstance(remote, RemotePath):
        yield output
        return
    remove_orphans()
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH))
    held = lock_directory(scratch)  # a live worker's: remove_orphans leaves it alone
    staged = rf"{re.escape(str(scratch))}/(?:\.{re.escape(remote.name)}\.tmp-[^/\s]+|{re.escape(remote.name)})"
    try:
        with _naming(staged, output):  # the output and its staging folder (convert's .NAME.tmp-*)
            yield str(scratch / remote.name)
        publish(scratch / remote.name, remote)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os.close(held)


@functools.cache
def remove_orphans() -> None:
    """Delete the local folders of workers that were killed (no live process holds their lock); once per
    worker process, which cannot leave orphans of its own while it lives."""
    remove_unlocked(Path(tempfile.gettempdir()).glob(f"{SCRATCH}*"))


@contextlib.contextmanager
def _naming(local: str, url: str):
    """An error raised in the block names ``url``, what the user gave, instead of its local stand-in (paths
    matching the pattern ``local``)."""
    try:
        yield
    except CkptkitError as e:
        if e.args and isinstance(e.args[0], str):
            e.args = (re.sub(local, lambda _: url, e.args[0]), *e.args[1:])
        raise


def _copy(source: RemotePath, scratch: Path) -> Path:
    """Copy what converting ``source`` reads under ``scratch``; the local path that stands for ``source``."""
    with open_checkpoint(source) as reader:
        files = [location(f) for f in reader.files()]
    folder = source if source.is_dir() else source.parent
    files += [f for f in (folder / name for name in BESIDE) if f not in files and f.is_file()]
    root = posixpath.commonpath([folder.path, *(f.path for f in files)])
    for remote in files:
        local = scratch / posixpath.relpath(remote.path, root)
        local.parent.mkdir(parents=True, exist_ok=True)
        remote.fs.get_file(remote.path, str(local))
    return scratch / posixpath.relpath(source.path, root)
