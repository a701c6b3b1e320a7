"""Detection as a :class:`~quantize._task.QuantizeTask`: a fine-tuned SSD, scored by COCO mAP@0.5.

The float model is the SSD's tf_keras model (images in [-1, 1] ->
``box_encodings``, ``class_predictions_with_background``); pruning and QAT
train it with the SSD loss (:class:`_EngineTask`).  Exports put the
post-processing inside: the SavedModel's ``serving_default`` runs TensorFlow's
(per-class NMS), every ``.tflite`` the ``TFLite_Detection_PostProcess`` op
(:mod:`quantize.detection._graph`).  Metrics are those of
:class:`finetune.tasks.ssd.CocoEvaluator`, ``mAP@0.5`` first.
"""
from __future__ import annotations

import math

import numpy as np

from finetune.engine import EpochStream
from migrate.tf import tf_keras

from .._errors import QuantizeError
from . import _evaluate, _export


def make(source):
    return DetectionQuantizeTask(source)


class DetectionQuantizeTask:
    kind = "detection"
    metric = "mAP@0.5"
    # the outputs come from the float TFLite_Detection_PostProcess op: int8 I/O quantizes the input only
    # (int8 outputs would re-quantize boxes, classes and counts for nothing)
    int8_output = False

    def __init__(self, source, nms: str = "per_class"):
        from finetune.tasks import FasterRCNNTask, SSDTask  # noqa: PLC0415

        if isinstance(source.finetune_task, FasterRCNNTask):
            raise QuantizeError(f"{source.path}: a Faster R-CNN run; ckpt-quantize exports single-stage SSDs (TFLite's "
                                "detection post-processing op, like the OD API's TFLite path, covers SSDs only): "
                                "export it as a SavedModel with ckpt-finetune export")
        if not isinstance(source.finetune_task, SSDTask):
            raise QuantizeError(f"{source.path}: detection quantizes a ckpt-finetune SSD run (its model_dir and "
                                "pipeline.config); a saved tf_keras model carries no anchors or post-processing")
        self.source = source
        self.ssd = source.finetune_task
        self.image_size = tuple(source.image_size)
        self.nms = nms

    # -- the QuantizeTask interface ----------------------------------------------------------------
    def float_model(self):
        return self.ssd.model

    def engine_task(self, model):
        return _EngineTask(model, self.ssd)

    def train_data(self):
        return EpochStream.of(self.source.split("train"))

    def eval_batches(self):
        return None if self.source.val is None else self.source.val.dataset_for_epoch(0)

    def representative_images(self, limit: int):
        return self.source.calibration_images(limit)

    def export_model(self, model):
        """``images -> {detection_boxes, detection_classes (1-based), detection_scores, num_detections}``."""
        return detection_keras_model(model, self.ssd)

    def tflite_converter(self, model):
        return _export.detection_tflite_converter(self.ssd, model=model, nms=self.nms)

    def saved_model_signatures(self, model) -> dict:
        """``serving_default``: uint8 images of any size -> post-processed detections (the OD API's convention).
        The caller must track ``model`` on the module it saves."""
        from finetune import detection_serving  # noqa: PLC0415

        return {_export.SIGNATURE: detection_serving(model, self.ssd.anchors, self.ssd.config, self.image_size)}

    def evaluate_variant(self, runner, split: str = "test") -> dict:
        return self._score(lambda images: _evaluate.tflite_detections(runner, images), split)

    def evaluate_keras(self, model, split: str = "test") -> dict:
        exported = self.export_model(model)

        def detect(images):
            out = exported(images, training=False)
            return {"boxes": np.asarray(out["detection_boxes"]),
                    "classes": np.asarray(out["detection_classes"]).astype(np.int32),
                    "scores": np.asarray(out["detection_scores"]),
                    "num_detections": np.asarray(out["num_detections"]).astype(np.int32)}

        return self._score(detect, split)

    # -- internals ---------------------------------------------------------------------------------
    def _score(self, detect, split: str) -> dict:
        """COCO metrics; the undefined ones (NaN: e.g. ``mAP_large`` without large objects) as None."""
        metrics = _evaluate.evaluate_detections(detect, self.source.split(split), self.ssd.config.num_classes)
        return {name: None if math.isnan(value) else value for name, value in metrics.items()}



def detection_keras_model(model, ssd):
    """A tf_keras model: ``model``'s raw SSD outputs followed by TensorFlow's post-processing."""
    keras = tf_keras()
    images = keras.Input(shape=tuple(model.input_shape[1:]), name="images")
    found = _postprocess_layer(ssd)(model(images, training=False))
    return keras.Model(images, found, name=f"{model.name}_detections")


def _postprocess_layer(ssd):
    keras = tf_keras()

    class DetectionPostprocess(keras.layers.Layer):
        """Decode, score conversion and per-class NMS (``finetune.tasks.ssd.postprocess``)."""

        def call(self, outputs):
            from finetune.tasks.ssd import postprocess  # noqa: PLC0415

            found = postprocess(outputs["box_encodings"], outputs["class_predictions_with_background"],
                                ssd._anchors, ssd.config.postprocess, ssd.config.box_coder)  # noqa: SLF001
            return {"detection_boxes": found["boxes"], "detection_classes": found["classes"],
                    "detection_scores": found["scores"], "num_detections": found["num_detections"]}

    return DetectionPostprocess(name="detection_postprocess")


class _EngineTask:
    """The engine's view of a (pruned or QAT-annotated) SSD: the SSD task's loss and evaluation on ``model``."""

    def __init__(self, model, ssd):
        self.model = model
        self.config, self.category_names = ssd.config, ssd.category_names
        self.anchors, self._anchors = ssd.anchors, ssd._anchors  # noqa: SLF001

    def forward(self, images, training: bool):
        return self.model(images, training=training)

    def loss(self, batch: dict, outputs, training: bool) -> dict:
        from finetune.tasks import SSDTask  # noqa: PLC0415

        return SSDTask.loss(self, batch, outputs, training)

    def regularization(self):
        from finetune.tasks import SSDTask  # noqa: PLC0415

        return SSDTask.regularization(self)

    def evaluate(self, dataset) -> dict:
        from finetune.tasks import SSDTask  # noqa: PLC0415

        return SSDTask.evaluate(self, dataset)

    def backbone_variables(self) -> list:
        return []

    def head_variables(self) -> list:
        return list(self.model.trainable_variables)
