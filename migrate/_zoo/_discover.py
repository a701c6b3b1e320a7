"""Find every checkpoint under a zoo directory, laid out as the real zoo tarballs are.

A directory with a ``checkpoint`` state file (TF1 detection zoo:
model.ckpt.*, pipeline.config, frozen_inference_graph.pb, saved_model/) is one
item; so is a SavedModel directory.  Elsewhere each ``*.index`` prefix, V1
single file and ``.h5`` file is an item.  Symbolic links are not followed.
A zoo on object storage (an fsspec URL) is walked the same way, except for
V1 files, which are not read remotely.
"""
from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from .._formats._storage import RemotePath
from .._formats._table import has_table_magic

_NOT_V1 = re.compile(r"(\.index|\.meta|\.data-\d{5}-of-\d{5}|\.pb|\.pbtxt|\.config|\.txt|\.json|\.md)$")


@dataclass(frozen=True)
class ZooItem:
    source: Path | RemotePath  # what open_checkpoint accepts
    rel: str  # relative to the zoo directory, for reports and output names
    options: dict | None = None  # from a manifest


def discover(root: Path | RemotePath) -> list[ZooItem]:
    if isinstance(root, RemotePath):
        return _discover_remote(root)
    root = Path(root)
    items: list[ZooItem] = []
    for directory, subdirs, files in os.walk(root, followlinks=False):
        here = Path(directory)
        if "checkpoint" in files or "saved_model.pb" in files:
            items.append(_item(root, here))
            subdirs[:] = []  # saved_model/ and the like belong to this item
            continue
        subdirs[:] = sorted(d for d in subdirs if not (here / d).is_symlink())
        for name in sorted(files):
            path = here / name
            if path.is_symlink():
                continue
            if name.endswith(".index"):
                items.append(_item(root, here / name[: -len(".index")]))
            elif name.endswith((".h5", ".hdf5")) or (not _NOT_V1.search(name) and has_table_magic(path)):
                items.append(_item(root, path))
    return items


def _discover_remote(root: RemotePath) -> list[ZooItem]:
    items: list[ZooItem] = []
    for directory, subdirs, files in root.fs.walk(root.path, topdown=True):
        here = root / posixpath.relpath(directory, root.path)
        if "checkpoint" in files or "saved_model.pb" in files:
            items.append(_remote_item(root, here))
            subdirs[:] = []
            continue
        subdirs.sort()
        for name in sorted(files):
            if name.endswith(".index"):
                items.append(_remote_item(root, here / name[: -len(".index")]))
            elif name.endswith((".h5", ".hdf5")):
                items.append(_remote_item(root, here / name))
    return items


def _remote_item(root: RemotePath, path: RemotePath) -> ZooItem:
    rel = posixpath.relpath(path.path, root.path)
    return ZooItem(path, rel if rel != "." else path.name)


def _item(root: Path, path: Path) -> ZooItem:
    rel = path.relative_to(root).as_posix()
    return ZooItem(path, rel if rel != "." else path.name)
