"""Every path a user may hold leads to the same checkpoint: no guessing the prefix."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from migrate import CheckpointNotFoundError, open_checkpoint


def _keys(path):
    with open_checkpoint(path) as reader:
        return reader.format, reader.keys()


@pytest.mark.parametrize("form", ["dir", "prefix", "index", "data", "meta", "state_file"])
def test_v2_path_forms(form, zoo):
    entry = zoo["mobilenet_v1_small"]
    path = {
        "dir": entry,
        "prefix": entry / "model.ckpt",
        "index": entry / "model.ckpt.index",
        "data": entry / "model.ckpt.data-00000-of-00001",
        "meta": entry / "model.ckpt.meta",
        "state_file": entry / "checkpoint",
    }[form]
    assert _keys(path) == _keys(entry)
    assert _keys(path)[0] == "tf1-v2"


def test_sharded_any_shard(zoo):
    entry = zoo["sharded"]
    shards = sorted(entry.glob("*.data-*"))
    assert len(shards) == 2
    assert _keys(shards[1]) == _keys(entry)


def test_v1_file_and_its_directory(zoo):
    v1 = zoo["vgg_16_v1"]
    assert _keys(v1)[0] == "tf1-v1"
    assert _keys(v1.parent) == _keys(v1)


@pytest.mark.parametrize("name,fmt", [("tf2_object", "tf2-object"), ("saved_model", "saved-model"), ("keras_h5", "keras-h5")])
def test_other_formats(name, fmt, zoo):
    assert _keys(zoo[name])[0] == fmt


def test_bert_release_directory_without_state_file(zoo):
    assert _keys(zoo["bert_tiny"])[0] == "tf1-v2"


def test_tf2_zoo_layout(zoo, tmp_path):
    """TF2 detection zoo tarballs hold checkpoint/ckpt-0.* beside pipeline.config."""
    shutil.copytree(zoo["tf2_object"], tmp_path / "checkpoint")
    (tmp_path / "pipeline.config").write_text("model {}\n")
    assert _keys(tmp_path) == _keys(zoo["tf2_object"])


def test_state_file_naming_another_machines_path(zoo, tmp_path):
    entry = shutil.copytree(zoo["mobilenet_v1_small"], tmp_path / "copy")
    (entry / "checkpoint").write_text('model_checkpoint_path: "/home/someone/train/model.ckpt"\n')
    assert _keys(entry) == _keys(zoo["mobilenet_v1_small"])


def test_missing_prefix(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no such file or directory, and no model.ckpt.index beside it"):
        open_checkpoint(tmp_path / "model.ckpt")


def test_saved_model_without_variables(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(CheckpointNotFoundError, match="SavedModel without variables/variables.index"):
        open_checkpoint(tmp_path)


class _PathLike:
    """An ``os.PathLike`` that is not a ``Path``, as other libraries hand out."""

    def __init__(self, path):
        self._path = str(path)

    def __fspath__(self):
        return self._path


@pytest.mark.parametrize("wrap", [str, _PathLike], ids=["str", "pathlike"])
def test_str_and_pathlike(wrap, tmp_path):
    from migrate import inspect, locate
    from migrate.formats import BundleWriter

    writer = BundleWriter(tmp_path / "model.ckpt")
    writer.add_array("w", np.arange(6, dtype=np.float32).reshape(2, 3))
    writer.close()
    for given in (tmp_path, tmp_path / "model.ckpt", tmp_path / "model.ckpt.index"):
        assert locate(wrap(given)).path == tmp_path / "model.ckpt"
        assert _keys(wrap(given)) == ("tf1-v2", ["w"])
        assert inspect(wrap(given)).totals.tensors == 1
