"""A TF1 OD API SSD checkpoint converts whole into the TF2 OD API layout, restored with the OD API's idioms.

``convert --target auto`` of the fixture SSDs (TF1 zoo names, written by
TensorFlow's own saver) must give the keys the OD API's own model writes for
the same config (tests/data/odapi_tf2), every tensor equal to its TF1 source,
and restore with ``model_lib_v2.load_fine_tune_checkpoint``'s calls.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from migrate import convert, open_checkpoint
from migrate._odapi import ssd_fields
from migrate.models import odapi_ssd
from test_odapi_ssd import reference_keys

HEADS = ("box_encodings", "class_predictions_with_background")


@pytest.fixture(scope="module")
def converted(zoo, tmp_path_factory):
    out = {}
    for name in ("ssd_mobilenet_v1_small", "ssd_mobilenet_v2_small"):
        path = tmp_path_factory.mktemp(name) / "out"
        out[name] = (convert(zoo[name], path, target=_auto()), path)
    return out


def _auto():
    from migrate import TargetSpec

    return TargetSpec("auto")


def _prefix(path) -> str:
    import tensorflow as tf

    return tf.train.latest_checkpoint(str(path))


def _fields(zoo, name: str) -> dict:
    with open_checkpoint(zoo[name]) as reader:
        return ssd_fields(reader.specs())


def test_the_model_is_read_off_the_checkpoint(zoo):
    v2 = _fields(zoo, "ssd_mobilenet_v2_small")
    assert v2 == {"feature_extractor": "ssd_mobilenet_v2_keras", "depth_multiplier": 1.0, "use_depthwise": True,
                  "box_predictor_kernel_size": 3, "box_predictor_depthwise": False,
                  "anchors_per_location": [3, 6, 6, 6, 6, 6], "num_classes": 3}
    v1 = _fields(zoo, "ssd_mobilenet_v1_small")
    assert (v1["feature_extractor"], v1["depth_multiplier"], v1["use_depthwise"], v1["box_predictor_kernel_size"]) \
        == ("ssd_mobilenet_v1_keras", 0.5, False, 1)
    with open_checkpoint(zoo["mobilenet_v1_small"]) as reader:
        assert ssd_fields(reader.specs()) == {}  # a classifier is not an SSD


def test_keys_equal_the_od_api_models_entry_for_entry(converted):
    """v2 fixture = the TF1 zoo's ssd_mobilenet_v2 (depthwise extras, 3x3 predictors) with 3 classes."""
    import tensorflow as tf

    report, path = converted["ssd_mobilenet_v2_small"]
    assert report.mode == "module:migrate.models:odapi_ssd" and report.mapping.complete
    got = {name: tuple(shape) for name, shape in tf.train.list_variables(_prefix(path))}
    expected = reference_keys("ssd_mobilenet_v2_coco.keras.fe_depthwise_kernel3")
    assert set(got) == set(expected)
    for key, shape in expected.items():
        if "class_predictions_with_background" in key:  # 91 class slots per anchor there, 4 here
            shape = shape[:-1] + (shape[-1] // 91 * 4,)
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH":
            assert got[key] == shape, key
    v1_report, v1_path = converted["ssd_mobilenet_v1_small"]
    v1_keys = {name for name, _ in tf.train.list_variables(_prefix(v1_path))}
    assert v1_keys == set(reference_keys("ssd_mobilenet_v1_coco_2018_01_28.keras"))


@pytest.mark.parametrize("name", ["ssd_mobilenet_v1_small", "ssd_mobilenet_v2_small"])
def test_the_od_api_fine_tune_loader_restores_every_type(converted, zoo, name):
    """``load_fine_tune_checkpoint``: ``Checkpoint(**restore_map).restore(p).expect_partial()
    .assert_existing_objects_matched()``, with the OD API's maps for ``detection`` and ``full``."""
    import tensorflow as tf

    _, path = converted[name]
    prefix = _prefix(path)
    fields = _fields(zoo, name)
    detector = odapi_ssd(**fields)
    detection = tf.train.Checkpoint(model=tf.train.Checkpoint(_feature_extractor=detector._feature_extractor))
    detection.restore(prefix).expect_partial().assert_existing_objects_matched()
    full = odapi_ssd(**fields)
    tf.train.Checkpoint(model=full).restore(prefix).expect_partial().assert_existing_objects_matched()
    tf.train.Checkpoint(model=odapi_ssd(**fields)).restore(prefix).assert_consumed()  # nothing extra either
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=odapi_ssd(**fields)), str(path), max_to_keep=1)
    assert manager.latest_checkpoint == prefix
    # every restored tensor is its TF1 source: the backbone, an extra layer, a head
    with open_checkpoint(zoo[name]) as reader:
        sources = _probe_sources(reader, fields)
        for variable, source in zip(_probe_variables(full, fields), sources):
            np.testing.assert_array_equal(variable.numpy(), reader.read(source))


def _probe_sources(reader, fields) -> list[str]:
    net = "MobilenetV1" if fields["feature_extractor"].endswith("v1_keras") else "MobilenetV2"
    first = "Conv2d_0" if net == "MobilenetV1" else "Conv"
    extra = next(n for n in sorted(reader.keys()) if "_2_Conv2d_5_3x3_s2_" in n and n.endswith("/weights"))
    return [f"FeatureExtractor/{net}/{first}/weights", extra, "BoxPredictor_5/ClassPredictor/weights"]


def _probe_variables(model, fields):
    backbone = model._feature_extractor.classification_backbone
    generator = getattr(model._feature_extractor, "feature_map_generator", None) or \
        model._feature_extractor._feature_map_generator
    return [backbone.layers[1].kernel, [layer for layer in generator.convolutions[5] if hasattr(layer, "kernel")][-1]
            .kernel, model._box_predictor._prediction_heads[HEADS[1]][5]._class_predictor_layers[-1].kernel]


def test_restore_detection_leaves_the_box_predictor_to_its_initial_values(zoo, tmp_path):
    import tensorflow as tf

    from migrate import TargetSpec

    report = convert(zoo["ssd_mobilenet_v2_small"], tmp_path / "det", target=TargetSpec("auto"), restore="detection")
    dropped = report.mapping.dropped
    assert dropped["BoxPredictor_0/ClassPredictor/weights"] == "--restore detection leaves the head out"
    assert not any(name.startswith("FeatureExtractor/") for name in dropped)
    reader = tf.train.load_checkpoint(str(tmp_path / "det"))
    with open_checkpoint(zoo["ssd_mobilenet_v2_small"]) as source:
        extra = "FeatureExtractor/MobilenetV2/layer_19_2_Conv2d_5_3x3_s2_128_depthwise/depthwise_weights"
        key = ("model/_feature_extractor/feature_map_generator/convolutions/5/3/depthwise_kernel/.ATTRIBUTES/"
               "VARIABLE_VALUE")
        np.testing.assert_array_equal(reader.get_tensor(key), source.read(extra))
        head = ("model/_box_predictor/_prediction_heads/class_predictions_with_background/0/_class_predictor_layers/"
                "0/kernel/.ATTRIBUTES/VARIABLE_VALUE")
        assert not np.array_equal(reader.get_tensor(head), source.read("BoxPredictor_0/ClassPredictor/weights"))


def test_the_report_names_the_target_and_the_backbone_target_still_converts_alone(zoo, tmp_path, converted):
    from migrate import TargetSpec

    report, path = converted["ssd_mobilenet_v2_small"]
    data = json.loads((path / "conversion.json").read_text())
    assert (data["mode"], data["mapping"]["target"], data["mapping"]["rule_set"]) == \
        ("module:migrate.models:odapi_ssd", "module:migrate.models:odapi_ssd", "od_ssd_mobilenet")
    backbone = convert(zoo["ssd_mobilenet_v2_small"], tmp_path / "backbone", target=TargetSpec("keras:MobileNetV2"))
    reasons = set(backbone.mapping.dropped.values())
    assert "SSD box predictor: not part of the MobileNet backbone" in reasons and backbone.mapping.complete
    # what `--target auto` wrote before (the backbone alone, keyed model/layer_with_weights-N) fails the
    # OD API's detection idiom: the check above can fail
    import tensorflow as tf

    fe = odapi_ssd(**_fields(zoo, "ssd_mobilenet_v2_small"))._feature_extractor
    status = tf.train.Checkpoint(model=tf.train.Checkpoint(_feature_extractor=fe)).restore(
        _prefix(tmp_path / "backbone"))
    with pytest.raises(AssertionError, match="not bound to checkpointed values"):
        status.expect_partial().assert_existing_objects_matched()


# ----------------------------------------------------------------- the TF2 pipeline.config beside it
MODEL_FIELDS = ("model.ssd.feature_extractor.type", "model.ssd.feature_extractor.use_depthwise",
                "model.ssd.feature_extractor.depth_multiplier",
                "model.ssd.box_predictor.convolutional_box_predictor.kernel_size",
                "train_config.fine_tune_checkpoint_version", "train_config.fine_tune_checkpoint_type")


def _field(message, path: str):
    from migrate._odapi_config import _value

    return _value(message, path, None)


def test_the_tf2_config_describes_the_checkpoint_as_the_od_api_twin_does(converted):
    """The fields that shape the model equal the reference TF2 config built for the TF1 zoo's ssd_mobilenet_v2."""
    from migrate.textproto import parse_file
    from test_odapi_ssd import REFERENCE

    report, path = converted["ssd_mobilenet_v2_small"]
    written = parse_file(path / "pipeline.config")
    reference = parse_file(REFERENCE / "ssd_mobilenet_v2_coco.keras.fe_depthwise_kernel3.pipeline.config")
    assert {f: _field(written, f) for f in MODEL_FIELDS} == {f: _field(reference, f) for f in MODEL_FIELDS}
    assert _field(written, "model.ssd.num_classes") == 3
    assert _field(written, "train_config.fine_tune_checkpoint") == str(path.resolve() / "ckpt-0")
    assert _field(written, "train_config.from_detection_checkpoint") is None
    config = report.pipeline_config
    assert config.errors == () and config.path == str(path.resolve() / "pipeline.config")
    assert any(c.startswith("model.ssd.feature_extractor.use_depthwise: unset -> true") for c in config.changes)
    assert any(c.startswith("train_config.from_detection_checkpoint: true -> removed") for c in config.changes)
    assert "TF2 pipeline.config" in (path / "conversion.md").read_text()


def test_a_config_that_contradicts_the_checkpoint_is_an_error_naming_both(zoo, tmp_path, capsys):
    import shutil

    from migrate.cli import main
    from migrate.textproto import parse_file

    source = tmp_path / "ssd"
    shutil.copytree(zoo["ssd_mobilenet_v2_small"], source)
    config = source / "pipeline.config"
    config.write_text(config.read_text().replace("kernel_size: 3", "kernel_size: 1"))
    assert main(["convert", str(source), "--out", str(tmp_path / "out"), "--target", "auto", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "kernel_size is 1, but the checkpoint's box predictor kernels say 3" in err
    assert f"{config}:" in err  # file:line:col of the contradicting field
    written = parse_file(tmp_path / "out" / "pipeline.config")  # the written config builds what is restored
    assert _field(written, "model.ssd.box_predictor.convolutional_box_predictor.kernel_size") == 3


def test_restore_classification_writes_what_the_classification_type_reads(zoo, tmp_path):
    """``classification``: ``Checkpoint(feature_extractor=classification_backbone)``; keys
    ``feature_extractor/layer_with_weights-N/...``, the reference's backbone keys under that root."""
    import tensorflow as tf

    from migrate import TargetSpec
    from migrate.textproto import parse_file

    out = tmp_path / "cls"
    report = convert(zoo["ssd_mobilenet_v2_small"], out, target=TargetSpec("auto"), restore="classification")
    keys = {name for name, _ in tf.train.list_variables(_prefix(out))}
    backbone = "model/_feature_extractor/classification_backbone/"
    expected = {"feature_extractor/" + k[len(backbone):] for k in
                reference_keys("ssd_mobilenet_v2_coco.keras.fe_depthwise_kernel3") if k.startswith(backbone)}
    assert len(expected) == 260 and keys == expected | {"save_counter/.ATTRIBUTES/VARIABLE_VALUE",
                                                        "_CHECKPOINTABLE_OBJECT_GRAPH"}
    fresh = odapi_ssd(**_fields(zoo, "ssd_mobilenet_v2_small"))
    status = tf.train.Checkpoint(feature_extractor=fresh._feature_extractor.classification_backbone).restore(
        _prefix(out))
    status.expect_partial().assert_existing_objects_matched()
    status.assert_consumed()
    assert _field(parse_file(out / "pipeline.config"), "train_config.fine_tune_checkpoint_type") == "classification"
    assert report.pipeline_config.errors == ()


def test_without_a_config_beside_it_the_config_is_made_from_the_checkpoint(zoo, tmp_path):
    """A bare TF1 checkpoint (no pipeline.config): the written config still builds the checkpoint's model."""
    import shutil

    from migrate._odapi_config import model_fields
    from migrate.textproto import parse_file
    from test_odapi_ssd import REFERENCE

    source = tmp_path / "bare"
    shutil.copytree(zoo["ssd_mobilenet_v2_small"], source, ignore=shutil.ignore_patterns("pipeline.config"))
    report = convert(source, tmp_path / "out", target=_auto())
    assert report.pipeline_config.source == "" and report.pipeline_config.errors == ()
    written = parse_file(tmp_path / "out" / "pipeline.config")
    assert model_fields(written) == _fields(zoo, "ssd_mobilenet_v2_small")
    reference = parse_file(REFERENCE / "ssd_mobilenet_v2_coco.keras.fe_depthwise_kernel3.pipeline.config")
    assert {f: _field(written, f) for f in MODEL_FIELDS} == {f: _field(reference, f) for f in MODEL_FIELDS}
    assert "no pipeline.config beside the checkpoint" in (tmp_path / "out" / "pipeline.config").read_text()


@pytest.mark.parametrize("name", ["ssd_mobilenet_v1_small", "ssd_mobilenet_v2_small"])
def test_the_translated_config_builds_the_checkpoints_model(converted, zoo, name):
    from migrate._odapi_config import model_fields
    from migrate.textproto import parse_file

    _, path = converted[name]
    assert model_fields(parse_file(path / "pipeline.config")) == _fields(zoo, name)


def test_inspect_recognises_the_tf2_od_api_layout(converted):
    from migrate import inspect

    _, path = converted["ssd_mobilenet_v2_small"]
    assert inspect(path).architecture.name == "od2/ssd_keras"


def test_classes_re_heads_the_class_predictor_and_keeps_the_rest(zoo, tmp_path):
    """``--classes 5`` on a 3-class SSD: the class heads start from initial values for 6 slots per anchor
    (background kept); backbone, extra layers and box encoding heads keep the checkpoint's values."""
    import tensorflow as tf

    from migrate import TargetSpec
    from migrate.textproto import parse_file

    out = tmp_path / "five"
    report = convert(zoo["ssd_mobilenet_v2_small"], out, target=TargetSpec("auto", classes=5))
    assert report.mapping.complete
    reheaded = {n for n, why in report.mapping.dropped.items() if why.startswith("--classes 5: the head is re-init")}
    assert reheaded == {f"BoxPredictor_{i}/ClassPredictor/{w}" for i in range(6) for w in ("weights", "biases")}
    fields = {**_fields(zoo, "ssd_mobilenet_v2_small"), "num_classes": 5}
    model = odapi_ssd(**fields)
    tf.train.Checkpoint(model=model).restore(_prefix(out)).assert_consumed()
    heads = model._box_predictor._prediction_heads
    assert tuple(heads[HEADS[1]][0]._class_predictor_layers[-1].kernel.shape) == (3, 3, 576, 3 * 6)
    with open_checkpoint(zoo["ssd_mobilenet_v2_small"]) as source:
        np.testing.assert_array_equal(heads[HEADS[0]][2]._box_encoder_layers[-1].kernel.numpy(),
                                      source.read("BoxPredictor_2/BoxEncodingPredictor/weights"))
    assert _field(parse_file(out / "pipeline.config"), "model.ssd.num_classes") == 5
    assert any(c.startswith("model.ssd.num_classes: 3 -> 5 (--classes 5") for c in report.pipeline_config.changes)


def test_only_the_object_layout_gets_a_pipeline_config(zoo, tmp_path):
    """The OD API's loader reads object-based checkpoints keyed model/...: a config pointing at weights.h5
    or at a save_weights checkpoint would send its users to a file it cannot restore."""
    from migrate import TargetSpec

    for layout in ("h5", "weights"):
        report = convert(zoo["ssd_mobilenet_v2_small"], tmp_path / layout, target=TargetSpec("auto"), layout=layout)
        assert report.pipeline_config is None and not (tmp_path / layout / "pipeline.config").exists()


def test_a_broken_config_beside_the_checkpoint_is_one_line_and_no_output(zoo, tmp_path, capsys):
    import shutil

    from migrate.cli import main

    source = tmp_path / "ssd"
    shutil.copytree(zoo["ssd_mobilenet_v2_small"], source)
    (source / "pipeline.config").write_text("model { ssd { num_classes: 3\n")
    assert main(["convert", str(source), "--out", str(tmp_path / "out"), "--target", "auto", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{source / 'pipeline.config'}:2:1:" in err[0] and "move it away" in err[0]
    assert not (tmp_path / "out").exists()
