"""The exported SSD graphs: the SavedModel's serving function and the TFLite one with its fused post-process.

Two graphs over the same tf_keras SSD (``images [B, H, W, 3]`` in [-1, 1] ->
``box_encodings``, ``class_predictions_with_background``):

* the SavedModel's ``serving_default``: ``finetune``'s (``detection_serving``,
  the OD API exported-model convention with its input types).
* :func:`tflite_function`: the OD API's ``export_tflite_graph_lib_tf2``
  convention.  Input ``images [1, H, W, 3]`` float32 in [-1, 1]
  (``normalized_input_image_tensor``); the score converter runs in the graph
  and the decoding + NMS is a ``tf.function`` carrying
  ``experimental_implements="TFLite_Detection_PostProcess"`` with the op's
  attributes, which the TFLite converter replaces with the
  ``TFLite_Detection_PostProcess`` op (registered in the standard
  interpreter).  NMS (see :data:`NMS_MODES`): ``per_class`` by default, as
  TensorFlow's post-processing does it: one single-class op per class (each
  keeps up to ``max_detections_per_class`` boxes of its class, decoded and
  suppressed in float inside the op), merged by score into the best
  ``max_total_detections``.  Outputs: ``detection_boxes [1, M, 4]`` (not
  clipped), ``detection_classes [1, M]`` **0-based** class indices as
  float32, ``detection_scores [1, M]``, ``num_detections [1]``; rows past
  ``num_detections`` are zeroed (the op leaves them unspecified).
  :func:`quantize.detection.tflite_detections` turns them into the
  SavedModel's convention (clipped, 1-based).

The composite function's body is a placeholder (TensorFlow has no such op): the
graph handed to the converter is not meant to be run by TensorFlow.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from migrate.tf import tensorflow

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
# per_class: TensorFlow's per-class NMS, one single-class op per class (correct at any thread count);
# fast: the OD API's fast NMS (each anchor's best class, one suppression across classes: fewer detections,
# measured 4.7 mAP@0.5 points below per-class on the demo's SSD); regular: the op's own per-class NMS, which
# drops the last class with exactly 2 interpreter threads (tensorflow/tensorflow#56058)
NMS_MODES = ("per_class", "fast", "regular")
OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


@dataclass(frozen=True)
class PostprocessOp:
    """Attributes of ``TFLite_Detection_PostProcess`` (see ``tensorflow/lite/kernels/detection_postprocess.cc``)."""

    num_classes: int
    max_detections: int = 100
    detections_per_class: int = 100
    max_classes_per_detection: int = 1
    use_regular_nms: bool = False
    nms_score_threshold: float = 1e-8
    nms_iou_threshold: float = 0.6
    y_scale: float = 10.0
    x_scale: float = 10.0
    h_scale: float = 5.0
    w_scale: float = 5.0

    @classmethod
    def from_ssd(cls, config, use_regular_nms: bool = False, max_detections: int | None = None) -> "PostprocessOp":
        """The op an :class:`~finetune.tasks.ssd.SSDConfig`'s post-processing and box coder describe."""
        post, coder = config.postprocess, config.box_coder
        return cls(num_classes=config.num_classes, max_detections=max_detections or post.max_total_detections,
                   detections_per_class=post.max_detections_per_class, use_regular_nms=use_regular_nms,
                   nms_score_threshold=post.score_threshold, nms_iou_threshold=post.iou_threshold,
                   y_scale=coder.y_scale, x_scale=coder.x_scale, h_scale=coder.height_scale,
                   w_scale=coder.width_scale)

    def implements(self) -> str:
        """The ``experimental_implements`` text: the op name and its attributes as NameAttrList text format."""
        attrs = []
        for name, value in vars(self).items():
            if isinstance(value, bool):
                attrs.append(f'attr {{ key: "{name}" value {{ b: {str(value).lower()} }} }}')
            elif isinstance(value, int):
                attrs.append(f'attr {{ key: "{name}" value {{ i: {value} }} }}')
            else:
                attrs.append(f'attr {{ key: "{name}" value {{ f: {float(value)!r} }} }}')
        return " ".join([f'name: "{POSTPROCESS_OP}"', *attrs])


def center_size_anchors(anchors: np.ndarray) -> np.ndarray:
    """Corner anchors ``[A, 4]`` (ymin, xmin, ymax, xmax) as the op takes them: ``[A, 4]`` (yc, xc, h, w)."""
    a = np.asarray(anchors, np.float64)
    out = np.stack([(a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2, a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]], axis=1)
    return out.astype(np.float32)


def tflite_function(model, anchors, config, image_size, nms: str = "per_class", max_detections: int | None = None):
    """The tf.function the TFLite converter takes (see the module docstring and :data:`NMS_MODES`)."""
    tf = tensorflow()
    if nms not in NMS_MODES:
        raise ValueError(f"nms {nms!r}: expected one of {', '.join(NMS_MODES)}")
    center_size = tf.constant(center_size_anchors(anchors))
    height, width = image_size
    op = PostprocessOp.from_ssd(config, nms == "regular", max_detections)

    @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="images")])
    def detect(images):
        outputs = model(images, training=False)
        scores = all_scores(outputs["class_predictions_with_background"], config.postprocess)
        if nms != "per_class":
            return zero_padding(*fused_postprocess(op)(outputs["box_encodings"], scores, center_size),
                                op.max_detections)
        return per_class_postprocess(op, outputs["box_encodings"], scores, center_size)

    return detect


def fused_postprocess(op: PostprocessOp):
    """A tf.function the converter replaces with ``op`` (its body only gives the op's output shapes)."""
    tf = tensorflow()
    size = op.max_detections

    @tf.function(experimental_implements=op.implements())
    def detection_postprocess(box_encodings, class_predictions, anchors):  # noqa: ARG001 - fused by the converter
        return tf.zeros([1, size, 4], name="boxes"), tf.zeros([1, size], name="classes"), \
            tf.zeros([1, size], name="scores"), tf.zeros([1], name="num_detections")

    return detection_postprocess


def per_class_postprocess(op: PostprocessOp, box_encodings, scores, anchors) -> dict:
    """Per-class NMS from single-class ops: class ``c``'s scores (beside the background column) through an op
    with ``num_classes=1`` keep its best ``detections_per_class`` boxes after NMS; the candidates of all
    classes are then ranked by score and the best ``max_detections`` kept, as
    ``tf.image.combined_non_max_suppression`` does."""
    tf = tensorflow()
    single = fused_postprocess(dataclasses.replace(op, num_classes=1, max_detections=op.detections_per_class,
                                                   use_regular_nms=False))
    boxes, found_scores, classes = [], [], []
    for c in range(op.num_classes):
        two = tf.concat([scores[:, :, :1], scores[:, :, c + 1:c + 2]], axis=-1)
        found = zero_padding(*single(box_encodings, two, anchors), op.detections_per_class)
        boxes.append(found["detection_boxes"])
        found_scores.append(found["detection_scores"])
        classes.append(tf.fill(tf.shape(found["detection_scores"]), float(c)))
    candidates = tf.concat(found_scores, axis=1)  # [1, classes * per_class]: 0 past each class's count
    best = tf.math.top_k(candidates, k=min(op.max_detections, op.num_classes * op.detections_per_class))
    kept = best.values
    count = tf.reduce_sum(tf.cast(kept > 0.0, tf.float32), axis=1)
    return zero_padding(tf.gather(tf.concat(boxes, axis=1), best.indices, batch_dims=1),
                        tf.gather(tf.concat(classes, axis=1), best.indices, batch_dims=1), kept, count,
                        int(best.values.shape[1]))


def zero_padding(boxes, classes, scores, num_detections, size: int) -> dict:
    """The op's outputs with the rows past ``num_detections`` set to 0: the op leaves them unspecified (whatever
    the arena held, NaN included).  The mask is computed in int32, so int8 conversion leaves it exact."""
    tf = tensorflow()
    real = tf.range(size)[None, :] < tf.cast(num_detections, tf.int32)[:, None]
    return {"detection_boxes": tf.where(real[..., None], boxes, 0.0), "detection_classes": tf.where(real, classes, 0.0),
            "detection_scores": tf.where(real, scores, 0.0), "num_detections": num_detections}


def all_scores(logits, post):
    """``score_converter`` over all ``num_classes + 1`` columns, background kept (first), as the op takes them;
    ``finetune.tasks.ssd._postprocess.convert_scores`` is the same with the background column dropped."""
    tf = tensorflow()
    scaled = logits / post.logit_scale
    if post.score_converter == "sigmoid":
        return tf.sigmoid(scaled)
    if post.score_converter == "softmax":
        return tf.nn.softmax(scaled, axis=-1)
    return scaled
