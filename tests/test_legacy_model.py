"""mobilenet_v1_shapes_legacy: a slim MobileNet v1 trained in TF1 graph mode keeps its accuracy through conversion.

The entry is built (once, then cached) by the session's zoo; see
fixtures/_legacy_model.py.  Accuracies are on classify_shapes' val split:
the one recorded by the builder (TF1 graph, is_training=False, EMA weights),
the saved checkpoint re-evaluated the way slim's eval_image_classifier.py
did, and the converted tf_keras MobileNet.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import fixtures
from migrate import inspect, open_checkpoint
from migrate._convert import convert
from migrate._select import SelectOptions
from migrate._targets import TargetSpec

NAME = "mobilenet_v1_shapes_legacy"
DATA = "classify_shapes"
SIZE = 128


@pytest.fixture(scope="module")
def built(zoo_dir) -> dict:
    return fixtures.build(zoo_dir, names=[NAME, DATA])


@pytest.fixture(scope="module")
def legacy(built):
    return built[NAME]


@pytest.fixture(scope="module")
def training(legacy) -> dict:
    return json.loads((legacy / "training.json").read_text())


@pytest.fixture(scope="module")
def val_split(built):
    """classify_shapes' val split through finetune.data: (images in [-1, 1], label-map ids)."""
    from finetune.data import classification_dataset

    data = classification_dataset(built[DATA] / "val.record", built[DATA] / "label_map.pbtxt",
                                  batch_size=50, image_size=SIZE, drop_remainder=False)
    batches = list(data.dataset_for_epoch())
    return (np.concatenate([b["image"].numpy() for b in batches]),
            np.concatenate([b["label"].numpy() for b in batches]))


@pytest.fixture(scope="module")
def converted(legacy, tmp_path_factory):
    out = tmp_path_factory.mktemp("legacy") / "keras"
    report = convert(legacy, out, target=TargetSpec("auto"), options=SelectOptions(use_ema=True), parity=True)
    return report, out


def test_inspects_as_slim_mobilenet_v1_with_rmsprop_slots_and_ema_shadows(legacy, training):
    report = inspect(legacy)
    assert report.architecture.name == "slim/mobilenet_v1"
    by_role = {}
    for t in report.tensors:
        by_role.setdefault(t.role, set()).add(t.name)
    weights = by_role["parameter"]
    averaged = weights | by_role["normalization_statistic"]
    assert by_role["optimizer_slot"] == {f"{w}/RMSProp{s}" for w in weights for s in ("", "_1")}
    assert {t.optimizer for t in report.tensors if t.role == "optimizer_slot"} == {"RMSProp"}
    assert by_role["moving_average"] == {f"{v}/ExponentialMovingAverage" for v in averaged}
    assert by_role["counter"] == {"global_step"}
    assert {f.code for f in report.findings} >= {"optimizer-slots", "ema-shadows"}
    shapes = {t.name: t.shape for t in report.tensors}
    assert shapes["MobilenetV1/Conv2d_0/weights"] == (3, 3, 3, 16)  # depth multiplier 0.5
    assert shapes["MobilenetV1/Logits/Conv2d_1c_1x1/weights"] == (1, 1, 512, training["num_classes"])
    with open_checkpoint(legacy) as reader:
        assert int(reader.read("global_step")) == training["steps"]
        name = "MobilenetV1/Conv2d_13_pointwise/weights"
        assert not np.array_equal(reader.read(name), reader.read(name + "/ExponentialMovingAverage"))


def test_recorded_val_accuracy_is_well_above_chance(training):
    val = training["val"]
    assert val["examples"] == 100 and 0.33 <= val["chance_accuracy"] <= 0.34
    assert val["accuracy"] > 0.8
    assert training["optimizer"]["name"] == "RMSProp" and training["steps"] * training["batch_size"] >= 3 * 600


@pytest.fixture(scope="module")
def tf1_predicted(legacy, training, val_split) -> np.ndarray:
    """The saved checkpoint evaluated as slim's eval_image_classifier.py did: a fresh inference
    graph, every model variable restored from its ExponentialMovingAverage shadow."""
    from migrate._tf import tensorflow
    from migrate.tf1_nets.mobilenet import mobilenet_v1

    tf = tensorflow()
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        inputs = v1.placeholder(tf.float32, [None, SIZE, SIZE, 3])
        logits = mobilenet_v1(inputs, training["depth_multiplier"], training["num_classes"], is_training=False)
        ema = v1.train.ExponentialMovingAverage(training["moving_average_decay"])
        saver = v1.train.Saver(ema.variables_to_restore(v1.global_variables()))
        with v1.Session() as sess:
            saver.restore(sess, v1.train.latest_checkpoint(str(legacy)))
            return sess.run(logits, {inputs: val_split[0]}).argmax(-1)


def test_saved_checkpoint_reproduces_the_recorded_accuracy(tf1_predicted, training, val_split):
    accuracy = float(np.mean(tf1_predicted == val_split[1]))
    assert accuracy == pytest.approx(training["val"]["accuracy"], abs=1e-9)
    assert np.bincount(tf1_predicted, minlength=training["num_classes"]).tolist() == training["val"]["predictions"]


def test_converts_with_ema_weights_and_parity(converted):
    report, out = converted
    assert report.mapping.rule_set == "slim_mobilenet_v1" and report.mapping.complete
    assert report.verified == len(report.mapping.mapped) > 0
    assert report.parity is not None and report.parity.passed, report.parity
    assert (out / "checkpoint").is_file()


def test_converted_keras_model_keeps_the_tf1_accuracy(converted, training, val_split, tf1_predicted):
    """tf_keras MobileNet restored from the converted checkpoint: logits -> argmax, same label
    convention as the slim model (logit 0 background, logit k label-map id k)."""
    from migrate._tf import tensorflow, tf_keras

    tf = tensorflow()
    _, out = converted
    model = tf_keras().applications.MobileNet(
        input_shape=(SIZE, SIZE, 3), alpha=training["depth_multiplier"], classes=training["num_classes"],
        weights=None, classifier_activation=None)
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(str(out))).assert_existing_objects_matched()
    images, labels = val_split
    predicted = np.concatenate([np.asarray(model(images[i:i + 50], training=False)).argmax(-1)
                                for i in range(0, len(images), 50)])
    accuracy = float(np.mean(predicted == labels))
    assert accuracy == pytest.approx(training["val"]["accuracy"], abs=0.01)
    assert accuracy > 0.8
    assert np.mean(predicted == tf1_predicted) >= 0.99  # the same images right and wrong, not just as many
