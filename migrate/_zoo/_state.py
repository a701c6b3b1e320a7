"""What a zoo run has finished, so a rerun resumes; and the lock that keeps runs apart."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

from .._formats._storage import RemotePath, location
from ..errors import CkptkitError

STATE = ".ckptkit-zoo-state.json"
LOCK = ".ckptkit-zoo.lock"


class ZooBusyError(CkptkitError, RuntimeError):
    """Another zoo run holds the output directory."""


def fingerprint(files: list) -> str:
    """Names, sizes and modification times (an object's ETag) of every file, plus the bytes of small ones
    (indexes); ``files`` are paths or object-storage URLs."""
    return fingerprint_and_size(files)[0]


def fingerprint_and_size(files: list) -> tuple[str, int]:
    """:func:`fingerprint` and the files' total bytes, from one look at each file."""
    digest, total = hashlib.sha256(), 0
    for path in sorted(map(location, files), key=str):
        size, version = _version(path)
        total += size
        digest.update(f"{path.name}\0{size}\0{version}\0".encode("utf-8", "surrogateescape"))
        if size <= 1 << 20:
            digest.update(path.read_bytes())
    return digest.hexdigest(), total


def _version(path) -> tuple[int, str]:
    if isinstance(path, RemotePath):
        return path.version()
    stat = path.stat()
    return stat.st_size, str(stat.st_mtime_ns)


class ZooState:
    """What each entry converted from (its fingerprint) and its row, in ``OUT/.ckptkit-zoo-state.json``; each
    record replaces the file in one step.  ``guard`` is called before each record (a lock that may be lost)."""

    def __init__(self, out: Path | RemotePath, guard=None):
        self.path = out / STATE
        self.items: dict[str, dict] = {}
        self._guard = guard or (lambda: None)
        if self.path.exists():
            try:
                self.items = json.loads(self.path.read_text())["items"]
                _check_items(self.items)
            except (ValueError, KeyError, TypeError, RecursionError) as e:
                raise CkptkitError(f"{self.path}: state file is corrupt ({e}); delete it to start the run afresh") from e

    def done(self, rel: str, print_: str) -> dict | None:
        """The previous row of ``rel`` if it converted from the same bytes."""
        entry = self.items.get(rel)
        if entry and entry["fingerprint"] == print_ and entry["row"]["status"] == "converted":
            return entry["row"]
        return None

    def record(self, rel: str, print_: str, row: dict) -> None:
        self._guard()
        self.items[rel] = {"fingerprint": print_, "row": row}
        write_text(self.path, json.dumps({"version": 1, "items": self.items}, indent=1))  # a kill: old or new


def write_text(path: Path | RemotePath, text: str) -> None:
    """Replace the file at ``path`` with ``text`` in one step (a local rename; one PUT on a store)."""
    if isinstance(path, RemotePath):
        path.fs.pipe_file(path.path, text.encode("utf-8", "backslashreplace"))  # non-UTF-8 file names
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, errors="backslashreplace")
    os.replace(tmp, path)


def _check_items(items) -> None:
    """What :meth:`ZooState.done` relies on: rel -> {"fingerprint": str, "row": {"status": str, ...}}."""
    if not isinstance(items, dict):
        raise TypeError(f"'items' is a {type(items).__name__}, not an object")
    for rel, entry in items.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("fingerprint"), str) and isinstance(entry.get("row"), dict)
                and isinstance(entry["row"].get("status"), str)):
            raise TypeError(f"entry {rel!r} is not a fingerprint and a row")


class ZooLock:
    """An exclusive flock on OUT/.ckptkit-zoo.lock for the whole run."""

    def __init__(self, out: Path):
        self.path = out / LOCK
        self._file = None

    def __enter__(self) -> "ZooLock":
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise ZooBusyError(f"{self.path.parent}: another zoo run ({holder}) is writing here; "
                               "wait for it or choose another output directory") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}")
        self._file.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()

    def check(self) -> None:
        """An flock is held until released: nothing to check (a :class:`StoreLock` can be lost)."""


def remove_stale_temporaries(out: Path) -> int:
    """Delete ``.NAME.tmp-*`` staging directories a killed run left (we hold the lock)."""
    removed = 0
    for path in out.rglob(".*.tmp-*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
