"""What the quantization framework needs from a task (classification here, detection in ``quantize.detection``).

The framework (pruning, QAT, TFLite conversion, export, evaluation, report)
is task-agnostic; a task supplies the float model, its training data and loss,
the graph that is exported and how to score a ``.tflite`` on a split.  A task
is built by a factory registered in :data:`TASKS`::

    make(source: quantize._source.Source) -> QuantizeTask

``source`` is the fine-tuned run: :func:`quantize._source.load_run` rebuilds
the ``finetune`` task from ``model_dir`` + the pipeline.config / flags it was
trained with, restores its latest checkpoint and checks every data split
(``source.run.task`` is the finetune task, ``source.run.inputs`` the splits).

Conventions every method keeps:

* images are float32 ``[B, H, W, 3]`` preprocessed as in training (in
  [-1, 1]); the TFLite runner (:class:`quantize._interpreter.Runner`) takes
  and returns float32 whatever the model's I/O types (it quantizes int8 inputs
  and dequantizes int8 outputs itself);
* metrics are fractions in [0, 1], higher is better; :attr:`metric` names the
  headline one (``accuracy``, ``mAP@0.5``); the report shows drops in points
  (100 x the fraction) against the float32 ``.tflite``;
* ``model`` arguments are tf_keras models with the float model's structure
  (possibly pruning-wrapped or QAT-annotated): the framework wraps and strips.

Optional hooks (the framework uses them when present, defaults otherwise):

* ``tflite_converter(model) -> tf.lite.TFLiteConverter``: the converter for
  ``model``'s export graph (default: ``TFLiteConverter.from_keras_model(
  export_model(model))``).  Detection returns one over a concrete function
  with ``TFLite_Detection_PostProcess`` inside (``allow_custom_ops``).  The
  framework then sets the quantization recipe on it (optimizations,
  representative data, supported ops, int8 I/O types, float16).
* ``saved_model_signatures(model) -> dict[str, tf.function]``: the SavedModel
  signatures (default: ``serving_default`` over ``export_model(model)``,
  input ``images``).
* ``qat_unsupported(layer) -> str | None``: a reason this task adds for not
  annotating ``layer`` (e.g. custom layers the registry cannot see).
"""
from __future__ import annotations

import importlib
from typing import Iterator, Protocol, runtime_checkable

from ._errors import QuantizeError

#: task kind -> "module:factory"; ``make(source) -> QuantizeTask``.
TASKS = {
    "classification": "quantize._classification:make",
    "detection": "quantize.detection:make",
}


@runtime_checkable
class QuantizeTask(Protocol):
    kind: str  # "classification" | "detection"
    metric: str  # the headline metric key of evaluate_variant, e.g. "accuracy" or "mAP@0.5"
    image_size: tuple  # (height, width) of the model input

    def float_model(self):
        """The trained float tf_keras model, images -> the outputs the loss needs (a fresh copy each call is fine)."""

    def engine_task(self, model):
        """A ``finetune.engine.Task`` training ``model`` (pruned or QAT-annotated) with this task's loss."""

    def train_data(self):
        """The engine's training data, a ``finetune.engine.EpochStream`` of batches (dicts with ``image`` and
        the labels)."""

    def eval_batches(self):
        """Validation batches for the engine's evaluation during pruning/QAT, or None."""

    def representative_images(self, limit: int) -> Iterator:
        """Up to ``limit`` float32 ``[1, H, W, 3]`` images from the training TFRecords (PTQ calibration)."""

    def export_model(self, model):
        """The inference tf_keras model to export: classification -> probabilities; detection -> boxes, classes,
        scores, num_detections."""

    def evaluate_variant(self, runner, split: str = "test") -> dict:
        """Run a ``.tflite`` (a :class:`quantize._interpreter.Runner`) over ``split``: ``{metric: value, ...}``."""

    def evaluate_keras(self, model, split: str = "test") -> dict:
        """The same metrics for a tf_keras model (``export_model`` output) over ``split``."""


def make_task(kind: str, source):
    """The registered task ``kind`` built on ``source``."""
    target = TASKS.get(kind)
    if target is None:
        raise QuantizeError(f"task {kind!r}: expected one of {', '.join(TASKS)}")
    module, factory = target.split(":")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise QuantizeError(f"task {kind!r} is not available in this install ({module} is missing)") from e
        raise
    return getattr(loaded, factory)(source)


def check_task(task) -> None:
    required = ("kind", "metric", "image_size", "float_model", "engine_task", "train_data", "eval_batches",
                "representative_images", "export_model", "evaluate_variant", "evaluate_keras")
    missing = [name for name in required if not hasattr(task, name)]
    if missing:
        raise QuantizeError(f"{type(task).__name__} is not a quantize task: it has no {', '.join(missing)} "
                            "(see quantize._task.QuantizeTask)")
