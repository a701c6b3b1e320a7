"""``ckpt-migrate zoo`` over a zoo on object storage (issue 14): the same rows as the local run, outputs that
read back, reruns that reuse, and a changed object converted again.  The zoo lives on a moto S3 server
(``tests/_s3.py``); the worker processes reach it through the environment they inherit."""
from __future__ import annotations

import json
import shutil

import pytest

from _s3 import moto_s3, upload
from migrate import open_checkpoint, run_zoo

pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

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
    out = tmp_path / "out"
    run_zoo("s3://ckpt/zoo", out, jobs=1, quiet=True)
    again = run_zoo("s3://ckpt/zoo", out, jobs=1, quiet=True)
    assert {row.this_run for row in again.rows} == {"reused"}
    changed = tmp_path / "changed"
    shutil.copytree(local_zoo / "sharded", changed)
    data = sorted(changed.glob("*.data-*"))[0]
    raw = data.read_bytes()
    data.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))  # one byte of a tensor differs: a new ETag
    upload(changed, "zoo/sharded")
    third = {row.source: row for row in run_zoo("s3://ckpt/zoo", out, jobs=1, quiet=True).rows}
    assert third["sharded"].this_run == "failed" and "crc32c" in third["sharded"].reason  # the new bytes were read
    assert {row.this_run for name, row in third.items() if name != "sharded"} == {"reused"}
