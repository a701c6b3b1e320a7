"""Where a checkpoint's bytes live: a local path or an fsspec URL.

Local paths stay :class:`pathlib.Path` and are read with ``os.pread`` on a
file descriptor, as before.  Anything with ``://`` other than ``file://``
(``s3://``, ``gs://``, ``memory://``, ...) becomes a :class:`RemotePath`,
which offers the part of ``Path``'s interface the locator uses (``name``,
``parent``, ``/``, ``is_file``, ``iterdir``, ...) and is read with range
requests: an index costs its footer and blocks, a tensor its own bytes; no
file is ever downloaded whole.

fsspec and the protocol's package (s3fs for ``s3://``) are imported only
when a URL is given.  Credentials and endpoints come from fsspec's own
configuration: the usual variables of each protocol (``AWS_ACCESS_KEY_ID``,
...), ``FSSPEC_<PROTOCOL>_<ARGUMENT>`` (``FSSPEC_S3_ENDPOINT_URL`` for a
local S3 server) or fsspec's configuration files.
"""
from __future__ import annotations

import os
import posixpath
from pathlib import Path

from ..errors import CheckpointNotFoundError, UnsupportedFeatureError


def is_url(path) -> bool:
    """True for a URL handled by fsspec (``file://`` URLs are local paths)."""
    return isinstance(path, (str, RemotePath)) and "://" in str(path) and not str(path).startswith("file://")


def is_remote(path) -> bool:
    return isinstance(path, RemotePath)


def location(path: str | os.PathLike) -> "Path | RemotePath":
    """``path`` as a local :class:`Path` or, for a URL, a :class:`RemotePath`."""
    if isinstance(path, RemotePath):
        return path
    if isinstance(path, str) and path.startswith("file://"):
        return Path(path[len("file://"):])
    if is_url(path):
        return RemotePath.from_url(path)
    return Path(path)


def with_suffix_added(path: "Path | RemotePath", suffix: str) -> "Path | RemotePath":
    """``PREFIX`` + ``suffix`` (``.index``, ``.data-...``) beside it, of the same kind."""
    if isinstance(path, RemotePath):
        return path._at(path.path + suffix)
    return Path(f"{path}{suffix}")


def shown(path) -> "Path | str":
    """What a reader reports for a file: the Path itself, or a remote file's URL."""
    return str(path) if isinstance(path, RemotePath) else path


def _filesystem(url: str):
    protocol = url.split("://", 1)[0]
    try:
        import fsspec  # noqa: PLC0415 - only when a URL is given
    except ImportError:
        raise UnsupportedFeatureError(
            f"{url}: reading {protocol}:// sources needs `pip install ckptkit[storage]`"
        ) from None
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:  # the protocol's own package: s3fs is in the extra, gcsfs, adlfs, ... are not
        extra = "`pip install ckptkit[storage]`" if protocol in ("s3", "s3a") else "fsspec's package for it"
        raise UnsupportedFeatureError(f"{url}: reading {protocol}:// sources needs {extra} ({e})") from None
    except ValueError as e:  # fsspec: "Protocol not known"
        raise UnsupportedFeatureError(f"{url}: {protocol}:// is not a storage protocol fsspec knows ({e})") from None


class RemotePath:
    """A file or directory behind an fsspec file system, named by its URL."""

    def __init__(self, fs, path: str):
        self.fs = fs
        self.path = path.rstrip("/") or path

    @classmethod
    def from_url(cls, url: str) -> "RemotePath":
        fs, path = _filesystem(url)
        return cls(fs, path)

    def _at(self, path: str) -> "RemotePath":
        return RemotePath(self.fs, path)

    def __str__(self) -> str:
        return self.fs.unstrip_protocol(self.path)

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RemotePath) and other.fs is self.fs and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # -- the part of Path's interface the locator uses ---------------------
    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    @property
    def parent(self) -> "RemotePath":
        return self._at(posixpath.dirname(self.path))

    def __truediv__(self, other) -> "RemotePath":
        return self._at(posixpath.normpath(posixpath.join(self.path, str(other))))

    def with_name(self, name: str) -> "RemotePath":
        return self.parent / name

    def is_absolute(self) -> bool:
        return True

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def is_file(self) -> bool:
        return self.fs.isfile(self.path)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path)

    def iterdir(self):
        for child in self.fs.ls(self.path, detail=False):
            if child.rstrip("/") != self.path:  # some stores list the directory itself
                yield self._at(child)

    def size(self) -> int:
        """Bytes in the file; :class:`CheckpointNotFoundError` if there is none."""
        try:
            info = self.fs.info(self.path)
        except FileNotFoundError:
            raise CheckpointNotFoundError(f"{self}: no such object") from None
        if info.get("type") != "file":
            raise CheckpointNotFoundError(f"{self}: a directory, not a file")
        return int(info["size"])

    def version(self) -> tuple[int, str]:
        """Size and what the store says changes with the content (ETag, else modification time)."""
        info = self.fs.info(self.path)
        tag = next((str(info[k]) for k in ("ETag", "etag", "md5Hash", "generation", "LastModified", "mtime", "updated")
                    if info.get(k) is not None), "")
        return int(info["size"]), tag

    def read_bytes(self, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``start:end`` of the file, with one range request."""
        return self.fs.cat_file(self.path, start=start, end=end)

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)


class RandomAccessFile:
    """One open file read at given offsets; ``pread`` never moves a shared position."""

    def __init__(self, path: "Path | RemotePath"):
        self.path = path
        self._file = None
        if isinstance(path, RemotePath):
            self.size = path.size()
        else:
            self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
            try:
                self.size = self._file.seek(0, 2)
            except OSError:
                self.close()
                raise

    def pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer at the end of the file)."""
        if self._file is not None:
            return os.pread(self._file.fileno(), size, offset)
        if size <= 0 or offset >= self.size:
            return b""
        return self.path.read_bytes(offset, min(offset + size, self.size))

    def preadinto(self, buffer, offset: int) -> int:
        """Fill ``buffer`` (a writable buffer of bytes) from ``offset``; the number of bytes read."""
        if self._file is not None:
            return os.preadv(self._file.fileno(), [buffer], offset)
        view = memoryview(buffer).cast("B")
        data = self.pread(len(view), offset)
        view[: len(data)] = data
        return len(data)

    def fadvise_willneed(self, offset: int, size: int) -> None:
        """Ask the kernel to read ahead (local files; remote reads are on demand)."""
        if self._file is not None and size:
            os.posix_fadvise(self._file.fileno(), offset, size, os.POSIX_FADV_WILLNEED)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> "RandomAccessFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
