"""Fuzz every native reader with atheris: seconds per target in ``make test``, a minute each in ``make test-slow``.

A crash (an exception the reader does not document, a hang past -timeout, an
allocation past the address-space limit) fails the test with the input's
traceback; the input is left in the test's tmp directory (``crash-*``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from ._run import REPO, environment
from .fuzz import REGRESSIONS

TARGETS = ["table", "bundle", "v1_metadata", "tensor_proto", "object_graph", "rules", "manifest", "state_file",
           "textproto", "label_map", "tfrecord"]
FUZZ_MEMORY = 3 << 30  # RLIMIT_AS of the fuzzing process: a reader that allocates what a header claims dies here


def _fuzz(target: str, seconds: int, zoo_dir, tmp_path) -> int:
    """Run atheris on ``target`` for ``seconds``; return the number of inputs tried."""
    pytest.importorskip("atheris", reason="atheris (libFuzzer for Python) is not installed for this platform")
    import resource  # noqa: PLC0415

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (FUZZ_MEMORY, FUZZ_MEMORY))

    flags = [f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048", "-seed=1", "-print_final_stats=1",
             f"-artifact_prefix={tmp_path}/crash-"]
    scratch = tempfile.mkdtemp(prefix="ckptkit-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:  # every input is written to a file: in memory, ten times more inputs per second
        result = subprocess.run([sys.executable, "-m", "tests.hostile.fuzz", target, *flags], cwd=REPO,
                                capture_output=True, text=True, timeout=seconds + 120, preexec_fn=limit,
                                env=environment(CKPTKIT_FIXTURES=str(zoo_dir), CKPTKIT_FUZZ_SCRATCH=scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.returncode == 0, f"fuzz target {target} crashed:\n{result.stderr[-6000:]}"
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", result.stderr)
    assert runs and int(runs[1]) > 0, result.stderr[-3000:]
    return int(runs[1])


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_smoke(target, zoo, zoo_dir, tmp_path, fuzz_log):
    zoo["detection_shapes"]  # the finetune targets' seeds (built on first use)
    fuzz_log(target, _fuzz(target, 3, zoo_dir, tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_long(target, zoo, zoo_dir, tmp_path, fuzz_log):
    zoo["detection_shapes"]
    fuzz_log(target, _fuzz(target, 90, zoo_dir, tmp_path))


def test_fuzz_regressions_stay_fixed(zoo, zoo_dir, tmp_path, monkeypatch):
    zoo["detection_shapes"]
    """Every input fuzzing ever crashed on, replayed in-process (no atheris needed)."""
    monkeypatch.setenv("CKPTKIT_FIXTURES", str(zoo_dir))
    monkeypatch.setenv("CKPTKIT_FUZZ_SCRATCH", str(tmp_path))
    from . import _fuzz_targets  # noqa: PLC0415

    assert set(REGRESSIONS) <= set(_fuzz_targets.TARGETS) == set(TARGETS)
    for target, inputs in REGRESSIONS.items():
        for data in inputs:
            _fuzz_targets.call(target, data)
