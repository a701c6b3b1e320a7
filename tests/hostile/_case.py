"""One corpus case: how to break a copy of a fixture, the command line to run, and what must come out."""
from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ._run import Sandbox


@dataclass(frozen=True)
class Case:
    name: str
    family: str  # the reader or file kind under attack
    base: str | tuple[str, ...] | None  # fixture(s) copied into IN before damage() runs
    damage: Callable[[Sandbox], None]
    command: str  # {in}: the damaged copy, {out}: the only directory the command may write, {work}: the sandbox
    error: str | None  # regex for the one stderr line "ckpt-...: error: ..."; None: no error line
    exit: int = 2
    stdout: str | None = None  # regex stdout must match (runs that succeed, or report per-item failures)
    known_bug: str = ""  # a defect outside what this suite may change: run, and expected to fail

    def argv(self, box: Sandbox) -> list[str]:
        return [token.format(**box.paths()) for token in shlex.split(self.command)]

    def prepare(self, box: Sandbox, zoo: dict[str, Path]) -> None:
        box.create()
        bases = (self.base,) if isinstance(self.base, str) else self.base or ()
        for name in bases:
            src = zoo[name]
            folder = src if src.is_dir() else src.parent
            shutil.copytree(folder, box.inp if isinstance(self.base, str) else box.inp / name, dirs_exist_ok=True)
        self.damage(box)


CASES: dict[str, Case] = {}


def case(family: str, base, command: str, error: str | None, exit: int = 2, stdout: str | None = None,
         known_bug: str = ""):
    """Register the decorated damage function as a corpus case named after it."""

    def register(damage: Callable[[Sandbox], None]):
        if damage.__name__ in CASES:
            raise ValueError(f"corpus case {damage.__name__!r} is defined twice")
        CASES[damage.__name__] = Case(damage.__name__, family, base, damage, command, error, exit, stdout, known_bug)
        return damage

    return register
