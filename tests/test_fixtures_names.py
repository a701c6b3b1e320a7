"""The fixture zoo carries the variable names (and layout) of the real files it imitates.

References are listings of real zoo checkpoints (fixtures/_data/zoo_listings).
Entries come from the session's zoo (tests/conftest.py), which rebuilds any
cache written by a different version of the generator.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fixtures

from conftest import LISTINGS
TF2_ENTRIES = ("tf2_object", "tf2_object_legacy_adam", "keras_h5", "keras_h5_full", "saved_model")
TF1_ENTRIES = tuple(n for n in fixtures.NAMES if n not in TF2_ENTRIES)
NOT_ZOO_LAYOUT = ("vgg_16_v1", "bert_tiny", "sharded")
ZOO_STATE = 'model_checkpoint_path: "model.ckpt"\nall_model_checkpoint_paths: "model.ckpt"\n'


@pytest.fixture(scope="session")
def fixture_dir(zoo_dir) -> Path:
    """The session's zoo (conftest); a cache built by other generator code is rebuilt."""
    return zoo_dir


def _tf():
    from migrate._tf import tensorflow

    return tensorflow()


def _reader(path: Path):
    """A checkpoint reader, also for a directory without a ``checkpoint`` file."""
    if path.is_dir() and not (path / "checkpoint").exists():
        (index,) = path.glob("*.index")
        path = index.with_suffix("")
    return _tf().train.load_checkpoint(str(path))


def variables(fixture_dir: Path, name: str) -> dict[str, tuple]:
    """name -> shape of every tensor in the entry ``name``."""
    reader = _reader(fixtures.entry_path(fixture_dir, name))
    return {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}


def reference(listing: str) -> dict[str, tuple]:
    """name -> shape from a real zoo listing (name<TAB>shape<TAB>dtype)."""
    rows = (line.split("\t") for line in (LISTINGS / f"{listing}.tsv").read_text().splitlines()
            if line and not line.startswith("#"))
    return {row[0]: tuple(int(d) for d in row[1].split(",") if d) for row in rows}


def under(names, prefix: str, strip: bool = True) -> set[str]:
    return {n[len(prefix) if strip else 0:] for n in names if n.startswith(prefix)}


@pytest.mark.parametrize("name", [n for n in TF1_ENTRIES if n not in NOT_ZOO_LAYOUT])
def test_tf1_entries_have_the_zoo_tarball_layout(fixture_dir, name):
    entry = fixture_dir / name
    assert (entry / "checkpoint").read_text() == ZOO_STATE
    for suffix in ("index", "data-00000-of-00001", "meta"):
        assert (entry / f"model.ckpt.{suffix}").is_file()


@pytest.mark.parametrize("name", TF1_ENTRIES)
def test_global_step_is_int64_except_in_the_bert_release(fixture_dir, name):
    reader = _reader(fixtures.entry_path(fixture_dir, name))
    dtypes = reader.get_variable_to_dtype_map()
    if name == "bert_tiny":
        assert "global_step" not in dtypes
    else:
        assert dtypes["global_step"].name == "int64"


@pytest.mark.parametrize("name", ["vgg_16_small", "vgg_16_v1"])
def test_vgg_16_names_equal_the_2016_zoo_file(fixture_dir, name):
    ours, ref = variables(fixture_dir, name), reference("vgg_16_2016_08_28")
    assert set(ours) == set(ref)
    assert {k: len(s) for k, s in ours.items()} == {k: len(s) for k, s in ref.items()}


def test_vgg_16_v1_is_a_single_v1_file(fixture_dir):
    path = fixtures.entry_path(fixture_dir, "vgg_16_v1")
    assert path.name == "vgg_16.ckpt" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["vgg_16.ckpt"]


def test_vgg_19_adds_a_fourth_conv_to_blocks_3_to_5(fixture_dir):
    expected = {n.replace("vgg_16", "vgg_19") for n in reference("vgg_16_2016_08_28")}
    expected |= {f"vgg_19/conv{b}/conv{b}_4/{v}" for b in (3, 4, 5) for v in ("weights", "biases")}
    assert set(variables(fixture_dir, "vgg_19_small")) == expected


def test_ssd_mobilenet_v2_names_equal_the_2018_zoo_file(fixture_dir):
    ours, ref = variables(fixture_dir, "ssd_mobilenet_v2_small"), reference(
        "ssd_mobilenet_v2_coco_2018_03_29")
    model = {n for n in ours if n.startswith(("FeatureExtractor/", "BoxPredictor_"))}
    assert model <= set(ref)
    assert set(ours) == set(ref)


def test_ssd_mobilenet_v1_has_the_zoo_files_200_entries(fixture_dir):
    ours = variables(fixture_dir, "ssd_mobilenet_v1_small")
    base = "FeatureExtractor/MobilenetV1/Conv2d_13_pointwise"
    depths = zip(range(2, 6), (256, 128, 128, 64))  # the OD API's depth_fn at the fixture's 0.5: 512 * 0.5, ...
    extras = [f"{base}_{j}_Conv2d_{i}_" + (f"1x1_{max(d // 2, 16)}" if j == 1 else f"3x3_s2_{d}")
              for i, d in depths for j in (1, 2)]
    assert all(f"{layer}/weights" in ours for layer in extras)
    assert len(ours) == 200  # as ssd_mobilenet_v1_coco_2018_01_28's index
    assert not [n for n in ours if "ExponentialMovingAverage" in n or "RMSProp" in n]


@pytest.mark.parametrize("name", ["ssd_mobilenet_v1_small", "ssd_mobilenet_v2_small"])
def test_ssd_class_heads_match_pipeline_config(fixture_dir, name):
    config = (fixture_dir / name / "pipeline.config").read_text()
    num_classes = int(re.search(r"num_classes: (\d+)", config).group(1))
    ours = variables(fixture_dir, name)
    for i, anchors in enumerate((3, 6, 6, 6, 6, 6)):
        assert ours[f"BoxPredictor_{i}/BoxEncodingPredictor/biases"] == (anchors * 4,)
        assert ours[f"BoxPredictor_{i}/ClassPredictor/biases"] == (anchors * (num_classes + 1),)


def test_faster_rcnn_names_equal_the_2018_zoo_file(fixture_dir):
    ours = variables(fixture_dir, "faster_rcnn_resnet50_small")
    ref = reference("faster_rcnn_resnet50_coco_2018_01_28")
    assert set(ours) == set(ref)
    assert {k: len(s) for k, s in ours.items()} == {k: len(s) for k, s in ref.items()}


def test_resnet_v1_50_blocks_match_faster_rcnns_first_stage(fixture_dir):
    ours = variables(fixture_dir, "resnet_v1_50_small")
    first_stage = under(reference("faster_rcnn_resnet50_coco_2018_01_28"),
                        "FirstStageFeatureExtractor/")
    assert under(ours, "resnet_v1_50/block", strip=False) == under(
        first_stage, "resnet_v1_50/block", strip=False)
    assert set(ours) - first_stage == {"global_step", "resnet_v1_50/mean_rgb",
                                       "resnet_v1_50/logits/weights", "resnet_v1_50/logits/biases"}
    assert ours["resnet_v1_50/logits/biases"] == (1000,)


def test_resnet_v2_50_has_a_momentum_slot_per_trainable_variable(fixture_dir):
    ours = variables(fixture_dir, "resnet_v2_50_small")
    slots = {n[: -len("/Momentum")] for n in ours if n.endswith("/Momentum")}
    trainable = {n for n in ours if n != "global_step" and "moving_" not in n} - {
        f"{s}/Momentum" for s in slots}
    assert slots == trainable
    assert ours["resnet_v2_50/logits/biases"] == (1001,)
    assert "resnet_v2_50/postnorm/gamma" in ours


def test_inception_v3_names(fixture_dir):
    ours = variables(fixture_dir, "inception_v3_small")
    for name in ("InceptionV3/Conv2d_1a_3x3/weights",
                 "InceptionV3/Mixed_5b/Branch_1/Conv2d_0a_1x1/weights",
                 "InceptionV3/Mixed_7c/Branch_3/Conv2d_0b_1x1/BatchNorm/moving_variance",
                 "InceptionV3/AuxLogits/Conv2d_2b_1x1/biases"):
        assert name in ours
    assert ours["InceptionV3/Logits/Conv2d_1c_1x1/biases"] == (1001,)


def test_mobilenet_v2_backbone_equals_ssd_v2s_feature_extractor(fixture_dir):
    ours = variables(fixture_dir, "mobilenet_v2_small")
    ref = under(reference("ssd_mobilenet_v2_coco_2018_03_29"), "FeatureExtractor/")
    ref_backbone = {n for n in ref if not n.startswith("MobilenetV2/layer_19")}
    ours_backbone = {n for n in ours if not n.endswith("ExponentialMovingAverage")
                     and not n.startswith("MobilenetV2/Logits") and n != "global_step"}
    assert ours_backbone == ref_backbone
    assert {f"{n}/ExponentialMovingAverage" for n in ours_backbone} <= set(ours)


def test_mobilenet_v1_backbone_equals_ssd_v1s_feature_extractor(fixture_dir):
    ours = variables(fixture_dir, "mobilenet_v1_small")
    ssd = under(variables(fixture_dir, "ssd_mobilenet_v1_small"), "FeatureExtractor/")
    assert {n for n in ours if n.startswith("MobilenetV1/Conv2d_")} == {
        n for n in ssd if re.match(r"MobilenetV1/Conv2d_\d+(_depthwise|_pointwise)?/", n)}
    assert "MobilenetV1/Conv2d_13_pointwise/BatchNorm/gamma" in ours
    assert ours["MobilenetV1/Logits/Conv2d_1c_1x1/biases"] == (1001,)


def test_mobilenet_v1_rmsprop_ema_slots(fixture_dir):
    ours = set(variables(fixture_dir, "mobilenet_v1_rmsprop_ema"))
    model = {n for n in ours if n.startswith("MobilenetV1/") and not n.endswith(
        ("/ExponentialMovingAverage", "/RMSProp", "/RMSProp_1"))}
    trainable = {n for n in model if "moving_" not in n}
    assert {f"{n}/ExponentialMovingAverage" for n in model} <= ours
    assert {f"{n}/{s}" for n in trainable for s in ("RMSProp", "RMSProp_1")} <= ours
    assert not [n for n in ours if "moving_" in n and "RMSProp" in n]


def _bert_names() -> set[str]:
    layer = ["attention/self/query", "attention/self/key", "attention/self/value",
             "attention/output/dense", "intermediate/dense", "output/dense"]
    names = {f"bert/encoder/layer_{i}/{d}/{v}" for i in range(2) for d in layer
             for v in ("kernel", "bias")}
    names |= {f"{s}/LayerNorm/{v}" for v in ("beta", "gamma") for s in (
        "bert/embeddings", "cls/predictions/transform",
        *(f"bert/encoder/layer_{i}/{p}" for i in range(2) for p in ("attention/output", "output")))}
    names |= {f"bert/embeddings/{e}_embeddings" for e in ("word", "token_type", "position")}
    names |= {f"{d}/{v}" for d in ("bert/pooler/dense", "cls/predictions/transform/dense")
              for v in ("kernel", "bias")}
    return names | {"cls/predictions/output_bias", "cls/seq_relationship/output_weights",
                    "cls/seq_relationship/output_bias"}


def test_bert_tiny_names_and_release_layout(fixture_dir):
    assert set(variables(fixture_dir, "bert_tiny")) == _bert_names()
    files = {p.name for p in (fixture_dir / "bert_tiny").iterdir()}
    assert files == {"bert_config.json", "vocab.txt", "bert_model.ckpt.index",
                     "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.meta"}


def test_bert_tiny_adam_slots(fixture_dir):
    expected = {f"{n}/{s}" for n in _bert_names() for s in ("Adam", "Adam_1")}
    expected |= _bert_names() | {"beta1_power", "beta2_power", "global_step"}
    assert set(variables(fixture_dir, "bert_tiny_adam")) == expected


def test_partitioned_variable_is_one_entry_and_parts_are_three(fixture_dir):
    assert variables(fixture_dir, "partitioned")["embedding/weights"] == (64, 16)
    parts = variables(fixture_dir, "partitioned_parts")
    shapes = [parts[f"embedding/weights/part_{i}"] for i in range(3)]
    assert shapes == [(22, 16), (21, 16), (21, 16)]
    whole = _reader(fixture_dir / "partitioned").get_tensor("embedding/weights")
    split = _reader(fixture_dir / "partitioned_parts")
    np.testing.assert_array_equal(
        whole, np.concatenate([split.get_tensor(f"embedding/weights/part_{i}") for i in range(3)]))


def test_sharded_has_two_data_files(fixture_dir):
    files = sorted(p.name for p in (fixture_dir / "sharded").glob("model.ckpt.data-*"))
    assert files == ["model.ckpt.data-00000-of-00002", "model.ckpt.data-00001-of-00002"]
    assert len(variables(fixture_dir, "sharded")) == 5


def test_dtypes_entry_holds_every_dtype(fixture_dir):
    dtypes = _reader(fixture_dir / "dtypes").get_variable_to_dtype_map()
    got = {k.split("/")[-1]: v.name for k, v in dtypes.items() if k.startswith("dtypes/")}
    assert got == {d: d for d in ("float32", "float64", "float16", "bfloat16", "int32", "int64",
                                  "int8", "uint8", "bool", "string")} | {
        "scalar": "float32", "empty": "float32"}


@pytest.mark.parametrize("name, slot", [
    ("tf2_object", "optimizer/_variables/1/"),
    ("tf2_object_legacy_adam", "/.OPTIMIZER_SLOT/optimizer/m/"),
])
def test_tf2_object_checkpoint_keys(fixture_dir, name, slot):
    ours = variables(fixture_dir, name)
    assert {"_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE"} <= set(ours)
    assert any(slot in n for n in ours)
    assert (fixture_dir / name / "ckpt-1.index").is_file()


def test_keras_and_saved_model_files(fixture_dir):
    h5py = pytest.importorskip("h5py")
    with h5py.File(fixtures.entry_path(fixture_dir, "keras_h5"), "r") as f:
        assert "conv/conv/kernel:0" in f and "logits/logits/bias:0" in f
    with h5py.File(fixtures.entry_path(fixture_dir, "keras_h5_full"), "r") as f:
        assert "model_weights" in f and "optimizer_weights" in f
    saved = fixtures.entry_path(fixture_dir, "saved_model")
    assert (saved / "saved_model.pb").is_file()
    assert (saved / "variables" / "variables.index").is_file()


def test_rebuilding_skips_complete_entries(fixture_dir):
    stamp = (fixture_dir / "dtypes" / "model.ckpt.index").stat().st_mtime_ns
    assert fixtures.build(fixture_dir, names=["dtypes"]) == {"dtypes": fixture_dir / "dtypes"}
    assert (fixture_dir / "dtypes" / "model.ckpt.index").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("name", ["vgg_16_v1", "bert_tiny_adam", "dtypes"])
def test_rebuilt_values_are_identical(fixture_dir, tmp_path, name):
    fixtures.build(tmp_path, names=[name])
    first, again = _reader(fixtures.entry_path(fixture_dir, name)), _reader(
        fixtures.entry_path(tmp_path, name))
    for key in first.get_variable_to_shape_map():
        np.testing.assert_array_equal(first.get_tensor(key), again.get_tensor(key), err_msg=key)


def test_unknown_names_are_all_reported():
    with pytest.raises(fixtures.UnknownFixtureError, match=r"'nope', 'nada'.*Known: resnet"):
        fixtures.build("/nonexistent-never-created", names=["nope", "vgg_16_small", "nada"])


@pytest.mark.slow
def test_full_vgg_16_equals_the_2016_zoo_file_including_shapes(tmp_path):
    fixtures.build(tmp_path, names=["vgg_16"])
    assert variables(tmp_path, "vgg_16") == reference("vgg_16_2016_08_28")


def test_a_cache_built_by_other_code_is_rebuilt_also_where_not_named(tmp_path):
    """A generator change rebuilds what is asked for now and drops the rest, so that asking later rebuilds
    it instead of handing out what the old code made."""
    fixtures.build(tmp_path, names=["dtypes", "bert_tiny_adam"])
    (tmp_path / ".generator-source").write_text("other code")
    marker = tmp_path / "dtypes" / "stale"
    marker.write_text("")
    fixtures.build(tmp_path, names=["dtypes"])
    assert not marker.exists() and (tmp_path / "dtypes" / "model.ckpt.index").is_file()
    assert not (tmp_path / "bert_tiny_adam").exists()
    assert (tmp_path / ".generator-source").read_text() != "other code"


def test_demo_and_command_line_modules_do_not_invalidate_the_cache():
    from fixtures import _build

    assert {"_demo.py", "_demo_pipeline.py", "__main__.py"} <= _build.NOT_GENERATORS
    assert all((Path(fixtures.__file__).parent / name).is_file() for name in _build.NOT_GENERATORS)
