"""``convert`` killed with SIGKILL at random points, then rerun with --overwrite.

After every kill, OUT is absent or complete (never half-written); the rerun
completes and verifies, leaves no ``.NAME.tmp-*``/``.NAME.old-*`` behind, and the
source is byte-identical throughout.  (The zoo's kill -9 resume is tests/test_zoo.py.)
"""
from __future__ import annotations

import json
import random
import shutil
import time

import pytest

from migrate import open_checkpoint

from ._run import Sandbox, environment, finish, kill_group, run, snapshot, start

SOURCE = "mobilenet_v1_small"
MODES = {"generic": [], "auto": ["--target", "auto"]}
KILLS = 5


def _tensors(directory) -> dict[str, bytes]:
    """Every tensor of a converted output, read back (each read checks its crc32c)."""
    with open_checkpoint(directory) as reader:
        return {name: reader.read(name).tobytes() for name in reader.keys() if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _complete(directory, expected: dict[str, bytes]) -> bool:
    report = json.loads((directory / "conversion.json").read_text())
    return report["kind"] == "convert" and _tensors(directory) == expected


@pytest.mark.parametrize("mode", MODES)
def test_convert_killed_at_random_points(mode, zoo, tmp_path):
    box = Sandbox(tmp_path / "box").create()
    shutil.copytree(zoo[SOURCE], box.inp, dirs_exist_ok=True)
    source = snapshot(box.inp)
    command = ["ckpt-migrate", "convert", str(box.inp), "--out", str(box.out / "conv"), *MODES[mode], "--overwrite"]

    reference = run(["ckpt-migrate", "convert", str(box.inp), "--out", str(box.out / "reference"), *MODES[mode]], box)
    assert reference.returncode == 0, reference.stderr
    expected = _tensors(box.out / "reference")
    rng = random.Random(f"kill-{mode}")  # seeded: the same kill points every run
    interrupted = 0
    for attempt in range(KILLS):
        delay = rng.uniform(0.05, reference.seconds)
        running = start(command, cwd=box.cwd, env=environment(box))
        time.sleep(max(0.0, delay - (time.monotonic() - running.started)))
        kill_group(running.proc)
        killed = finish(running)
        interrupted += killed.returncode != 0
        out = box.out / "conv"
        assert not out.exists() or _complete(out, expected), f"kill {attempt} after {delay:.2f} s left a partial {out}"

        rerun = run(command, box)
        assert rerun.returncode == 0, rerun.stderr
        assert _complete(out, expected)
        leftovers = sorted(p.name for p in box.out.iterdir() if p.name.startswith(".conv."))
        assert leftovers == [], f"kill {attempt} after {delay:.2f} s: the rerun left {leftovers}"
        assert snapshot(box.inp) == source
    assert interrupted >= 1, "every kill came after the command had finished: the delays are too long"
