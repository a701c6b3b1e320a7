"""Zoo outputs on object storage: each converted entry uploaded whole, and a lock object that keeps two runs
from writing the same folder.

A store has no rename, so an entry cannot appear at once as a local output does.  What a client looks
for first (``checkpoint``, ``*.index``, ``saved_model.pb``) is removed first and uploaded last: while an
entry is being replaced it has no such object, so it reads as absent, never as half old and half new.

The lock is ``OUT/.ckptkit-zoo.lock``, created only if absent and renewed by a heartbeat, each renewal
conditional on the version the holder last wrote.  On S3 (s3fs) both conditions are the store's own
(``If-None-Match``/``If-Match``), so two runs cannot both hold it.  fsspec offers no conditional write for
other stores: there the same protocol is a check followed by a write, and one writer per output folder
is the user's rule.  A lock not renewed for ``STALE_SECONDS`` (its run was killed) is taken over.
"""
from __future__ import annotations

import json
import os
import posixpath
import socket
import threading
import time
from pathlib import Path

from .._formats._storage import RemotePath
from .._staging import OutputWriteError
from ._state import LOCK, ZooBusyError

MARKERS = ("checkpoint", "saved_model.pb")
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0


def is_marker(name: str) -> bool:
    """Is this an object a client opens first to find a checkpoint?"""
    return name in MARKERS or name.endswith(".index")


def publish(local: Path, remote: RemotePath) -> None:
    """Upload the folder ``local`` as ``remote``, replacing what an earlier run put there: its markers go
    first, then the new data, then its leftovers, and the new markers come last."""
    fs = remote.fs
    new = {p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*")) if p.is_file()}
    fs.invalidate_cache(remote.path)
    old = {posixpath.relpath(p, remote.path) for p in fs.find(remote.path)} if fs.isdir(remote.path) else set()
    try:
        _remove(fs, remote, [rel for rel in old if is_marker(posixpath.basename(rel))])
        for rel, path in new.items():
            if not is_marker(path.name):
                fs.put_file(str(path), f"{remote.path}/{rel}")
        _remove(fs, remote, [rel for rel in old - set(new) if not is_marker(posixpath.basename(rel))])
        for rel, path in new.items():
            if is_marker(path.name):
                fs.put_file(str(path), f"{remote.path}/{rel}")
    except OSError as e:
        raise OutputWriteError(f"{remote}: uploading the converted checkpoint failed ({e}); check the store's "
                               "credentials and space, then rerun (the entry is converted again)") from e


def _remove(fs, remote: RemotePath, rels: list[str]) -> None:
    if rels:
        fs.rm([f"{remote.path}/{rel}" for rel in rels])


class StoreLock:
    """An exclusive hold on an output folder on object storage for one run (see the module's docstring)."""

    def __init__(self, out: RemotePath):
        self.path = out / LOCK
        self.holder = f"{socket.gethostname()} pid {os.getpid()}"
        self._version: str | None = None
        self._lost: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> "StoreLock":
        for _ in range(3):  # the holder may release its lock while we look at it: then create it again
            try:
                self._version = self._write(if_absent=True)
                break
            except FileExistsError:
                if self._take_over_if_stale():
                    break
        else:
            raise ZooBusyError(f"{self.path.parent}: other zoo runs keep taking and releasing the lock; "
                               "run one at a time")
        self._beat = threading.Thread(target=self._heartbeat, name="zoo-lock", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._beat.join()
        if self._lost is None and self._read()[1] == self._version:  # not a lock another run took over
            self.path.fs.rm_file(self.path.path)

    def check(self) -> None:
        """Raise if another run took the lock over (this run stalled for longer than ``STALE_SECONDS``)."""
        if self._lost is not None:
            raise ZooBusyError(f"{self.path.parent}: this run lost its lock to {self._lost}; stop one of the runs")

    def _take_over_if_stale(self) -> bool:
        """Take the lock over if its holder stopped renewing it; False if it was released meanwhile."""
        body, version = self._read()
        if version is None:
            return False
        age = time.time() - float(body.get("renewed", 0))
        if age < STALE_SECONDS:
            raise ZooBusyError(f"{self.path.parent}: another zoo run ({body.get('holder', 'unknown')}, renewed "
                               f"{age:.0f} s ago) is writing here; wait for it or choose another output folder")
        try:
            self._version = self._write(if_version=version)
        except OSError:  # a third run took it over first
            raise ZooBusyError(f"{self.path.parent}: another zoo run took over its stale lock first; wait for it "
                               "or choose another output folder") from None
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._version = self._write(if_version=self._version)
            except OSError:
                self._lost = self._read()[0].get("holder", "another run")
                return

    def _read(self) -> tuple[dict, str | None]:
        """The lock's body and version; ``({}, None)`` when there is no lock."""
        fs = self.path.fs
        fs.invalidate_cache(self.path.path)
        try:
            version = self.path.version()[1]
            body = json.loads(fs.cat_file(self.path.path))
        except FileNotFoundError:
            return {}, None
        except ValueError:  # not ours, or cut short: a holder we cannot name
            body = {}
        return body if isinstance(body, dict) else {}, version

    def _write(self, *, if_absent: bool = False, if_version: str | None = None) -> str:
        """Write the lock's body under the condition given; the version written."""
        fs, data = self.path.fs, json.dumps({"holder": self.holder, "renewed": time.time()}).encode()
        if "s3" in _protocols(fs):
            condition = {"IfNoneMatch": "*"} if if_absent else {"IfMatch": if_version} if if_version else {}
            fs.pipe_file(self.path.path, data, **condition)
        else:  # no conditional write in fsspec's interface: check, then write
            if if_absent and self.path.exists():
                raise FileExistsError(str(self.path))
            if if_version is not None and self.path.version()[1] != if_version:
                raise OSError(f"{self.path}: changed by another run")
            fs.pipe_file(self.path.path, data)
        fs.invalidate_cache(self.path.path)
        return self.path.version()[1]


def _protocols(fs) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
