"""Restoring a converted checkpoint into a task's model per fine_tune_checkpoint_type."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from finetune.engine import RestoreError, train
from reports import to_data


@pytest.fixture(scope="module")
def converted(zoo, tmp_path_factory):
    """mobilenet_v1_small (slim, depth multiplier 0.25, 1001 classes) converted with --target auto."""
    from migrate._convert import convert
    from migrate._targets import TargetSpec

    out = tmp_path_factory.mktemp("engine-restore") / "c"
    convert(zoo["mobilenet_v1_small"], out, target=TargetSpec("auto"))
    return out


class MobileNetTask:
    """A classification task on keras MobileNet: new head of ``classes``, optionally a wrapped backbone."""

    def __init__(self, classes=3, alpha=0.25, wrapped=False):
        from migrate._tf import tf_keras

        keras = tf_keras()
        keras.backend.reset_uids()
        if wrapped:
            backbone = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=alpha, weights=None,
                                                    include_top=False)
            inputs = keras.Input((32, 32, 3))
            x = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
            self.model = keras.Model(inputs, keras.layers.Dense(classes, name="head")(x))
            self.head = "head/"
        else:
            self.model = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=alpha, weights=None,
                                                      classes=classes, classifier_activation=None)
            self.head = "conv_preds/"

    def forward(self, images, training):
        return self.model(images, training=training)

    def loss(self, batch, outputs, training):
        from migrate._tf import tensorflow, tf_keras

        tf = tensorflow()
        total = tf.reduce_mean(tf_keras().losses.sparse_categorical_crossentropy(batch["labels"], outputs, True))
        return {"total": total}

    def evaluate(self, dataset):
        return {}

    def backbone_variables(self):
        return [v for v in self.model.trainable_variables if not v.name.startswith(self.head)]

    def head_variables(self):
        return [v for v in self.model.variables if v.name.startswith(self.head)]


def reference(converted):
    """The converted model, restored the way a TF2 client does: every value as the checkpoint holds it."""
    from migrate._tf import tensorflow, tf_keras

    keras = tf_keras()
    model = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=1001)
    tensorflow().train.Checkpoint(model=model).restore(str(converted / "ckpt-0")).assert_consumed()
    return {v.name.split(":")[0]: v.numpy() for v in model.variables}


def test_classification_restores_the_backbone_and_reports_the_fresh_head(converted):
    from finetune.engine import restore

    task = MobileNetTask()
    head_before = task.model.get_layer("conv_preds").kernel.numpy().copy()
    report = restore(task, converted, "classification")
    assert report.summary["restored"] == 135 and report.verified == 135
    assert report.grouped("initialised") == ["conv_preds/{bias, kernel}"]
    assert report.grouped("restored") == [
        "conv1/kernel", "conv1_bn/{beta, gamma, moving_mean, moving_variance}",
        "conv_dw_{1..13}/depthwise_kernel", "conv_dw_{1..13}_bn/{beta, gamma, moving_mean, moving_variance}",
        "conv_pw_{1..13}/kernel", "conv_pw_{1..13}_bn/{beta, gamma, moving_mean, moving_variance}"]
    assert sorted(report.unused) == ["conv_preds/bias", "conv_preds/kernel"]
    want = reference(converted)
    for variable in task.model.variables:
        name = variable.name.split(":")[0]
        if not name.startswith("conv_preds"):
            assert variable.numpy().tobytes() == want[name].tobytes(), name
    np.testing.assert_array_equal(task.model.get_layer("conv_preds").kernel.numpy(), head_before)
    json.dumps(to_data(report))  # serialisable as every report is


def test_full_restore_of_a_model_with_another_head_lists_every_mismatch(converted):
    from finetune.engine import restore

    expected = ("does not fit the task's model for fine_tune_checkpoint_type 'full': 2 have another shape or dtype: "
                "conv_preds/kernel (model (1, 1, 256, 3) float32, checkpoint (1, 1, 256, 1001)")
    with pytest.raises(RestoreError, match=re.escape(expected)) as e:
        restore(MobileNetTask(), converted, "full")
    assert [m.name for m in e.value.report.mismatched] == ["conv_preds/kernel", "conv_preds/bias"]
    assert "strict=False" in str(e.value) and "\n" not in str(e.value)


def test_full_restore_not_strict_initialises_the_misfits(converted):
    from finetune.engine import restore

    report = restore(MobileNetTask(), converted, "full", strict=False)
    assert report.summary["restored"] == 135 and report.summary["mismatched"] == 2
    assert report.grouped("initialised") == ["conv_preds/{bias, kernel}"]


def test_full_restore_of_the_same_architecture_restores_everything(converted):
    from finetune.engine import restore

    report = restore(MobileNetTask(classes=1001), converted, "full")
    assert report.summary == {"restored": 137, "initialised": 0, "matched_by_name": 0, "missing": 0,
                              "mismatched": 0, "unused": 0}


def test_wrong_width_is_a_clear_error(converted):
    from finetune.engine import restore

    with pytest.raises(RestoreError, match=r"135 have another shape or dtype: conv1/kernel \(model \(3, 3, 3, 16\) "
                                           r"float32, checkpoint \(3, 3, 3, 8\).*and 131 more.*The checkpoint holds "):
        restore(MobileNetTask(alpha=0.5), converted, "classification")


def test_wrapped_backbone_is_found_by_name_detection_keeps_the_head_fresh(converted):
    from finetune.engine import restore

    report = restore(MobileNetTask(wrapped=True), converted, "detection")
    assert report.summary["restored"] == 135 and report.summary["matched_by_name"] == 135
    assert report.grouped("initialised") == ["head/{bias, kernel}"]


def test_missing_variables_are_listed_grouped(converted, tmp_path):
    from migrate._tf import tensorflow, tf_keras
    from finetune.engine import restore

    task = MobileNetTask()
    keras = tf_keras()
    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    tensorflow().train.Checkpoint(model=tiny).write(str(tmp_path / "other"))
    # object paths pair the first layer with weights of each (as TensorFlow would): a shape mismatch
    with pytest.raises(RestoreError, match=r"134 model variables have no counterpart in the checkpoint: "
                                           r"conv1_bn/\{beta, gamma, moving_mean, moving_variance\}; .*; "
                                           r"1 has another shape or dtype: conv1/kernel \(model \(3, 3, 3, 8\) "
                                           r"float32, checkpoint \(4, 2\) float32\)\. "
                                           r"The checkpoint holds dense/\{bias, kernel\}"):
        restore(task, tmp_path / "other", "classification")


def test_a_tf1_checkpoint_must_be_converted_first(zoo):
    from finetune.engine import restore

    with pytest.raises(RestoreError, match="expected a TF2 object-based checkpoint .* found tf1-v2; convert it "
                                           "first: ckpt-migrate convert"):
        restore(MobileNetTask(), zoo["mobilenet_v1_small"], "classification")


def test_unknown_type_and_missing_path(converted, tmp_path):
    from finetune.engine import restore

    with pytest.raises(RestoreError, match="'fine_tune': not known; choose one of classification, backbone, "
                                           "detection, full"):
        restore(MobileNetTask(), converted, "fine_tune")
    with pytest.raises(RestoreError, match="fine-tune checkpoint: .*nowhere"):
        restore(MobileNetTask(), tmp_path / "nowhere", "classification")


def test_train_restores_on_a_fresh_start_only(converted, tmp_path):
    from migrate._tf import tensorflow

    tf = tensorflow()
    rng = np.random.default_rng(0)
    images, labels = rng.random((8, 32, 32, 3), dtype=np.float32), rng.integers(0, 3, 8)
    data = lambda epoch: tf.data.Dataset.from_tensor_slices({"images": images, "labels": labels}).batch(4)  # noqa: E731
    common = dict(checkpoint_dir=tmp_path, schedule=0.01, fine_tune_checkpoint=str(converted), log_every=0)
    first = train(MobileNetTask, data, steps=1, **common)
    assert first.restore.summary["restored"] == 135 and first.resumed_from is None
    again = train(MobileNetTask, data, steps=1, **common)  # resumes (nothing left to do): no second restore
    assert again.restore is None and again.resumed_from.endswith("ckpt-1")
