"""Every corpus case through the real command line: one clear line, the right exit code, bounded time and
memory, inputs untouched, nothing written outside the output directory, no half-written output."""
from __future__ import annotations

import re
import shutil

import pytest

from ._run import ADDRESS_SPACE, MEMORY_LIMIT, TIME_LIMIT, Sandbox, changes, outside_writes, run, snapshot
from .corpus import CASES

INTERNAL_ERROR = re.compile(r"unexpected \w+: .*report it")


# ckpt-quantize cases start TensorFlow (7 s each here): `make test` runs these, `make test-hostile` and
# `make test-slow` every one.
QUICK_QUANTIZE = {"quantize_tflite_garbage", "quantize_saved_model_garbage_pb", "quantize_representative_npy_huge_shape"}


def _params():
    for name, c in CASES.items():
        marks = [pytest.mark.corpus]
        marks += [pytest.mark.xfail(reason=c.known_bug, strict=True)] if c.known_bug else []
        marks += [pytest.mark.slow] if c.family == "quantize" and name not in QUICK_QUANTIZE else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_params()))
def test_case(name, zoo, tmp_path, measure):
    c = CASES[name]
    box = Sandbox(tmp_path / "box")
    c.prepare(box, zoo)
    before, out_before = snapshot(box.root, skip=(box.out,)), snapshot(box.out)

    result = run(c.argv(box), box, memory=ADDRESS_SPACE.get(c.family, MEMORY_LIMIT))
    measure(name, result)

    assert not result.timed_out, f"{c.command}: still running after {TIME_LIMIT:.0f} s (a hang)"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.max_rss < MEMORY_LIMIT
    assert result.returncode == c.exit, (result.returncode, result.stderr[-2000:], result.stdout[-1000:])
    errors = [line for line in result.stderr_lines if ": error: " in line]
    if c.error is None:
        assert not errors, result.stderr
        assert re.search(c.stdout, result.stdout), result.stdout[-3000:]
    else:
        assert len(result.stderr_lines) == 1, result.stderr
        line = result.stderr_lines[0]
        assert re.match(r"ckpt-(migrate|report|finetune|quantize): error: ", line), line
        assert not INTERNAL_ERROR.search(line), line
        assert re.search(c.error, line), line
    assert outside_writes(box, before) == [], "inputs changed or files written outside the output directory"
    if result.returncode == 2:  # a refused run leaves nothing in the output directory that looks like output
        assert refused_leftovers(out_before, snapshot(box.out)) == []


def refused_leftovers(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What a refused run changed in OUT, except empty directories and a zoo run's lock file."""
    return [c for c in changes(before, after)
            if not (c.startswith("created ") and (after[c[8:]] == "dir" or c.endswith(".ckptkit-zoo.lock")))]


def test_debug_shows_the_traceback(zoo, tmp_path):
    box = Sandbox(tmp_path / "box")
    CASES["data_missing"].prepare(box, zoo)
    plain = run(["ckpt-migrate", "inspect", str(box.inp)], box)
    result = run(["ckpt-migrate", "--debug", "inspect", str(box.inp)], box)
    assert result.returncode == plain.returncode == 2 and "Traceback" in result.stderr


@pytest.mark.parametrize("fixture", ["mobilenet_v1_small", "vgg_16_v1", "keras_h5", "tf2_object"])
def test_clean_inputs_are_never_modified(zoo, fixture, tmp_path):
    """The control: a full audit (--stats --verify) and a convert of an undamaged fixture change nothing in it."""
    box = Sandbox(tmp_path / "box").create()
    src = zoo[fixture]
    shutil.copytree(src if src.is_dir() else src.parent, box.inp, dirs_exist_ok=True)
    path = box.inp / src.name if src.is_file() else box.inp
    before = snapshot(box.root, skip=(box.out,))
    assert run(["ckpt-migrate", "inspect", "--stats", "--verify", str(path)], box).returncode == 0
    assert run(["ckpt-migrate", "convert", str(path), "--out", str(box.out / "conv")], box).returncode == 0
    assert outside_writes(box, before) == []
