"""SSD post-processing: decode, score conversion, per-class NMS (``SSDMetaArch.postprocess``).

Scores are converted over all ``num_classes + 1`` columns (``score_converter``
with ``logit_scale``), the background column is dropped, and
``tf.image.combined_non_max_suppression`` keeps up to
``max_detections_per_class`` boxes per class and ``max_total_detections`` per
image above ``score_threshold``.  Boxes are clipped to the unit square (the
OD API's clip window for unpadded images).  Outputs are padded to
``max_total_detections``; padded rows have class 0 and score 0.
"""
from __future__ import annotations

from dataclasses import dataclass

from migrate.tf import tensorflow

from ._box_coder import BoxCoder

SCORE_CONVERTERS = ("sigmoid", "softmax", "identity")


@dataclass(frozen=True)
class PostprocessConfig:
    """``post_processing`` of an SSD pipeline.config (``batch_non_max_suppression`` and score converter)."""

    score_threshold: float = 1e-8
    iou_threshold: float = 0.6
    max_detections_per_class: int = 100
    max_total_detections: int = 100
    score_converter: str = "sigmoid"
    logit_scale: float = 1.0

    def __post_init__(self):
        if self.score_converter not in SCORE_CONVERTERS:
            raise ValueError(f"post_processing: expected score_converter in {SCORE_CONVERTERS}, "
                             f"got {self.score_converter!r}")


def convert_scores(class_logits, config: PostprocessConfig):
    """Class scores ``[B, A, num_classes]`` (background dropped) from logits ``[B, A, num_classes + 1]``."""
    tf = tensorflow()
    logits = class_logits / config.logit_scale
    if config.score_converter == "sigmoid":
        scores = tf.sigmoid(logits)
    elif config.score_converter == "softmax":
        scores = tf.nn.softmax(logits, axis=-1)
    else:
        scores = logits
    return scores[..., 1:]


def postprocess(box_encodings, class_logits, anchors, config: PostprocessConfig = PostprocessConfig(),
                box_coder: BoxCoder = BoxCoder()) -> dict:
    """Detections of a batch: ``boxes [B, M, 4]`` normalised, ``classes [B, M]`` int32 (1-based label
    ids), ``scores [B, M]``, ``num_detections [B]`` int32, with ``M = max_total_detections``."""
    tf = tensorflow()
    boxes = box_coder.decode(box_encodings, anchors)  # [B, A, 4]
    scores = convert_scores(class_logits, config)
    nmsed = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], scores,
        max_output_size_per_class=config.max_detections_per_class,
        max_total_size=config.max_total_detections,
        iou_threshold=config.iou_threshold, score_threshold=config.score_threshold,
        pad_per_class=False, clip_boxes=True)
    num = tf.cast(nmsed.valid_detections, tf.int32)
    real = tf.range(tf.shape(nmsed.nmsed_scores)[1])[None, :] < num[:, None]
    classes = tf.where(real, tf.cast(nmsed.nmsed_classes, tf.int32) + 1, 0)
    return {"boxes": nmsed.nmsed_boxes, "classes": classes, "scores": nmsed.nmsed_scores,
            "num_detections": num}
