"""Run the real command lines as subprocesses under a time and memory bound, and watch what they touch.

Every run gets its own sandbox::

    ROOT/in    the (damaged) inputs        ROOT/out   the only place a command may write
    ROOT/cwd   its working directory       ROOT/home  HOME and TMPDIR

:func:`snapshot` hashes every file under ROOT except ``out/``; a run must leave that snapshot unchanged
(inputs unmodified, nothing written beside or above the output directory).  ``home/`` is compared
separately: TensorFlow's tf_keras writes ``~/.keras/keras.json`` when it is first imported, and that is
the only thing allowed there.
"""
from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TIME_LIMIT = 30.0  # seconds per command
MEMORY_LIMIT = 2 << 30  # RLIMIT_AS per command (address space, so also a bound on what a header can make us allocate)
# ckpt-quantize maps TensorFlow, LiteRT and tf_keras (which loads Pillow, now installed for matplotlib) before it
# reads any input: about 2 GB of address space; its resident memory stays far below MEMORY_LIMIT (asserted)
ADDRESS_SPACE = {"quantize": 3 << 30}
PROGRAMS = {"ckpt-migrate": "migrate.cli", "ckpt-report": "reports.cli", "ckpt-finetune": "finetune.cli",
            "ckpt-quantize": "quantize.cli"}
KERAS_CONFIG = ".keras/keras.json"  # tf_keras writes it into HOME at import time; not ckptkit's doing
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Sandbox:
    root: Path

    @property
    def inp(self) -> Path:
        return self.root / "in"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def create(self) -> "Sandbox":
        for path in (self.inp, self.out, self.cwd, self.home):
            path.mkdir(parents=True, exist_ok=True)
        return self

    def paths(self) -> dict[str, str]:
        return {"in": str(self.inp), "out": str(self.out), "work": str(self.root)}


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int  # -N: killed by signal N
    stdout: str
    stderr: str
    seconds: float
    max_rss: int  # bytes, from wait4's rusage
    timed_out: bool

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def argv_of(command: list[str]) -> list[str]:
    """``ckpt-migrate ...`` -> ``python -m migrate.cli ...`` (the same entry point the console script calls)."""
    program, *rest = command
    return [sys.executable, "-m", PROGRAMS[program], *rest]


def environment(box: Sandbox | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8:strict",  # a UTF-8 terminal, as on a desktop
               PYTHONPATH=str(REPO))
    if box is not None:
        env.update(HOME=str(box.home), TMPDIR=str(box.home))
    env.update(extra)
    return env


def _limit_memory(limit: int = MEMORY_LIMIT):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


@dataclass
class Running:
    proc: subprocess.Popen
    stdout: object
    stderr: object
    started: float


def start(command: list[str], *, cwd: Path, env: dict[str, str], memory: int = MEMORY_LIMIT) -> Running:
    """Start a command in its own process group (so its workers can be killed with it).  ``memory``: its
    RLIMIT_AS (training needs more than the corpus' bound: tf.data's thread stacks are address space)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    proc = subprocess.Popen(argv_of(command), cwd=cwd, env=env, stdout=out, stderr=err,
                            preexec_fn=_limit_memory(memory), start_new_session=True)
    return Running(proc, out, err, time.monotonic())


def finish(running: Running, timeout: float = TIME_LIMIT) -> Result:
    """Wait (bounded) for the command; kill its whole group on a timeout; collect rusage with wait4."""
    proc, timed_out = running.proc, False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - running.started > timeout:
            kill_group(proc)
            pid, status, usage = os.wait4(proc.pid, 0)
            timed_out = True
            break
        time.sleep(0.01)
    seconds = time.monotonic() - running.started
    proc.returncode = os.waitstatus_to_exitcode(status)
    kill_group(proc)  # workers a killed or crashed parent left behind
    outputs = []
    for stream in (running.stdout, running.stderr):
        stream.seek(0)
        outputs.append(stream.read().decode("utf-8", "backslashreplace"))
        stream.close()
    return Result(tuple(proc.args), proc.returncode, outputs[0], outputs[1], seconds, usage.ru_maxrss * 1024, timed_out)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(command: list[str], box: Sandbox, timeout: float = TIME_LIMIT, memory: int = MEMORY_LIMIT, **env: str) -> Result:
    return finish(start(command, cwd=box.cwd, env=environment(box, **env), memory=memory), timeout)


def snapshot(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """relative path -> sha256 (files), "dir" or "link -> target" for everything under ``root`` but ``skip``."""
    found: dict[str, str] = {}
    skip = tuple(p.resolve() for p in skip)
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        dirs[:] = [d for d in dirs if (here / d).resolve() not in skip or (here / d).is_symlink()]
        for name in dirs + files:
            path = here / name
            rel = os.fsencode(path.relative_to(root)).decode("utf-8", "backslashreplace")
            if path.is_symlink():
                found[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                found[rel] = "dir"
            elif path.is_file():
                found[rel] = _sha256(path)
            else:
                found[rel] = "special"
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable differences between two snapshots."""
    out = [f"created {p}" for p in sorted(set(after) - set(before))]
    out += [f"deleted {p}" for p in sorted(set(before) - set(after))]
    out += [f"modified {p}" for p in sorted(set(before) & set(after)) if before[p] != after[p]]
    return out


def outside_writes(box: Sandbox, before: dict[str, str]) -> list[str]:
    """Everything a run changed outside ``out/`` (HOME may only gain tf_keras' own config file)."""
    after = snapshot(box.root, skip=(box.out,))
    allowed = {"home/.keras", f"home/{KERAS_CONFIG}"}
    return [c for c in changes(before, after) if c.split(" ", 1)[1] not in allowed]
