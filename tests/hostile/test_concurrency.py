"""Two real ``ckpt-migrate zoo`` processes on one OUT_DIR: they never interleave writes; while one holds the
directory, the other is refused with one line."""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil

from migrate import open_checkpoint
from reports import load_report

from ._run import Sandbox, environment, finish, run, start

BUSY = r"^ckpt-migrate: error: \S+/out: another zoo run \(pid \d+\) is writing here; wait for it or choose another output directory$"


def test_two_zoo_runs_on_one_output_directory(zoo, tmp_path):
    box = Sandbox(tmp_path / "box").create()
    for i in range(4):  # generic conversions: enough work that the two runs overlap, no TensorFlow needed
        shutil.copy(zoo["keras_h5"], box.inp / f"weights_{i}.h5")
    shutil.copytree(zoo["partitioned"], box.inp / "partitioned")
    command = ["ckpt-migrate", "zoo", str(box.inp), "--out", str(box.out), "--jobs", "1", "--format", "json"]

    first, second = start(command, cwd=box.cwd, env=environment(box)), start(command, cwd=box.cwd, env=environment(box))
    results = [finish(first, timeout=180), finish(second, timeout=180)]

    # On a busy machine the first can finish before the second starts: then the second finds the work done.
    codes = sorted(r.returncode for r in results)
    assert codes in ([0, 2], [0, 0]), [(r.returncode, r.stderr) for r in results]
    winner, loser = sorted(results, key=lambda r: r.returncode)
    if codes == [0, 2]:
        assert len(loser.stderr_lines) == 1 and re.match(BUSY, loser.stderr_lines[0]), loser.stderr
    assert "Traceback" not in winner.stderr + loser.stderr

    printed = json.loads(winner.stdout)
    written = json.loads((box.out / "zoo-report.json").read_text())
    assert printed == written and written["totals"]["converted"] == 5 and written["totals"]["failed"] == 0
    assert load_report(box.out / "zoo-report.json").totals["checkpoints"] == 5
    state = json.loads((box.out / ".ckptkit-zoo-state.json").read_text())["items"]
    assert {row["source"] for row in written["rows"]} == set(state)
    for row in written["rows"]:  # every output the report names is there, whole
        with open_checkpoint(box.out / row["output"]) as reader:
            for name in reader.keys():
                reader.read(name)
    assert not list(box.out.rglob(".*.tmp-*"))

    again = run(command, box, timeout=120)  # and the state agrees: a third run has nothing left to do
    assert again.returncode == 0
    assert {(row["status"], row["this_run"]) for row in json.loads(again.stdout)["rows"]} == {("converted", "reused")}


def test_a_run_is_refused_while_another_holds_the_directory(zoo, tmp_path):
    """The refusal itself, deterministically: this test holds OUT's lock as a running zoo would."""
    box = Sandbox(tmp_path / "box").create()
    shutil.copy(zoo["keras_h5"], box.inp / "weights.h5")
    with open(box.out / ".ckptkit-zoo.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        refused = run(["ckpt-migrate", "zoo", str(box.inp), "--out", str(box.out), "--format", "json"], box, timeout=60)
    assert refused.returncode == 2 and len(refused.stderr_lines) == 1, refused.stderr
    assert re.match(BUSY, refused.stderr_lines[0]), refused.stderr_lines[0]
    assert sorted(p.name for p in box.out.iterdir()) == [".ckptkit-zoo.lock"]
