"""ckptkit's TF2 OD API SSD writes the keys the OD API's own model writes, entry for entry.

The reference listings (tests/data/odapi_tf2) were saved from models built by
the OD API's ``model_builder``; each case here builds ckptkit's model for the
same pipeline.config fields and saves it with TensorFlow's own
``tf.train.Checkpoint(model=m).save()``.
"""
from __future__ import annotations

import pytest

from conftest import DATA
from migrate.models import SSDSpec, odapi_ssd

REFERENCE = DATA / "odapi_tf2"
# reference NAME -> the model.ssd fields of its pipeline.config that shape variables
CASES = {
    "ssd_mobilenet_v1_coco_2018_01_28.keras": dict(feature_extractor="ssd_mobilenet_v1_keras"),
    "ssd_mobilenet_v2_coco.keras.sample_config": dict(),
    "ssd_mobilenet_v2_coco.keras.fe_depthwise": dict(use_depthwise=True),
    "ssd_mobilenet_v2_coco.keras.fe_depthwise_kernel3": dict(use_depthwise=True, box_predictor_kernel_size=3),
    "ssdlite_mobilenet_v2_coco.keras": dict(use_depthwise=True, box_predictor_kernel_size=3,
                                            box_predictor_depthwise=True),
}


def reference_keys(name: str) -> dict[str, tuple[int, ...]]:
    keys = {}
    for line in (REFERENCE / f"{name}.keys.tsv").read_text().splitlines()[1:]:
        key, shape, _ = line.split("\t")
        keys[key] = tuple(int(d) for d in shape.split(",")) if shape else ()
    return keys


def saved_keys(model, tmp_path) -> tuple[str, dict[str, tuple[int, ...]]]:
    import tensorflow as tf

    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    return path, {name: tuple(shape) for name, shape in tf.train.list_variables(path)}


def _config_says(name: str, field: str) -> bool:
    text = (REFERENCE / f"{name}.pipeline.config").read_text()
    return f"{field}: true" in text


@pytest.mark.parametrize("name", CASES)
def test_keys_and_shapes_equal_the_od_api_models(name, tmp_path):
    fields = CASES[name]
    # the case describes its config: depthwise extra layers and heads as the file says
    assert fields.get("use_depthwise", False) == _config_says(name, "use_depthwise")
    model = odapi_ssd(**fields)
    _, keys = saved_keys(model, tmp_path)
    expected = reference_keys(name)
    assert set(keys) == set(expected), (sorted(set(keys) - set(expected))[:5], sorted(set(expected) - set(keys))[:5])
    wrong = {k: (keys[k], expected[k]) for k in expected
             if k != "_CHECKPOINTABLE_OBJECT_GRAPH" and keys[k] != expected[k]}
    assert not wrong, list(wrong.items())[:5]


def test_raw_outputs_have_the_od_api_shapes():
    import numpy as np

    model = odapi_ssd(num_classes=3, use_depthwise=True, box_predictor_kernel_size=3)
    out = model(np.zeros((2, 300, 300, 3), np.float32))
    assert tuple(out["box_encodings"].shape) == (2, 1917, 4)
    assert tuple(out["class_predictions_with_background"].shape) == (2, 1917, 4)
    assert [tuple(t.shape) for t in out["per_feature_map"]["box_encodings"]] == \
        [(2, 19 * 19 * 3, 4), (2, 10 * 10 * 6, 4), (2, 5 * 5 * 6, 4), (2, 3 * 3 * 6, 4), (2, 2 * 2 * 6, 4),
         (2, 1 * 1 * 6, 4)]


def test_the_od_api_restore_idioms_bind_every_variable(tmp_path):
    """What ``model_lib_v2.load_fine_tune_checkpoint`` does, per checkpoint type, into a fresh model."""
    import tensorflow as tf

    path, _ = saved_keys(odapi_ssd(num_classes=3, use_depthwise=True, box_predictor_kernel_size=3), tmp_path)
    fresh = odapi_ssd(num_classes=3, use_depthwise=True, box_predictor_kernel_size=3)
    detection = tf.train.Checkpoint(model=tf.train.Checkpoint(_feature_extractor=fresh._feature_extractor))
    detection.restore(path).expect_partial().assert_existing_objects_matched()
    tf.train.Checkpoint(model=fresh).restore(path).assert_consumed()
    # and a checkpoint of another model does not pass for this one: 90 classes against 3
    other, _ = saved_keys(odapi_ssd(num_classes=90, use_depthwise=True, box_predictor_kernel_size=3),
                          tmp_path / "other")
    with pytest.raises((AssertionError, ValueError)):
        tf.train.Checkpoint(model=odapi_ssd(num_classes=3, use_depthwise=True, box_predictor_kernel_size=3)) \
            .restore(other).assert_consumed()


def test_an_unsupported_extractor_is_named():
    with pytest.raises(ValueError, match="ssd_resnet50_v1_fpn_keras.*supported: ssd_mobilenet_v1_keras"):
        odapi_ssd("ssd_resnet50_v1_fpn_keras")
    assert SSDSpec(depth_multiplier=0.5).depth(512) == 256 and SSDSpec(depth_multiplier=0.01).depth(512) == 16


def test_the_sample_config_model_has_the_real_tf2_zoo_checkpoints_keys(tmp_path):
    """ssd_mobilenet_v2_320x320_coco17_tpu-8/checkpoint/ckpt-0, the TF2 zoo's own file: 326 entries."""
    from conftest import LISTINGS

    listing = LISTINGS / "tf2_ssd_mobilenet_v2_320x320_coco17_tpu-8_ckpt-0.tsv"
    real = {}
    for line in listing.read_text().splitlines()[1:]:
        key, shape, _ = line.split("\t")
        real[key] = tuple(int(d) for d in shape.split(",")) if shape else ()
    _, keys = saved_keys(odapi_ssd(image_size=320), tmp_path)
    assert len(real) == 326 and set(keys) == set(real)
    assert all(keys[k] == real[k] for k in real if k != "_CHECKPOINTABLE_OBJECT_GRAPH")
