"""Outputs appear whole or not at all.

Everything is written into a hidden temporary directory beside the output
and renamed into place only after verification; an interrupted run leaves at
most a ``.NAME.tmp-*`` directory, which never looks like a finished output.
"""
from __future__ import annotations

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
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.tmp-", dir=self.output.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp's 0700 is for the work in progress only

    def commit(self) -> Path:
        old = None
        if self.output.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.old-", dir=self.output.parent))
            os.rename(self.output, old / "previous")
        os.rename(self.tmp, self.output)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.output

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is not None:
            self.abort()


def _inside(output: Path, source: Path) -> bool:
    """Would replacing ``output`` touch ``source`` (the same path, or one of its parents)?"""
    source = source.absolute()
    return output == source or output in source.parents


def write_state_file(directory: Path, prefix_name: str) -> None:
    """The ``checkpoint`` file tf.train.latest_checkpoint reads."""
    (directory / "checkpoint").write_text(
        f'model_checkpoint_path: "{prefix_name}"\nall_model_checkpoint_paths: "{prefix_name}"\n'
    )
