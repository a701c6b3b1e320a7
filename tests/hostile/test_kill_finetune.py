"""``ckpt-finetune train`` and ``ckpt-quantize export`` killed with SIGKILL at seeded random points, then rerun.

Fine-tuning: a tiny classifier (flags only, 64x64, depth 0.25, no fine-tune
checkpoint) is killed a moment after one of its periodic checkpoints appears
(in the slow variant, also once during start-up); after each kill every
checkpoint the ``checkpoint`` state file lists reads back whole (each tensor's
crc32c checked) and a report, if there is one, parses.  The rerun resumes and
finishes: the report says ``steps == --num-steps``, the final checkpoint holds
that step, nothing temporary is left in the model directory, and the inputs
are byte-identical throughout.

Export: ``ckpt-quantize export`` killed at a random point leaves OUT absent or
complete (its manifest and every file it lists), and the rerun with
--overwrite completes and removes the staging directories.
"""
from __future__ import annotations

import json
import random
import re
import shutil
import time
from itertools import islice
from pathlib import Path

import pytest

from migrate import open_checkpoint

from ._run import Sandbox, environment, finish, kill_group, run, snapshot, start

TRAIN_MEMORY = 12 << 30  # RLIMIT_AS of a training run (tf.data's thread stacks alone pass the corpus' 2 GB)
TRAIN_TIMEOUT = 300.0
TEMPORARY = re.compile(r"(^\.|tmp|temp)", re.IGNORECASE)  # staging names: .x.tmp-*, ckpt-5_temp/, .history.json.tmp


def _finetune_box(zoo, tmp_path) -> Sandbox:
    from finetune.data import iter_records, write_records

    box = Sandbox(tmp_path / "box").create()
    shapes = zoo["classify_shapes"]
    write_records(box.inp / "train.record", [r.data for r in islice(iter_records(shapes / "train.record"), 24)])
    shutil.copy(shapes / "label_map.pbtxt", box.inp / "label_map.pbtxt")
    return box


def _train_command(box: Sandbox, steps: int, every: int) -> list[str]:
    return ["ckpt-finetune", "train", "--out", str(box.out / "run"), "--task", "classification",
            "--feature-extractor", "mobilenet_v1", "--label-map-path", str(box.inp / "label_map.pbtxt"),
            "--train-input-path", str(box.inp / "train.record"), "--image-size", "64", "--depth-multiplier", "0.25",
            "--batch-size", "4", "--num-steps", str(steps), "--checkpoint-every", str(every), "--quiet",
            "--format", "json"]


def _listed_checkpoints(model_dir: Path) -> list[Path]:
    """The prefixes the ``checkpoint`` state file names (all_model_checkpoint_paths)."""
    state = model_dir / "checkpoint"
    if not state.exists():
        return []
    names = re.findall(r'all_model_checkpoint_paths: "([^"]+)"', state.read_text())
    return [model_dir / Path(n).name for n in names]


def _step_of(prefix: Path) -> int:
    """Every tensor of a training checkpoint read back (crc32c checked); its ``step``."""
    with open_checkpoint(prefix) as reader:
        values = {name: reader.read(name) for name in reader.keys()}
    return int(values["step/.ATTRIBUTES/VARIABLE_VALUE"])


def _check_after_kill(model_dir: Path, what: str) -> None:
    for prefix in _listed_checkpoints(model_dir):
        assert _step_of(prefix) == int(prefix.name.rsplit("-", 1)[1]), f"{what}: {prefix.name} is not whole"
    report = model_dir / "finetune-report.json"
    if report.exists():
        json.loads(report.read_text())  # a report that exists is complete


def _running(proc) -> bool:
    """Whether ``proc`` has not exited, without reaping it (``finish`` collects its rusage with wait4)."""
    try:
        return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _latest_step(model_dir: Path) -> int:
    listed = _listed_checkpoints(model_dir)  # oldest first; the manager keeps only the last few
    return int(listed[-1].name.rsplit("-", 1)[1]) if listed else 0


def _wait_for_checkpoint(model_dir: Path, running, step: int, limit: float) -> None:
    """Until a checkpoint of ``step`` or later is listed (or the command ends, or ``limit`` seconds pass)."""
    while time.monotonic() - running.started < limit and _running(running.proc):
        if _latest_step(model_dir) >= step:
            return
        time.sleep(0.05)


def _kill_and_resume(zoo, tmp_path, steps: int, every: int, kills: int, startup_kill: bool, seed: str) -> None:
    box = _finetune_box(zoo, tmp_path)
    sources = snapshot(box.inp)
    command = _train_command(box, steps, every)
    model_dir = box.out / "run"
    rng = random.Random(seed)  # the same kill points every run
    interrupted = 0
    for attempt in range(kills):
        running = start(command, cwd=box.cwd, env=environment(box), memory=TRAIN_MEMORY)
        if startup_kill and attempt == 0:
            time.sleep(rng.uniform(0.5, 4.0))  # during imports, the record check or the model build
        else:
            _wait_for_checkpoint(model_dir, running, _latest_step(model_dir) + every, TRAIN_TIMEOUT)
            time.sleep(rng.uniform(0.0, 1.5))  # somewhere in the next steps, or inside the next save
        kill_group(running.proc)
        killed = finish(running, TRAIN_TIMEOUT)
        interrupted += killed.returncode != 0
        assert killed.returncode in (0, -9), (killed.returncode, killed.stderr[-3000:])
        assert "Traceback" not in killed.stderr, killed.stderr[-3000:]
        _check_after_kill(model_dir, f"kill {attempt}")
        assert snapshot(box.inp) == sources

    rerun = run(command, box, timeout=TRAIN_TIMEOUT, memory=TRAIN_MEMORY)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    report = json.loads(rerun.stdout)
    assert report["steps"] == steps
    assert report["resumed_from"], "the rerun started from scratch: no checkpoint survived the kills"
    assert _step_of(model_dir / f"ckpt-{steps}") == steps
    assert json.loads((model_dir / "finetune-report.json").read_text())["steps"] == steps
    leftovers = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if TEMPORARY.search(p.name))
    assert leftovers == [], f"temporary files left in the model directory: {leftovers}"
    assert snapshot(box.inp) == sources, "the inputs changed"
    assert interrupted == kills, "a kill came after the command had finished: the run is too short"


def test_finetune_killed_after_a_checkpoint_resumes(zoo, tmp_path):
    # enough steps after the first checkpoint that the kill (at most 1.5 s later) lands before the end
    _kill_and_resume(zoo, tmp_path, steps=120, every=4, kills=1, startup_kill=False, seed="finetune-kill")


@pytest.mark.slow
def test_finetune_killed_repeatedly_resumes(zoo, tmp_path):
    _kill_and_resume(zoo, tmp_path, steps=40, every=5, kills=4, startup_kill=True, seed="finetune-kill-slow")


# ----------------------------------------------------------------- ckpt-quantize export
def _export_command(box: Sandbox, variants: list[str]) -> list[str]:
    base = box.inp
    return ["ckpt-quantize", "export", "--keras-model", str(base / "model.h5"), "--train-input-path",
            str(base / "train.record"), "--test-input-path", str(base / "test.record"), "--label-map-path",
            str(base / "label_map.pbtxt"), "--batch-size", "8", "--eval-batch-size", "8", "--variants", *variants,
            "--out", str(box.out / "export"), "--overwrite"]


def _export_complete(out: Path) -> bool:
    manifest = json.loads((out / "export.json").read_text())
    files = [out / v["file"] for v in manifest["variants"]]
    return all(f.is_file() and f.stat().st_size > 0 for f in files) and (out / "saved_model" / "saved_model.pb").is_file()


def _kill_export(zoo, tmp_path, variants: list[str], kills: int, seed: str) -> None:
    box = Sandbox(tmp_path / "box").create()
    shutil.copytree(zoo["quantize_tiny"], box.inp, dirs_exist_ok=True)
    shutil.rmtree(box.inp / "export")
    sources = snapshot(box.inp)
    command = _export_command(box, variants)
    rng = random.Random(seed)
    out = box.out / "export"
    interrupted = 0
    for attempt in range(kills):
        running = start(command, cwd=box.cwd, env=environment(box), memory=TRAIN_MEMORY)
        while _running(running.proc) and not any(box.out.glob(".export.tmp-*")):  # the export has begun
            time.sleep(0.02)
        delay = rng.uniform(0.0, 4.0)  # writing the SavedModel, converting, verifying or renaming
        time.sleep(delay)
        kill_group(running.proc)
        interrupted += finish(running, TRAIN_TIMEOUT).returncode != 0
        assert not out.exists() or _export_complete(out), f"kill {attempt} {delay:.1f} s in left a partial {out}"
        assert snapshot(box.inp) == sources

    rerun = run(command, box, timeout=TRAIN_TIMEOUT, memory=TRAIN_MEMORY)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _export_complete(out)
    leftovers = sorted(p.name for p in box.out.iterdir() if p.name.startswith(".export."))
    assert leftovers == [], f"the rerun left {leftovers}"
    assert snapshot(box.inp) == sources
    assert interrupted >= 1, "every kill came after the export had finished"


def test_quantize_export_killed_is_absent_or_complete(zoo, tmp_path):
    _kill_export(zoo, tmp_path, ["float32"], kills=1, seed="export-kill")


@pytest.mark.slow
def test_quantize_export_killed_repeatedly(zoo, tmp_path):
    _kill_export(zoo, tmp_path, ["float32", "dynamic", "float16"], kills=4, seed="export-kill-slow")
