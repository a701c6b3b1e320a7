"""Errors a user can act on.

Every message says what was expected, what was found and what to do; the
command line prints ``str(error)`` as one line and exits with
:attr:`CkptkitError.exit_code`.
"""
from __future__ import annotations


class CkptkitError(Exception):
    """Base class of every error ckptkit reports to a user."""

    exit_code = 2


class CheckpointNotFoundError(CkptkitError, FileNotFoundError):
    """The path does not lead to a checkpoint."""


class CheckpointFormatError(CkptkitError, ValueError):
    """A file exists but its bytes are not what its format promises."""


class ChecksumError(CheckpointFormatError):
    """Stored bytes do not match their stored crc32c."""


class UnsupportedFeatureError(CkptkitError, NotImplementedError):
    """The input is valid but uses something ckptkit does not handle."""


def where(path, detail: str) -> str:
    """Format ``path: detail`` the same way everywhere."""
    return f"{path}: {detail}"
