"""``ckpt-migrate zoo``: a mixed zoo with broken entries converts unattended, resumes, and stays inside OUT_DIR."""
from __future__ import annotations

import dataclasses
import io
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
from migrate._zoo._discover import discover
from migrate._zoo._paths import inside, output_names
from migrate._zoo._run import _plan
from migrate._zoo._state import STATE, ZooState, fingerprint
from reports import diff_reports, load_report, render


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
    vgg = rows["vgg_16.ckpt"]  # narrower than Keras' fixed-width VGG16: the same net at its own widths
    assert (vgg.status, vgg.target, vgg.parity_verdict) == ("converted", "module:migrate.models:slim_vgg", "passed")
    assert rows["misc/unknown_arch"].status == "converted" and rows["misc/unknown_arch"].target == "generic"
    ssd = rows["detection/ssd_mobilenet_v1_coco_2018_01_28"]  # the whole detector, in the TF2 OD API's layout
    assert ssd.status == "converted" and ssd.target == "module:migrate.models:odapi_ssd"
    assert ssd.parity_verdict == "inconclusive" and not ssd.parity_passed  # untrained: its outputs are constant
    assert report.totals == {**report.totals, "checkpoints": 7, "failed": 1, "converted": 6}
    assert vgg.cpu_seconds > 0.1  # building and running both VGGs for parity: the worker's own CPU time
    for row in rows.values():
        if row.status == "converted":  # every output verifies and stays inside OUT
            path = inside(out, row.output)
            with open_checkpoint(path) as reader:
                for key in reader.keys():
                    reader.read(key)
    assert json.loads((out / "zoo-report.json").read_text())["totals"]["failed"] == 1
    assert not list(out.rglob(".*.tmp-*"))
    # the parent's forecast of the entries that build a model (their workers then start with TensorFlow loaded)
    # is the workers' own choice
    items, fresh = discover(mixed_zoo), tmp_path / "fresh"
    fresh.mkdir()
    _, _, hints = _plan(items, output_names([i.rel for i in items]), ZooState(fresh))
    converted = {r.source for r in report.rows if r.status == "converted"}
    assert hints.models & converted == {r for r in converted if rows[r].target != "generic"} != set()


def test_every_zoo_output_restores_with_the_clients_idiom(mixed_zoo, tmp_path, tf):
    """Issue 11 on the zoo's own outputs: Checkpoint(model=m).restore(p).assert_consumed() and the OD API's loader
    (classification for a Keras backbone, detection for the SSD's whole detector); a generic one through a
    mirror of its object graph."""
    from test_convert_generic import restore_mirror

    from migrate._plan import plan_model
    from migrate._select import SelectOptions
    from migrate._targets import TargetSpec

    out = tmp_path / "out"
    report = run_zoo(mixed_zoo, out, jobs=1, quiet=True)
    converted = [r for r in report.rows if r.status == "converted"]
    assert {r.target for r in converted} == {"generic", "keras:MobileNet", "module:migrate.models:odapi_ssd",
                                             "module:migrate.models:slim_vgg"}
    for row in converted:
        path = tf.train.latest_checkpoint(str(inside(out, row.output)))
        if row.target == "generic":
            restore_mirror(tf, inside(out, row.output))
            continue
        with open_checkpoint(mixed_zoo / row.source) as reader:
            first, second = (plan_model(reader, TargetSpec("auto"), None, "full", SelectOptions()).model
                             for _ in range(2))
        if row.target != "module:migrate.models:odapi_ssd":  # the OD API's classification idiom (the alias)
            status = tf.train.Checkpoint(feature_extractor=first).restore(path)
        else:  # the OD API's `detection` loader
            status = tf.train.Checkpoint(model=tf.train.Checkpoint(_feature_extractor=first._feature_extractor)) \
                .restore(path)
        status.expect_partial().assert_existing_objects_matched()
        tf.train.Checkpoint(model=second).restore(path).assert_consumed()


def test_rerun_keeps_converted_and_retries_failed(mixed_zoo, tmp_path):
    out = tmp_path / "out"
    run_zoo(mixed_zoo, out, jobs=2)
    (mixed_zoo / "misc" / "unknown_arch" / "model.ckpt.index").touch()  # changed fingerprint -> redo
    report = run_zoo(mixed_zoo, out, jobs=2)
    rows = _rows(report)
    ssd = rows["detection/ssd_mobilenet_v1_coco_2018_01_28"]
    assert (ssd.status, ssd.this_run) == ("converted", "reused")
    assert (rows["misc/unknown_arch"].status, rows["misc/unknown_arch"].this_run) == ("converted", "converted")
    assert (rows["broken/truncated"].status, rows["broken/truncated"].this_run) == ("failed", "failed")  # retried


def test_killed_run_resumes(mixed_zoo, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "migrate.cli", "zoo", str(mixed_zoo), "--out", str(out), "--jobs", "1", "--format", "json"]
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
    assert all((rows[k].status, rows[k].this_run) == ("converted", "reused") for k in finished)
    assert sum(r.this_run == "converted" for r in rows.values()) + len(finished) == 6
    assert report.totals["converted"] == 6 and report.reused == len(finished)
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


# -- reruns report the zoo, not only what the run did -------------------------------------------------------------

@pytest.fixture
def small_zoo(zoo, tmp_path) -> Path:
    """Three generic conversions (no TensorFlow model needed) and one entry whose data file is cut short."""
    root = tmp_path / "small"
    root.mkdir()
    shutil.copy(zoo["keras_h5"], root / "weights.h5")
    shutil.copytree(zoo["partitioned"], root / "partitioned")
    shutil.copytree(zoo["partitioned_parts"], root / "parts")
    broken = shutil.copytree(zoo["partitioned"], root / "broken")
    os.truncate(broken / "model.ckpt.data-00000-of-00001", 1000)
    return root


def test_rerun_report_keeps_earlier_statuses_and_times(small_zoo, zoo, tmp_path):
    out = tmp_path / "out"
    first = run_zoo(small_zoo, out, jobs=2)
    assert {r.source: (r.status, r.this_run) for r in first.rows} == {
        "weights.h5": ("converted", "converted"), "partitioned": ("converted", "converted"),
        "parts": ("converted", "converted"), "broken": ("failed", "failed")}
    assert all(r.finished.endswith("+00:00") for r in first.rows) and first.reused == 0

    summary = io.StringIO()
    second = run_zoo(small_zoo, out, jobs=2, stream=summary)
    was, now = _rows(first), _rows(second)
    for source in ("weights.h5", "partitioned", "parts"):  # everything as the first run left it, marked reused
        assert now[source].this_run == "reused"
        assert dataclasses.replace(now[source], this_run="converted") == was[source]
    assert now["broken"].this_run == "failed" and now["broken"].finished >= was["broken"].finished  # retried
    assert second.totals == first.totals and second.reused == 3
    assert "3 unchanged (reused from earlier runs)" in summary.getvalue()
    assert load_report(out / "zoo-report.json") == second

    diff = diff_reports(first, second)
    assert not diff.of("status") + diff.of("new failure") + diff.of("fixed") + diff.of("mapping")
    assert (diff.totals_before["reused"], diff.totals_after["reused"]) == (0, 3)
    text = render(second, "markdown")
    assert "converted: 3   failed: 1   reused from earlier runs: 3" in text
    assert f"reused (finished {was['parts'].finished[:10]}" in text
    assert "reused" in render(second, "html")

    shutil.copy(zoo["partitioned"] / "model.ckpt.data-00000-of-00001", small_zoo / "broken")  # repaired
    third = run_zoo(small_zoo, out, jobs=1)
    fixed = _rows(third)["broken"]
    assert (fixed.status, fixed.this_run, fixed.output) == ("converted", "converted", "broken")
    assert third.totals["converted"] == 4 and third.totals["failed"] == 0 and third.reused == 3
    assert _rows(third)["parts"].finished == was["parts"].finished
    assert [c.key for c in diff_reports(second, third).of("fixed")] == ["broken"]


def test_state_without_finish_times_is_reused(small_zoo, tmp_path, monkeypatch):
    """A state file written before finish times were recorded: its rows are reused, their time unknown."""
    import migrate._zoo._run as zoo_run

    (small_zoo / "broken").rename(tmp_path / "broken")
    out = tmp_path / "out"
    out.mkdir()
    items = {}
    for rel in ("weights.h5", "partitioned", "parts"):
        with open_checkpoint(small_zoo / rel) as reader:
            print_ = fingerprint(reader.files())
        items[rel] = {"fingerprint": print_, "row": {"source": rel, "output": rel, "status": "converted",
                                                     "format": "tf1-v2", "seconds": 1.5}}
    (out / STATE).write_text(json.dumps({"version": 1, "items": items}))
    bars = []
    real = zoo_run.progress
    monkeypatch.setattr(zoo_run, "progress", lambda *a, **k: bars.append((a, k)) or real(*a, **k))

    report = run_zoo(small_zoo, out, jobs=1, quiet=True, stream=io.StringIO())
    got = [(r.status, r.this_run, r.finished, r.seconds) for r in report.rows]
    assert got == [("converted", "reused", None, 1.5)] * 3
    assert bars == [((3, "zoo", "ckpt", True), {"initial": 3})]  # quiet reaches the bar; all three already done
    assert "reused (finished at an unknown time)" in render(report, "text")


def test_older_zoo_report_loads_with_defaults(tmp_path):
    """A zoo-report.json from before finish times: "skipped" meant converted by an earlier run."""
    old = {"kind": "zoo", "source": "/zoo", "output": "/out", "jobs": 2, "seconds": 3.0,
           "totals": {"checkpoints": 2, "converted": 1, "failed": 0, "skipped": 1, "bytes": 0, "parameters": 0},
           "by_architecture": {}, "by_failure": {},
           "rows": [{"source": "a", "output": "a", "status": "converted", "seconds": 1.0},
                    {"source": "b", "output": "b", "status": "skipped", "seconds": 2.0}]}
    path = tmp_path / "zoo-report.json"
    path.write_text(json.dumps(old))
    report = load_report(path)
    a, b = report.rows
    assert (a.status, a.this_run, a.finished) == ("converted", None, None)
    assert (b.status, b.this_run, b.finished) == ("converted", "reused", None)
    assert report.totals == {"checkpoints": 2, "converted": 2, "failed": 0, "bytes": 0, "parameters": 0}
    assert report.reused == 1
    assert "reused (finished at an unknown time)" in render(report, "text") and render(report, "html")


def test_a_model_target_that_does_not_fit_falls_back_to_generic_and_says_why(zoo, tmp_path):
    """inception_v3_small is narrower than keras:InceptionV3 and has no width-matched target: generic."""
    root = tmp_path / "zoo"
    shutil.copytree(zoo["inception_v3_small"], root / "inception_v3")
    report = run_zoo(root, tmp_path / "out", jobs=1, quiet=True)
    row = report.rows[0]
    assert (row.status, row.target) == ("converted", "generic")
    assert row.fallback.startswith("keras:InceptionV3 did not fit:") and "shape mismatches" in row.fallback
    assert "generic (keras:InceptionV3 did not fit" in render(report, "markdown")
