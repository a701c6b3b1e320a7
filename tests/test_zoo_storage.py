"""``ckpt-migrate zoo`` over a zoo on object storage (issue 14): the same rows as the local run, outputs that
read back, reruns that reuse, and a changed object converted again; outputs, state and reports on the store,
entries replaced so that they never read half old, and the lock object that keeps two runs apart.  The zoo
lives on a moto S3 server (``tests/_s3.py``); the worker processes reach it through the environment they
inherit."""
from __future__ import annotations

import json
import posixpath
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _s3 import moto_s3, upload
from migrate import open_checkpoint, run_zoo
from migrate._formats._storage import RemotePath, location
from migrate._zoo import _store
from migrate._zoo._remote import SCRATCH
from migrate._zoo._state import LOCK, STATE, ZooBusyError, ZooState
from migrate._zoo._store import StoreLock, is_marker, publish

pytest.importorskip("moto.server")
pytest.importorskip("s3fs")
fsspec = pytest.importorskip("fsspec")

REPO = Path(__file__).resolve().parent.parent

ENTRIES = ["mobilenet_v1_small", "tf2_object", "sharded", "saved_model"]  # one model target, three generic
TIMINGS = ("seconds", "cpu_seconds", "finished")


@pytest.fixture(scope="module")
def local_zoo(zoo, zoo_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo") / "zoo"
    for name in ENTRIES:
        shutil.copytree(zoo_dir / name, root / name)
    return root


@pytest.fixture(scope="module")
def s3_zoo(local_zoo):
    with moto_s3({"zoo": local_zoo}) as env:
        yield env


def _rows(out) -> dict:
    report = json.loads((out / "zoo-report.json").read_text())
    return {row["source"]: {k: v for k, v in row.items() if k not in TIMINGS} for row in report["rows"]}


def test_a_zoo_on_object_storage_converts_as_the_local_one(s3_zoo, local_zoo, tmp_path):
    run_zoo(local_zoo, tmp_path / "local", jobs=1, quiet=True)
    report = run_zoo("s3://ckpt/zoo", tmp_path / "remote", jobs=1, quiet=True)
    assert report.source == "s3://ckpt/zoo"
    remote = _rows(tmp_path / "remote")
    assert remote == _rows(tmp_path / "local") and set(remote) == set(ENTRIES)
    assert remote["mobilenet_v1_small"]["target"] == "keras:MobileNet"
    assert all(row["status"] == "converted" for row in remote.values())
    for name in ENTRIES:  # the outputs are whole: every tensor reads back
        with open_checkpoint(tmp_path / "remote" / name) as reader:
            for key in reader.keys():
                reader.read(key)
    assert not list((tmp_path / "remote").rglob(".*.tmp-*"))  # the local copies for the writers are gone


def test_a_rerun_reuses_and_a_changed_object_is_converted_again(s3_zoo, local_zoo, tmp_path):
    out = "s3://ckpt/rerun-out"
    run_zoo("s3://ckpt/zoo", out, jobs=1, quiet=True)
    again = run_zoo("s3://ckpt/zoo", out, jobs=1, quiet=True)
    assert {row.this_run for row in again.rows} == {"reused"}
    changed = tmp_path / "changed"
    shutil.copytree(local_zoo / "sharded", changed)
    data = sorted(changed.glob("*.data-*"))[0]
    raw = data.read_bytes()
    data.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))  # one byte of a tensor differs: a new ETag
    upload(changed, "zoo/sharded")
    try:
        third = {row.source: row for row in run_zoo("s3://ckpt/zoo", out, jobs=1, quiet=True).rows}
    finally:
        upload(local_zoo / "sharded", "zoo/sharded")  # the other tests' zoo
    assert third["sharded"].this_run == "failed" and "crc32c" in third["sharded"].reason  # the new bytes were read
    assert third["sharded"].reason.startswith(f"{out}/sharded/")  # named by its URL, not by the local folder
    assert {row.this_run for name, row in third.items() if name != "sharded"} == {"reused"}


def _remote_rows(url: str) -> dict:
    report = json.loads(fsspec.filesystem("s3").cat_file(f"{url}/zoo-report.json"))
    return {row["source"]: {k: v for k, v in row.items() if k not in TIMINGS} for row in report["rows"]}


def _files(fs, root: str) -> set[str]:
    return {posixpath.relpath(p, root) for p in fs.find(root)}


def test_outputs_on_object_storage_are_uploaded_whole_with_the_state_and_reports(s3_zoo, local_zoo, tmp_path,
                                                                                  monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the workers' local folders
    run_zoo(local_zoo, tmp_path / "local", jobs=1, quiet=True)
    report = run_zoo("s3://ckpt/zoo", "s3://ckpt/out", jobs=1, quiet=True)
    assert report.output == "s3://ckpt/out" and {row.status for row in report.rows} == {"converted"}
    assert _remote_rows("s3://ckpt/out") == _rows(tmp_path / "local")
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    for name in ENTRIES:  # the same files as the local run's, and every tensor reads back equal
        local = tmp_path / "local" / name
        assert _files(fs, f"ckpt/out/{name}") == {p.relative_to(local).as_posix() for p in local.rglob("*")
                                                 if p.is_file()}
        with open_checkpoint(f"s3://ckpt/out/{name}") as remote, open_checkpoint(local) as here:
            assert remote.keys() == here.keys()
            for key in here.keys():
                np.testing.assert_array_equal(remote.read(key), here.read(key))
    top = _files(fs, "ckpt/out") - {p for p in _files(fs, "ckpt/out") if "/" in p}
    assert top == {"zoo-report.json", "zoo-report.md", "zoo-report.html", STATE}  # the lock is gone
    assert not list(scratch.glob(f"{SCRATCH}*"))  # the workers' local folders are removed
    again = run_zoo("s3://ckpt/zoo", "s3://ckpt/out", jobs=1, quiet=True)  # the state is read from the store
    assert {row.this_run for row in again.rows} == {"reused"}


def test_the_cli_writes_to_object_storage(s3_zoo, tmp_path):
    done = subprocess.run([sys.executable, "-m", "migrate.cli", "zoo", "s3://ckpt/zoo/sharded", "--out",
                           "s3://ckpt/cli-out", "--jobs", "1", "--quiet", "--format", "json"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == "s3://ckpt/cli-out"
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    assert fs.isfile("ckpt/cli-out/sharded/checkpoint") and fs.isfile("ckpt/cli-out/zoo-report.json")


def test_a_second_run_on_the_same_store_folder_is_refused_until_the_lock_is_stale(s3_zoo, monkeypatch):
    out = location("s3://ckpt/locked")
    with StoreLock(out) as lock:
        with pytest.raises(ZooBusyError, match="another zoo run .*pid"):
            StoreLock(out).__enter__()
        with pytest.raises(ZooBusyError, match="another zoo run"):
            run_zoo("s3://ckpt/zoo", "s3://ckpt/locked", jobs=1, quiet=True)
        lock.check()
    assert not out.fs.exists(f"{out.path}/{LOCK}")  # released
    _write_lock(out, renewed=time.time() - _store.STALE_SECONDS - 1)  # a killed run's
    with StoreLock(out) as lock:
        assert json.loads(out.fs.cat_file(f"{out.path}/{LOCK}"))["holder"] == lock.holder



def test_on_a_store_without_conditional_writes_the_lock_still_refuses_a_second_run():
    out = RemotePath(fsspec.filesystem("memory"), "/lock-test/out")
    with StoreLock(out):
        with pytest.raises(ZooBusyError, match="another zoo run"):
            StoreLock(out).__enter__()
    assert not out.fs.exists(f"{out.path}/{LOCK}")

def test_a_run_whose_lock_was_taken_over_stops_recording(s3_zoo, monkeypatch):
    monkeypatch.setattr(_store, "HEARTBEAT_SECONDS", 0.05)
    out = location("s3://ckpt/taken")
    with StoreLock(out) as lock:
        _write_lock(out, renewed=time.time(), holder="the other run")  # as a takeover does
        deadline = time.time() + 20
        while lock._lost is None and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(ZooBusyError, match="lost its lock to the other run"):
            ZooState(out, guard=lock.check).record("x", "print", {"status": "converted"})
    assert out.fs.exists(f"{out.path}/{LOCK}")  # the other run's lock stays


def _write_lock(out, renewed: float, holder: str = "a killed run") -> None:
    out.fs.pipe_file(f"{out.path}/{LOCK}", json.dumps({"holder": holder, "renewed": renewed}).encode())
    out.fs.invalidate_cache()


def test_publish_replaces_an_entry_so_that_it_never_reads_half_old(tmp_path, monkeypatch):
    fs = fsspec.filesystem("memory")
    remote = RemotePath(fs, "/publish-test/entry")
    old = _folder(tmp_path / "old", ["checkpoint", "ckpt-1.index", "ckpt-1.data-00000-of-00001", "old.json"])
    publish(old, remote)
    new = _folder(tmp_path / "new", ["checkpoint", "ckpt-2.index", "ckpt-2.data-00000-of-00001", "sub/more.txt"])
    calls = []
    monkeypatch.setattr(fs, "put_file", _recording(fs.put_file, "put", calls))
    monkeypatch.setattr(fs, "rm", _recording(fs.rm, "rm", calls))
    publish(new, remote)
    assert _files(fs, remote.path) == {"checkpoint", "ckpt-2.index", "ckpt-2.data-00000-of-00001", "sub/more.txt"}
    assert fs.cat_file(f"{remote.path}/checkpoint") == b"new checkpoint"
    kinds = [(op, is_marker(posixpath.basename(path))) for op, path in calls]
    assert kinds[0] == ("rm", True)  # the old markers go first: the entry reads as absent
    assert kinds.index(("put", True)) > max(i for i, kind in enumerate(kinds) if kind != ("put", True))
    fs.rm(remote.path, recursive=True)


def _folder(root, names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{root.name} {name}")
    return root


def _recording(method, op, calls):
    def recorded(*args, **kwargs):
        paths = args[1] if op == "put" else args[0]
        calls.extend((op, path) for path in ([paths] if isinstance(paths, str) else paths))
        return method(*args, **kwargs)
    return recorded



def test_ray_tasks_read_and_write_object_storage_themselves(s3_zoo, local_zoo, tmp_path):
    """What a multi-node cluster needs: each task reads its source from the store and uploads its output."""
    ray = pytest.importorskip("ray")
    run_zoo(local_zoo, tmp_path / "local", jobs=2, quiet=True)
    report = run_zoo("s3://ckpt/zoo", "s3://ckpt/ray-out", jobs=2, quiet=True, engine="ray")
    assert not ray.is_initialized() and report.engine == "ray"
    assert _remote_rows("s3://ckpt/ray-out") == _rows(tmp_path / "local")
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    assert all(fs.isfile(f"ckpt/ray-out/{name}/checkpoint") for name in ENTRIES)


def test_a_killed_workers_local_folder_is_removed_by_the_next_and_a_live_ones_is_kept(tmp_path, monkeypatch):
    import fcntl
    import os
    import tempfile

    from migrate._zoo._remote import local_output, remove_orphans

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    remove_orphans.cache_clear()  # once per process: this test stands for a worker's first entry
    killed, live = tmp_path / f"{SCRATCH}killed", tmp_path / f"{SCRATCH}live"
    for folder in (killed, live):
        (folder / "entry").mkdir(parents=True)
    held = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        with local_output("memory://orphans-test/out/entry") as written:
            Path(written).mkdir()
            (Path(written) / "checkpoint").write_text("x")
    finally:
        os.close(held)
    assert not killed.exists() and live.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]  # this worker's own folder is gone too
    fsspec.filesystem("memory").rm("/orphans-test", recursive=True)
