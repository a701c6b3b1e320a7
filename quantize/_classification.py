"""Classification, the first :class:`~quantize._task.QuantizeTask`: logits -> probabilities, scored by accuracy.

The float model is ``image -> logits`` (a fine-tuned ClassificationTask's
``logits`` output, or a saved tf_keras classifier whose last layer may already
be a softmax); the exported graph adds the softmax, so the SavedModel's
``serving_default`` and every ``.tflite`` return ``probabilities [B, classes]``.
"""
from __future__ import annotations

import numpy as np

from finetune.engine import EpochStream
from migrate.tf import tensorflow, tf_keras

from ._errors import QuantizeError


def make(source):
    return ClassificationQuantizeTask(source)


def ends_in_softmax(model) -> bool:
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return type(last).__name__ == "Softmax" or getattr(activation, "__name__", "") == "softmax"


class ClassificationQuantizeTask:
    kind = "classification"
    metric = "accuracy"

    def __init__(self, source):
        keras = tf_keras()
        self.source = source
        model = source.model
        if source.finetune_task is not None:  # finetune's classifier: outputs {"logits", "features"}
            model = keras.Model(model.input, model.get_layer("logits").output, name="classifier")
        self._model = model
        self.probabilities = ends_in_softmax(model)
        self.image_size = tuple(source.image_size)
        self.num_classes = int(model.output_shape[-1])
        if source.label_map is not None and len(source.label_map.items) != self.num_classes:
            raise QuantizeError(f"{source.path}: the model has {self.num_classes} outputs but the label map "
                                f"{source.label_map.source} has {len(source.label_map.items)} classes; pass the "
                                "label map it was trained with")

    # -- the QuantizeTask interface ----------------------------------------------------------------
    def float_model(self):
        return self._model

    def engine_task(self, model):
        return _EngineTask(model, self.num_classes, self.probabilities)

    def train_data(self):
        return EpochStream.of(self.source.split("train")).map(_relabel)

    def eval_batches(self):
        return None if self.source.val is None else self.source.val.dataset_for_epoch(0).map(_relabel)

    def representative_images(self, limit: int):
        return self.source.calibration_images(limit)

    def export_model(self, model):
        if self.probabilities:
            return model
        keras = tf_keras()
        return keras.Model(model.input, keras.layers.Softmax(name="probabilities")(model.output),
                           name=f"{model.name}_probabilities")

    def evaluate_variant(self, runner, split: str = "test") -> dict:
        return self._score(lambda images: runner(images)[0], split)

    def evaluate_keras(self, model, split: str = "test") -> dict:
        exported = self.export_model(model)
        return self._score(lambda images: np.asarray(exported(images, training=False)), split)

    # -- internals ---------------------------------------------------------------------------------
    def _score(self, predict, split: str) -> dict:
        data = self.source.split(split)
        correct = top5 = seen = 0
        for batch in data.dataset_for_epoch(0):
            probabilities = np.asarray(predict(np.asarray(batch["image"], np.float32)))
            labels = np.asarray(batch["class_index"], np.int64)
            if probabilities.shape != (len(labels), self.num_classes):
                raise QuantizeError(f"the model returned shape {probabilities.shape}; expected "
                                    f"({len(labels)}, {self.num_classes}) class probabilities")
            correct += int((probabilities.argmax(-1) == labels).sum())
            ranks = np.argsort(-probabilities, axis=-1)[:, :5]
            top5 += int((ranks == labels[:, None]).any(-1).sum())
            seen += len(labels)
        if not seen:
            raise QuantizeError(f"the {split} split has no examples; pass --{split}-input-path with records")
        metrics = {"accuracy": correct / seen, "examples": float(seen)}
        if self.num_classes > 5:
            metrics["top5_accuracy"] = top5 / seen
        return metrics


def _relabel(batch: dict) -> dict:
    return {**batch, "label": batch["class_index"]}


class _EngineTask:
    """The engine's view of a (pruned or QAT-annotated) classifier: cross-entropy on ``label``."""

    def __init__(self, model, num_classes: int, probabilities: bool):
        self.model, self.num_classes, self.probabilities = model, num_classes, probabilities

    def forward(self, images, training: bool):
        return {"logits": self.model(images, training=training)}

    def loss(self, batch: dict, outputs, training: bool) -> dict:
        tf = tensorflow()
        labels = tf.cast(batch["label"], tf.int32)
        out = tf.cast(outputs["logits"], tf.float32)
        if self.probabilities:
            value = tf.reduce_mean(tf_keras().losses.sparse_categorical_crossentropy(labels, out))
        else:
            value = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=out))
        return {"total": value, "classification": value}

    def evaluate(self, dataset) -> dict:
        tf = tensorflow()
        correct = seen = 0
        for batch in dataset:
            out = self.forward(batch["image"], training=False)["logits"]
            labels = tf.cast(batch["label"], tf.int64)
            correct += int(tf.reduce_sum(tf.cast(tf.argmax(out, -1) == labels, tf.int32)))
            seen += int(labels.shape[0])
        return {"accuracy": correct / max(seen, 1)}

    def backbone_variables(self) -> list:
        return []

    def head_variables(self) -> list:
        return list(self.model.trainable_variables)
