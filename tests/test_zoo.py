"""``ckpt-migrate zoo``: a mixed zoo with broken entries converts unattended, resumes, and stays inside OUT_DIR."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate import open_checkpoint
from migrate._zoo import run_zoo
from migrate._zoo._paths import inside, output_names
from migrate._zoo._state import STATE


@pytest.fixture
def mixed_zoo(zoo, tmp_path) -> Path:
    """Tarball layouts, a V1 file, an .h5, an unknown architecture, a truncated shard, hostile names."""
    root = tmp_path / "zoo"
    (root / "detection").mkdir(parents=True)
    shutil.copytree(zoo["ssd_mobilenet_v1_small"], root / "detection" / "ssd_mobilenet_v1_coco_2018_01_28")
    shutil.copytree(zoo["mobilenet_v1_rmsprop_ema"], root / "my models" / "mobilenet ünïcode")
    shutil.copy(zoo["vgg_16_v1"], root / "vgg_16.ckpt")
    shutil.copy(zoo["keras_h5"], root / "..weights.h5")
    shutil.copytree(zoo["partitioned"], root / "misc" / "unknown_arch")
    broken = shutil.copytree(zoo["resnet_v1_50_small"], root / "broken" / "truncated")
    os.truncate(broken / "model.ckpt.data-00000-of-00001", 1000)
    shutil.copytree(zoo["tf2_object"], root / "tf2" / "checkpoint")
    return root


def _rows(report):
    return {r.source: r for r in report.rows}


def test_mixed_zoo_completes_and_reports_failures(mixed_zoo, tmp_path):
    out = tmp_path / "out"
    report = run_zoo(mixed_zoo, out, jobs=2)
    rows = _rows(report)
    assert len(rows) == 7
    assert rows["broken/truncated"].status == "failed"
    assert "needs bytes up to" in rows["broken/truncated"].reason
    assert rows["vgg_16.ckpt"].status == "failed" and rows["vgg_16.ckpt"].mismatched > 0  # narrow fixture widths
    assert rows["misc/unknown_arch"].status == "converted" and rows["misc/unknown_arch"].target == "generic"
    ssd = rows["detection/ssd_mobilenet_v1_coco_2018_01_28"]
    assert ssd.status == "converted" and ssd.target == "keras:MobileNet" and ssd.parity_passed
    assert report.totals == {**report.totals, "checkpoints": 7, "failed": 2, "converted": 5}
    for row in rows.values():
        if row.status == "converted":  # every output verifies and stays inside OUT
            path = inside(out, row.output)
            with open_checkpoint(path) as reader:
                for key in reader.keys():
                    reader.read(key)
    assert json.loads((out / "zoo-report.json").read_text())["totals"]["failed"] == 2
    assert not list(out.rglob(".*.tmp-*"))


def test_rerun_skips_unchanged_and_retries_failed(mixed_zoo, tmp_path):
    out = tmp_path / "out"
    run_zoo(mixed_zoo, out, jobs=2)
    (mixed_zoo / "misc" / "unknown_arch" / "model.ckpt.index").touch()  # changed fingerprint -> redo
    report = run_zoo(mixed_zoo, out, jobs=2)
    rows = _rows(report)
    assert rows["detection/ssd_mobilenet_v1_coco_2018_01_28"].status == "skipped"
    assert rows["misc/unknown_arch"].status == "converted"
    assert rows["broken/truncated"].status == "failed"  # retried, still broken


def test_killed_run_resumes(mixed_zoo, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "migrate.cli", "zoo", str(mixed_zoo), str(out), "--jobs", "1", "--report", "json"]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = out / STATE
        if state.exists() and sum(r["row"]["status"] == "converted" for r in json.loads(state.read_text())["items"].values()) >= 1:
            break
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGKILL)  # the runner and its workers, mid-run
    child.wait()
    finished = {k for k, v in json.loads((out / STATE).read_text())["items"].items() if v["row"]["status"] == "converted"}
    assert finished
    report = run_zoo(mixed_zoo, out, jobs=2)
    rows = _rows(report)
    assert all(rows[k].status == "skipped" for k in finished)
    assert sum(r.status == "converted" for r in rows.values()) + len(finished) == 5
    assert not list(out.rglob(".*.tmp-*"))


def test_output_names_never_leave_out_dir(tmp_path):
    names = output_names(["../../etc/passwd", "a b/c", "a_b/c", "ünï/ḉödé", "/abs/path", "..", "x/./y", "x/../../z"])
    for name in names.values():
        assert inside(tmp_path, name).is_relative_to(tmp_path.resolve())
        assert ".." not in Path(name).parts and not Path(name).is_absolute()
    assert names["a b/c"] != names["a_b/c"]  # a collision gets a hash suffix
    assert names["ünï/ḉödé"] == "ünï/ḉödé"


def test_second_run_on_same_output_is_refused(mixed_zoo, tmp_path):
    from migrate._zoo._state import ZooBusyError, ZooLock

    out = tmp_path / "out"
    out.mkdir()
    with ZooLock(out):
        with pytest.raises(ZooBusyError, match="another zoo run .* is writing here"):
            run_zoo(mixed_zoo, out, jobs=1)


def test_manifest_replaces_discovery(mixed_zoo, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("source,target,options\nmy models/mobilenet ünïcode,generic,\n"
                        "detection/ssd_mobilenet_v1_coco_2018_01_28,,restore=backbone;parity=0\n")
    report = run_zoo(mixed_zoo, tmp_path / "out", jobs=1, manifest=manifest)
    rows = _rows(report)
    assert list(rows) == ["my models/mobilenet ünïcode", "detection/ssd_mobilenet_v1_coco_2018_01_28"]
    assert rows["my models/mobilenet ünïcode"].target == "generic"
    assert rows["detection/ssd_mobilenet_v1_coco_2018_01_28"].parity_passed is None


def test_output_inside_zoo_is_refused(mixed_zoo):
    from migrate import CkptkitError

    with pytest.raises(CkptkitError, match="inside the zoo directory"):
        run_zoo(mixed_zoo, mixed_zoo / "out", jobs=1)
