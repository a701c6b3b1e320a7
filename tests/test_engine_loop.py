"""The training loop: validation, early stopping, overfitting warning, TensorBoard, precision, XLA,
clipping, weight decay, callbacks, and errors that say what to fix."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from finetune.engine import (
    Callback, EarlyStopping, EngineConfigError, OptimizerConfig, StopTraining, TrainingDivergedError, train,
)
from finetune.engine._testing import TinyClassifier, epoch_datasets, eval_dataset, synthetic, weights_bytes
from reports import from_data, to_data

IMAGES, LABELS = synthetic(64)
VAL_IMAGES, VAL_LABELS = synthetic(32, seed=1)


def _train(tmp_path, steps=6, task=TinyClassifier, **options):
    options = {"schedule": 0.05, "log_every": 0, "checkpoint_every": 0, **options}
    return train(task, epoch_datasets(IMAGES, LABELS), steps=steps, checkpoint_dir=tmp_path / "ckpt", **options)


def _misleading_validation():
    """Validation labels shifted by one class: the better the model fits, the worse validation gets."""
    return eval_dataset(VAL_IMAGES, (VAL_LABELS + 1) % 3)


def test_report_has_losses_speed_and_idle_fraction(tmp_path):
    report = _train(tmp_path, eval_dataset_fn=eval_dataset(VAL_IMAGES, VAL_LABELS), eval_every=3)
    assert report.steps == 6 and len(report.loss_history["total"]) == 6 and set(report.final_losses) == {
        "total", "classification"}
    assert report.loss_history["total"][-1] < report.loss_history["total"][0]
    assert [r.step for r in report.metrics_history] == [3, 6]
    assert set(report.metrics_history[0].metrics) == {"val_loss", "val_classification", "accuracy"}
    assert report.best_metric.name == "val_loss"
    assert report.steps_per_sec > 0 and 0 <= report.input_idle_fraction < 1
    assert report.strategy == "default" and report.replicas == 1 and report.checkpoint.endswith("ckpt-6")
    assert report.stop_reason is None
    assert from_data(json.loads(json.dumps(to_data(report), allow_nan=False))) == report  # a report kind


def test_early_stopping_stops_after_patience_evaluations(tmp_path):
    report = _train(tmp_path, steps=40, eval_dataset_fn=_misleading_validation(), eval_every=2,
                    early_stopping=EarlyStopping(patience=2))
    assert report.stopped_early and report.steps == 6  # best at step 2, no better at 4 and 6
    assert report.best_metric.step == 2 and report.checkpoint.endswith("ckpt-6")
    assert report.stop_reason.startswith("early stopping: val_loss did not improve for 2 evaluations (best ")


def test_early_stopping_on_a_task_metric_in_max_mode(tmp_path):
    report = _train(tmp_path, steps=8, eval_dataset_fn=eval_dataset(VAL_IMAGES, VAL_LABELS), eval_every=2,
                    early_stopping=EarlyStopping(patience=50, metric="accuracy", mode="max"))
    assert report.best_metric.name == "accuracy" and not report.stopped_early
    best = max(r.metrics["accuracy"] for r in report.metrics_history)
    assert report.best_metric.value == best


def test_early_stopping_on_an_unknown_metric_names_the_known_ones(tmp_path):
    with pytest.raises(EngineConfigError, match="'mAP' is not among the evaluation metrics: accuracy, val_classif"):
        _train(tmp_path, eval_dataset_fn=_misleading_validation(), eval_every=2,
               early_stopping=EarlyStopping(patience=1, metric="mAP", mode="max"))


def test_overfitting_warning(tmp_path):
    report = _train(tmp_path, steps=16, eval_dataset_fn=_misleading_validation(), eval_every=4)
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith("overfitting: validation loss rose from ")
    assert "over the last 3 evaluations (steps 4-16) while training loss fell" in report.warnings[0]


def test_no_overfitting_warning_when_validation_improves(tmp_path):
    report = _train(tmp_path, steps=16, eval_dataset_fn=eval_dataset(VAL_IMAGES, VAL_LABELS), eval_every=4)
    assert report.warnings == ()


class DrawingTask(TinyClassifier):
    def draw_predictions(self, batch, outputs):
        return batch["images"]  # a real task draws its boxes on them


def _events(directory):
    from migrate._tf import tensorflow

    tf = tensorflow()
    tags = {}
    for path in directory.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append((event.step, value.metadata.plugin_data.plugin_name))
    return tags


def test_tensorboard_scalars_and_sample_images(tmp_path):
    _train(tmp_path, task=DrawingTask, tensorboard_dir=str(tmp_path / "tb"), log_every=2,
           eval_dataset_fn=eval_dataset(VAL_IMAGES, VAL_LABELS), eval_every=3, sample_images=2)
    train_tags, eval_tags = _events(tmp_path / "tb" / "train"), _events(tmp_path / "tb" / "eval")
    assert {"loss/total", "loss/classification", "learning_rate", "steps_per_sec", "input_idle_fraction"} <= set(
        train_tags)
    assert [step for step, _ in train_tags["learning_rate"]] == [2, 4, 6]
    assert {plugin for values in train_tags.values() for _, plugin in values} == {"scalars"}
    assert {"val_loss", "val_classification", "accuracy", "predictions"} <= set(eval_tags)
    assert eval_tags["predictions"] == [(3, "images"), (6, "images")]


def test_bfloat16_mixed_precision_runs_on_cpu(tmp_path):
    tasks = []

    def factory():
        tasks.append(TinyClassifier())
        return tasks[-1]

    report = _train(tmp_path, steps=3, task=factory, mixed_precision="bfloat16")
    assert report.mixed_precision == "bfloat16" and all(math.isfinite(v) for v in report.loss_history["total"])
    conv = tasks[0].model.get_layer("conv1")
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype.name == "float32"  # float32 master weights


def test_float16_uses_loss_scaling(tmp_path):
    seen = {}

    class Look(Callback):
        def on_train_begin(self, run):
            seen["optimizer"] = type(run.optimizer).__name__

    report = _train(tmp_path, steps=2, task=TinyClassifier, mixed_precision="float16", callbacks=[Look()])
    assert seen["optimizer"].startswith("LossScaleOptimizer") and math.isfinite(report.final_losses["total"])


def test_mixed_precision_needs_the_task_built_under_the_policy(tmp_path):
    with pytest.raises(EngineConfigError, match=r"mixed_precision='bfloat16' but the task's model computes in "
                                                r"float32.*precision_policy\('bfloat16'\)"):
        _train(tmp_path, task=TinyClassifier(), mixed_precision="bfloat16")


def test_xla_jit_compile_on_request(tmp_path):
    plain = _train(tmp_path / "a", steps=3)
    jitted = _train(tmp_path / "b", steps=3, jit_compile=True)
    assert jitted.jit_compile and not plain.jit_compile
    np.testing.assert_allclose(jitted.loss_history["total"], plain.loss_history["total"], rtol=1e-4)


class FirstStep(Callback):
    """Weights before and after the first step."""

    def on_train_begin(self, run):
        self.model, self.before = run.task.model, weights_bytes(run.task.model)

    def on_step_end(self, step, logs):
        if step == 1:
            self.after = {v.name: v.numpy() for v in self.model.variables}
            self.start = {n: np.frombuffer(b, np.float32) for n, b in self.before.items()}


def test_gradient_clipping_bounds_the_update(tmp_path):
    look = FirstStep()
    _train(tmp_path, steps=1, optimizer=OptimizerConfig(kind="sgd"), schedule=1.0, grad_clip_norm=0.01,
           callbacks=[look])
    step = [look.after[v.name].ravel() - look.start[v.name] for v in look.model.trainable_variables]
    assert float(np.sqrt(sum((d.astype(np.float64) ** 2).sum() for d in step))) == pytest.approx(0.01, rel=1e-3)


class NoGradient(TinyClassifier):
    def loss(self, batch, outputs, training):
        from migrate._tf import tensorflow

        total = 0.0 * tensorflow().reduce_sum(outputs)
        return {"total": total}


def test_decoupled_weight_decay_spares_biases_and_normalisation(tmp_path):
    look = FirstStep()
    _train(tmp_path, steps=1, task=NoGradient, optimizer=OptimizerConfig(kind="sgd"), schedule=0.1,
           weight_decay=0.5, callbacks=[look])
    kernel, bias, gamma = "head/kernel:0", "head/bias:0", "conv1_bn/gamma:0"
    np.testing.assert_allclose(look.after[kernel].ravel(), look.start[kernel] * (1 - 0.1 * 0.5), rtol=1e-6)
    assert look.after[bias].tobytes() == look.before[bias] and look.after[gamma].tobytes() == look.before[gamma]


class Diverging(TinyClassifier):
    def loss(self, batch, outputs, training):
        from migrate._tf import tensorflow

        tf = tensorflow()
        total = super().loss(batch, outputs, training)["total"] * tf.constant(float("nan"))
        return {"total": total}


def test_a_nan_loss_stops_with_advice(tmp_path):
    with pytest.raises(TrainingDivergedError, match="the loss became nan at step 1 .*lower the learning rate or set "
                                                    "grad_clip_norm"):
        _train(tmp_path, task=Diverging)


def test_stop_training_from_a_callback_saves_and_reports(tmp_path):
    class StopAt3(Callback):
        def on_step_end(self, step, logs):
            if step == 3:
                raise StopTraining("enough")

    report = _train(tmp_path, steps=10, callbacks=[StopAt3()])
    assert report.steps == 3 and report.checkpoint.endswith("ckpt-3")
    assert report.stop_reason == "callback: enough" and not report.stopped_early


def test_keras_callbacks_are_driven(tmp_path):
    from migrate._tf import tf_keras

    calls = []

    class Recorder(tf_keras().callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append(("begin", self.model.optimizer is not None))

        def on_train_batch_begin(self, batch, logs=None):
            calls.append(("batch", batch))

        def on_epoch_end(self, epoch, logs=None):
            calls.append(("epoch_end", epoch))

    _train(tmp_path, steps=10, callbacks=[Recorder()])  # 8 batches per epoch
    assert calls[0] == ("begin", True)
    assert [c for c in calls if c[0] == "batch"] == [("batch", i) for i in range(10)]
    assert [c for c in calls if c[0] == "epoch_end"] == [("epoch_end", 0), ("epoch_end", 1)]


@pytest.mark.parametrize("options, message", [
    ({"schedule": None}, "schedule None: give a learning rate"),
    ({"schedule": "0.1"}, "schedule '0.1': give a learning rate"),
    ({"learning_rate": 0.1}, "unknown option learning_rate; known: "),
    ({"mixed_precision": "fp8"}, "mixed_precision 'fp8': choose None, 'bfloat16' or 'float16'"),
    ({"grad_clip_norm": 0}, "grad_clip_norm 0: expected a positive norm"),
    ({"freeze_variables": "conv[("}, "freeze_variables: invalid regular expression"),
])
def test_bad_options_say_what_to_fix(tmp_path, options, message):
    with pytest.raises(EngineConfigError, match=message):
        _train(tmp_path, **options)


def test_unknown_optimizer():
    with pytest.raises(EngineConfigError, match="optimizer 'lamb': not known; choose one of momentum, sgd, adam"):
        OptimizerConfig(kind="lamb")


def test_not_a_task(tmp_path):
    with pytest.raises(EngineConfigError, match="object is not a task: it has no model, loss, forward"):
        _train(tmp_path, task=object())


class NoTotal(TinyClassifier):
    def loss(self, batch, outputs, training):
        return {"classification": super().loss(batch, outputs, training)["total"]}


def test_a_loss_without_total_names_what_it_returned(tmp_path):
    with pytest.raises(EngineConfigError, match="NoTotal.loss returned classification; it must return a 'total' entry"):
        _train(tmp_path, task=NoTotal)


def test_batches_without_images_name_their_keys(tmp_path):
    from migrate._tf import tensorflow

    tf = tensorflow()
    data = lambda epoch: tf.data.Dataset.from_tensor_slices({"pixels": IMAGES, "labels": LABELS}).batch(8)  # noqa: E731
    with pytest.raises(EngineConfigError, match="a batch has no images: expected one of the keys images, image, "
                                                "found labels, pixels"):
        train(TinyClassifier, data, steps=1, checkpoint_dir=tmp_path, schedule=0.1, log_every=0)


def test_moving_average_weights_end_up_in_the_model(tmp_path):
    class Keep(Callback):
        def on_train_begin(self, run):
            self.optimizer, self.model = run.optimizer, run.task.model

        def on_train_end(self, report):  # tf_keras keeps the averages aligned with the variables it was built on
            self.ema = [v.numpy().tobytes() for v in self.optimizer._model_variables_moving_average]

    keep = Keep()
    _train(tmp_path, steps=3, optimizer=OptimizerConfig(use_ema=True, ema_momentum=0.5), callbacks=[keep])
    assert [v.numpy().tobytes() for v in keep.model.trainable_variables] == keep.ema


@pytest.mark.slow  # importing tensorflow_model_optimization alone takes 5-10 s
def test_tfmot_pruning_runs_through_the_engine(tmp_path):
    """The quantize milestone's path: a pruned tf_keras model and tfmot's UpdatePruningStep callback."""
    from migrate._tf import tensorflow

    tensorflow()
    import tensorflow_model_optimization as tfmot

    class Pruned(TinyClassifier):
        def __init__(self):
            super().__init__()
            schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
            self.model = tfmot.sparsity.keras.prune_low_magnitude(self.model, pruning_schedule=schedule)

    tasks = []
    report = _train(tmp_path, steps=3, task=lambda: tasks.append(Pruned()) or tasks[-1],
                    callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    assert report.steps == 3
    kernels = [v.numpy() for v in tasks[0].model.trainable_variables if v.name.endswith("kernel:0")]
    assert kernels and all((k == 0).mean() == pytest.approx(0.5, abs=0.02) for k in kernels)  # masks applied
