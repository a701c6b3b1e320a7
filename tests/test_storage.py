"""Checkpoints read from object storage (issue 14): ``s3://`` URLs through fsspec, never downloaded whole.

Everything runs against a moto S3 server on a free loopback port (``tests/_s3.py``), started by the ``s3``
fixture; nothing reaches the internet.  The command-line test passes its variables to a child process.

The checkpoints are the fixture zoo's, written by TensorFlow's own savers (this process never imports
TensorFlow), uploaded once; tests that damage one upload their own copy under a new key.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from _s3 import BUCKET, moto_s3, upload
from migrate import CheckpointFormatError, CheckpointNotFoundError, UnsupportedFeatureError, open_checkpoint

pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

READ_BACK = ["mobilenet_v1_small", "sharded", "tf2_object", "dtypes", "partitioned", "saved_model"]
REFUSED = ["vgg_16_v1", "keras_h5"]


@pytest.fixture(scope="module")
def s3(zoo, zoo_dir):
    """A moto S3 server holding the zoo entries under ``s3://ckpt/<name>/``; yields its environment."""
    with moto_s3({name: zoo_dir / name for name in READ_BACK + REFUSED}) as env:
        yield env


def _url(zoo, zoo_dir, name: str) -> str:
    """The URL of the path a user would pass for zoo entry ``name``."""
    return f"s3://{BUCKET}/{zoo[name].relative_to(zoo_dir).as_posix()}"


@pytest.mark.parametrize("name", READ_BACK)
def test_remote_reads_what_local_reads(s3, zoo, zoo_dir, name):
    url = _url(zoo, zoo_dir, name)
    with open_checkpoint(zoo[name]) as local, open_checkpoint(url) as remote:
        assert (remote.format, remote.keys(), remote.specs()) == (local.format, local.keys(), local.specs())
        assert [f.rsplit("/", 1)[1] for f in remote.files()] == [f.name for f in local.files()]
        assert all(isinstance(f, str) and f.startswith(f"s3://{BUCKET}/{name}/") for f in remote.files())
        for key in local.keys():
            mine, theirs = remote.read(key), local.read(key)
            assert (mine.dtype, mine.shape) == (theirs.dtype, theirs.shape), key
            if mine.dtype == object:
                assert list(mine.flat) == list(theirs.flat), key
            else:
                assert mine.tobytes() == theirs.tobytes(), key
        biggest = max((k for k in local.keys() if local.spec(k).dtype != "string"), key=lambda k: local.spec(k).nbytes)
        streamed = b"".join(c.tobytes() for c in remote.iter_chunks(biggest, chunk_bytes=1 << 16))  # several ranges
        assert streamed == local.read(biggest).tobytes()
        assert remote.verify() == []


@pytest.mark.parametrize("form", ["dir", "dir/", "prefix", "index", "data", "meta", "state_file"])
def test_every_path_form_finds_the_prefix(s3, zoo, zoo_dir, form):
    base = _url(zoo, zoo_dir, "mobilenet_v1_small")
    url = {"dir": base, "dir/": base + "/", "prefix": f"{base}/model.ckpt", "index": f"{base}/model.ckpt.index",
           "data": f"{base}/model.ckpt.data-00000-of-00001", "meta": f"{base}/model.ckpt.meta",
           "state_file": f"{base}/checkpoint"}[form]
    with open_checkpoint(url) as remote, open_checkpoint(zoo["mobilenet_v1_small"]) as local:
        assert str(remote.path) == f"{base}/model.ckpt"
        assert (remote.format, remote.keys()) == (local.format, local.keys())


def test_state_file_naming_another_machine_or_the_bucket(s3, zoo, tmp_path):
    for written in ("/home/someone/train/model.ckpt", f"s3://{BUCKET}/state_url/model.ckpt"):
        shutil.copytree(zoo["mobilenet_v1_small"], tmp_path / "d", dirs_exist_ok=True)
        (tmp_path / "d" / "checkpoint").write_text(f'model_checkpoint_path: "{written}"\n')
        key = "state_url" if "://" in written else "state_other_machine"
        with open_checkpoint(upload(tmp_path / "d", key)) as remote:
            assert str(remote.path) == f"s3://{BUCKET}/{key}/model.ckpt"


def test_missing_objects_are_clear_errors(s3, zoo, tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=r"s3://ckpt/nothing/model\.ckpt: no such file or directory"):
        open_checkpoint(f"s3://{BUCKET}/nothing/model.ckpt")
    with pytest.raises(CheckpointNotFoundError, match="directory holds no checkpoint"):
        open_checkpoint(f"s3://{BUCKET}")  # the bucket itself: folders, no checkpoint
    half = tmp_path / "half"
    shutil.copytree(zoo["sharded"], half)
    (half / "model.ckpt.data-00001-of-00002").unlink()
    missing = r"s3://ckpt/half/model\.ckpt\.data-00001-of-00002: data shard is missing"
    with pytest.raises(CheckpointFormatError, match=missing):
        open_checkpoint(upload(half, "half"))


def test_corrupt_shard_byte_is_reported_like_locally(s3, zoo, tmp_path):
    local = tmp_path / "corrupt"
    shutil.copytree(zoo["mobilenet_v1_small"], local)
    with open_checkpoint(local) as reader:
        name = max(reader.keys(), key=lambda k: reader.spec(k).nbytes)
        entry = reader.entry(name)
    shard = local / "model.ckpt.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[entry.offset + entry.size // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    url = upload(local, "corrupt")
    with open_checkpoint(local) as mine, open_checkpoint(url) as remote:
        expected = mine.verify()
        found = remote.verify()
    assert [p.name for p in found] == [p.name for p in expected] == [name]
    assert found[0].detail == expected[0].detail.replace(str(local), url)
    assert "fails its crc32c check" in found[0].detail


@pytest.mark.parametrize("name", REFUSED)
def test_other_formats_are_refused_with_one_line(s3, zoo, zoo_dir, name):
    refused = "remote sources of this format are not supported yet; download it first"
    with pytest.raises(UnsupportedFeatureError, match=refused):
        open_checkpoint(_url(zoo, zoo_dir, name))


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if fsspec were not installed
    with pytest.raises(UnsupportedFeatureError, match=r"reading s3:// sources needs `pip install ckptkit\[storage\]`"):
        open_checkpoint("s3://bucket/dir/model.ckpt")


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(UnsupportedFeatureError, match="nosuch:// is not a storage protocol fsspec knows"):
        open_checkpoint("nosuch://bucket/model.ckpt")


def test_file_urls_are_local_paths(zoo):
    with open_checkpoint(f"file://{zoo['sharded']}") as reader, open_checkpoint(zoo["sharded"]) as local:
        assert reader.files() == local.files()


class _ByteCounter:
    """Counts the bytes every S3 GetObject returns (ranged or not), at s3fs's one door to the API."""

    def __init__(self, monkeypatch):
        import s3fs

        self.total, self.requests = 0, 0
        original = s3fs.S3FileSystem._call_s3

        async def counting(fs, method, *args, **kwargs):
            response = await original(fs, method, *args, **kwargs)
            if method == "get_object":
                self.total += int(response["ContentLength"])
                self.requests += 1
            return response

        monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", counting)


def test_keys_read_only_the_index_never_the_shards(s3, zoo, zoo_dir, monkeypatch):
    local = zoo["mobilenet_v1_small"]
    index_bytes = (local / "model.ckpt.index").stat().st_size
    shard_bytes = (local / "model.ckpt.data-00000-of-00001").stat().st_size
    counter = _ByteCounter(monkeypatch)
    with open_checkpoint(_url(zoo, zoo_dir, "mobilenet_v1_small")) as remote:
        specs = remote.specs()
        listed = counter.total
        name = max((k for k in specs if specs[k].nbytes < shard_bytes / 4), key=lambda k: specs[k].nbytes)
        remote.read(name)
        one_tensor = counter.total - listed
    assert len(specs) > 50
    assert listed <= index_bytes + 1024  # the index (footer, index block, data blocks) and the state file
    assert listed < shard_bytes / 100
    assert one_tensor == specs[name].nbytes > 0  # a tensor costs its own bytes, not its shard's


def test_inspect_command_on_a_url(s3, zoo, zoo_dir):
    env = {**os.environ, **s3}

    def tensors(path: str) -> int:
        done = subprocess.run([sys.executable, "-m", "migrate.cli", "inspect", path, "--format", "json"],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    remote, local = tensors(_url(zoo, zoo_dir, "mobilenet_v1_small")), tensors(str(zoo["mobilenet_v1_small"]))
    assert remote["totals"] == local["totals"] and len(remote["tensors"]) == len(local["tensors"]) > 50
    assert remote["path"] == f"s3://{BUCKET}/mobilenet_v1_small"
    assert all(f.startswith("s3://") for f in remote["files"])


def test_inspect_stats_and_verify_on_a_url(s3, zoo, zoo_dir):
    from migrate import inspect

    remote = inspect(_url(zoo, zoo_dir, "sharded"), stats=True, verify=True)
    local = inspect(zoo["sharded"], stats=True, verify=True)
    assert remote.tensors == local.tensors
    np.testing.assert_equal(remote.totals, local.totals)


def test_convert_refuses_a_url_until_writers_stage_it(tmp_path):
    from migrate import convert

    with pytest.raises(UnsupportedFeatureError, match="convert does not take remote sources yet"):
        convert("s3://bucket/dir/model.ckpt", tmp_path / "out")
    assert not (tmp_path / "out").exists()
