"""Outputs appear whole or not at all.

Everything is written into a hidden temporary directory beside the output
and renamed into place only after verification; an interrupted run leaves at
most a ``.NAME.tmp-*`` directory, which never looks like a finished output and
which the next run on the same output removes.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import os
import shutil
import tempfile
from pathlib import Path

from .errors import CkptkitError


class OutputExistsError(CkptkitError, FileExistsError):
    """The output is there already and --overwrite was not given."""


class Staging:
    def __init__(self, output: Path, overwrite: bool = False, inputs=()):
        self.output = Path(output).absolute()
        if self.output.exists() and not overwrite:
            raise OutputExistsError(f"{self.output}: output exists; pass --overwrite to replace it")
        for source in inputs:
            if _inside(self.output, Path(source)):
                raise CkptkitError(f"{self.output}: replacing it would delete the input {source}; choose another path")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(self.output)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.tmp-", dir=self.output.parent))
        self._lock = lock_directory(self.tmp)  # held while we work: tells a later run this directory is not stale
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp's 0700 is for the work in progress only

    def commit(self) -> Path:
        old = None
        if self.output.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.old-", dir=self.output.parent))
            old_lock = lock_directory(old)
            os.rename(self.output, old / "previous")
        os.rename(self.tmp, self.output)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
            os.close(old_lock)
        self._release()
        return self.output

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is not None:
            self.abort()


class OutputWriteError(CkptkitError, OSError):
    """The output cannot be written: the disk is full or the location is read-only."""


@contextlib.contextmanager
def output_errors(output: Path):
    """Turn a full disk or a read-only location met while writing ``output`` into one actionable line."""
    try:
        yield
    except CkptkitError:
        raise
    except OSError as e:
        written = Path(e.filename2 or e.filename or output).absolute()  # shutil names the source first, then the copy
        ours = written == output.absolute() or output.absolute().parent in written.parents
        reason = os.strerror(e.errno) if e.errno else str(e)  # h5py's own text spans several lines
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputWriteError(f"{output}: {reason.lower()} while writing the output; free space or choose another "
                                   "output directory; nothing was written") from e
        if e.errno == errno.EROFS or e.errno in (errno.EACCES, errno.EPERM) and ours:
            raise OutputWriteError(f"{output}: cannot write there ({reason}); choose a writable output directory; "
                                   "nothing was written") from e
        raise


def _remove_stale(output: Path) -> None:
    """Delete ``.NAME.tmp-*`` and ``.NAME.old-*`` directories a killed run left beside ``output``.

    A live run holds an flock on its own temporary directory (the kernel drops it
    when the process dies, also on kill -9), so only orphans are removed.
    """
    pattern = glob.escape(f".{output.name}")
    remove_unlocked([*output.parent.glob(f"{pattern}.tmp-*"), *output.parent.glob(f"{pattern}.old-*")])


def remove_unlocked(paths) -> None:
    """Delete the directories among ``paths`` that no live process holds a :func:`lock_directory` on."""
    for path in paths:
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            fd = lock_directory(path, wait=False)
        except OSError:  # BlockingIOError: a live run's
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def lock_directory(path: Path, wait: bool = True) -> int:
    """An flock on the directory ``path`` (its descriptor; closing it releases the lock)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        os.close(fd)
        raise
    return fd


def _inside(output: Path, source: Path) -> bool:
    """Would replacing ``output`` touch ``source`` (the same path, or one of its parents)?"""
    source = source.absolute()
    return output == source or output in source.parents


def write_state_file(directory: Path, prefix_name: str) -> None:
    """The ``checkpoint`` file tf.train.latest_checkpoint reads."""
    (directory / "checkpoint").write_text(
        f'model_checkpoint_path: "{prefix_name}"\nall_model_checkpoint_paths: "{prefix_name}"\n'
    )
