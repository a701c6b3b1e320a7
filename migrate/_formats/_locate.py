"""Turn whatever path a user has into one opened checkpoint.

Accepts a prefix, its ``.index``, any ``.data-*`` shard or ``.meta``, a
directory holding a ``checkpoint`` state file or exactly one checkpoint, a
TF2 zoo directory (``checkpoint/ckpt-0.*``), a SavedModel directory, a V1
single file and a Keras ``.h5`` file.  Ambiguity is an error listing the
candidates, never a guess.  Any of these may also be an fsspec URL
(``s3://bucket/dir/model.ckpt``); only tensor bundles are read from one so far.
"""
from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointFormatError, CheckpointNotFoundError, UnsupportedFeatureError
from ._base import CheckpointReader
from ._bundle import BundleReader
from ._h5 import HDF5_MAGIC, H5Reader
from ._storage import RandomAccessFile, RemotePath, is_remote, location, with_suffix_added
from ._table import has_table_magic
from ._v1 import V1Reader

_SHARD = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STATE_LINE = re.compile(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"\s*$', re.M)


@dataclass(frozen=True)
class Located:
    kind: str  # "bundle", "v1", "h5"
    path: "Path | RemotePath"  # prefix for bundles, the file otherwise
    saved_model: bool = False


def open_checkpoint(path: str | os.PathLike) -> CheckpointReader:
    """Open any checkpoint path (``str``, path-like or fsspec URL) with the right native reader."""
    found = locate(path)
    if is_remote(found.path) and found.kind != "bundle":
        kind = {"h5": "Keras .h5", "v1": "V1 checkpoint"}[found.kind]
        raise UnsupportedFeatureError(
            f"{found.path}: a {kind}; remote sources of this format are not supported yet; download it first"
        )
    if found.kind == "h5":
        return H5Reader(found.path)
    if found.kind == "v1":
        return V1Reader(found.path)
    reader = BundleReader(found.path)
    if found.saved_model:
        reader.format = "saved-model"
    return reader


def locate(path: str | os.PathLike) -> Located:
    """Which checkpoint ``path`` names: its kind and the prefix or file to open (``str``, path-like or URL)."""
    path = location(path)
    if path.is_dir():
        return _locate_dir(path)
    if path.is_file():
        return _locate_file(path)
    if _index_of(path).is_file():
        return Located("bundle", path)
    if path.exists():  # a FIFO, socket or device: never opened (reading a FIFO would block)
        raise CheckpointNotFoundError(f"{path}: not a regular file or directory")
    raise CheckpointNotFoundError(f"{path}: no such file or directory, and no {path.name}.index beside it")


def _index_of(prefix):
    return with_suffix_added(prefix, ".index")


def _locate_file(path: Path) -> Located:
    name = path.name
    if name.endswith(".index"):
        return Located("bundle", path.with_name(name[: -len(".index")]))
    if _SHARD.search(name):
        return _from_prefix(path.with_name(_SHARD.sub("", name)), path)
    if name.endswith(".meta"):
        return _from_prefix(path.with_name(name[: -len(".meta")]), path)
    if name == "checkpoint":
        return _from_state_file(path)
    return _sniff(path)


def _from_prefix(prefix: Path, given: Path) -> Located:
    if _index_of(prefix).is_file():
        return Located("bundle", prefix)
    if prefix.is_file():
        return _sniff(prefix)
    raise CheckpointNotFoundError(f"{given}: no {prefix.name}.index (or V1 file {prefix.name}) beside it; copy the whole checkpoint")


def _sniff(path: Path) -> Located:
    head = _head(path, 512)
    if not head:
        raise CheckpointFormatError(f"{path}: file is empty; the copy is incomplete")
    if head.startswith(HDF5_MAGIC):
        return Located("h5", path)
    if has_table_magic(path):
        return Located("v1", path)
    if path.suffix == ".keras":
        raise CheckpointFormatError(f"{path}: a Keras 3 .keras archive; load it in Keras and save_weights to .h5 first")
    kind = "text" if _looks_like_text(head) else "binary data"
    raise CheckpointFormatError(f"{path}: {kind}, not a checkpoint (expected a .index/.data pair, a V1 checkpoint or Keras .h5)")


def _head(path, size: int) -> bytes:
    with RandomAccessFile(path) as f:  # remote: one range request
        return f.pread(size, 0)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _locate_dir(path: Path) -> Located:
    if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
        variables = path / "variables" / "variables"
        if not _index_of(variables).is_file():
            raise CheckpointNotFoundError(
                f"{path}: SavedModel without variables/variables.index (weights frozen into the graph as constants?)"
            )
        return Located("bundle", variables, saved_model=True)
    if (path / "checkpoint").is_file():
        return _from_state_file(path / "checkpoint")
    candidates = sorted(p for p in path.iterdir() if p.is_file() and _is_candidate(p))
    if len(candidates) == 1:
        return _locate_file(candidates[0])
    if (path / "checkpoint").is_dir():  # TF2 detection zoo: checkpoint/ckpt-0.*
        return _locate_dir(path / "checkpoint")
    if not candidates:
        raise CheckpointNotFoundError(f"{path}: directory holds no checkpoint (.index, V1 .ckpt or .h5 file)")
    names = ", ".join(p.name for p in candidates)
    raise CheckpointNotFoundError(f"{path}: directory holds several checkpoints ({names}); pass one of them")


def _is_candidate(path: Path) -> bool:
    if path.name.endswith(".index"):
        return True
    if path.suffix in (".h5", ".hdf5"):
        return True
    return path.suffix in (".ckpt", "") and not _SHARD.search(path.name) and path.name != "checkpoint" and has_table_magic(path)


def _from_state_file(state: Path) -> Located:
    match = _STATE_LINE.search(state.read_text(encoding="utf-8", errors="replace"))
    if not match:
        raise CheckpointFormatError(f"{state}: checkpoint state file has no model_checkpoint_path line")
    try:  # a C-escaped string: TensorFlow writes non-ASCII names as octal escapes of their UTF-8 bytes
        written = codecs.escape_decode(match.group(1).encode("utf-8"))[0].decode("utf-8", "surrogateescape")
    except ValueError as e:
        raise CheckpointFormatError(f"{state}: model_checkpoint_path {match.group(1)!r} is not a valid escaped string ({e})") from e
    named = Path(written)
    for candidate in _named_candidates(state, written):  # zoo files often name another machine's path
        try:
            index, single = _index_of(candidate).is_file(), candidate.is_file()
        except OSError:  # a name too long for the file system (or otherwise unusable) is not there either
            continue
        if index:
            return Located("bundle", candidate)
        if single:
            return _sniff(candidate)
    raise CheckpointNotFoundError(
        f"{state}: names checkpoint {str(named)!r}, which is not there (no {named.name}.index); copy it or fix the state file"
    )


def _named_candidates(state, written: str) -> list:
    """Where the prefix a state file names may be: as written, then beside the state file."""
    named = Path(written)
    if not is_remote(state):
        return [named if named.is_absolute() else state.parent / named, state.parent / named.name]
    if "://" in written:  # TensorFlow saving straight to a bucket writes the URL
        try:
            first = location(written)
        except UnsupportedFeatureError:  # another protocol, whose package is missing: look beside the state file
            first = state.parent / named.name
    elif named.is_absolute():  # another machine's local path: only its name can be here
        first = state.parent / named.name
    else:
        first = state.parent / named
    return [first, state.parent / named.name]
