"""Between and after the stages: the RPN's proposals and the detector's detections.

Proposals (``FasterRCNNMetaArch._postprocess_rpn``): box codes decoded against
the anchors, scored by the objectness softmax, clipped to the image and
reduced by NMS to ``first_stage_max_proposals`` per image; no gradient flows
through them.  Detections (``_postprocess_box_classifier``): each proposal's
per-class codes decoded against it, softmax scores without background,
per-class NMS, clipped to the image.  Coordinates are normalised throughout:
the box coder's codes do not depend on the frame.
"""
from __future__ import annotations

from migrate.tf import tensorflow

from ..ssd._postprocess import convert_scores
from ._losses import BOX_CODER, existing


def proposals(rpn_box_encodings, rpn_objectness, anchors, config):
    """(boxes ``[B, M, 4]``, count ``[B]`` int32), ``M = first_stage_max_proposals``, best first."""
    tf = tensorflow()
    boxes = BOX_CODER.decode(rpn_box_encodings, anchors)
    scores = tf.nn.softmax(rpn_objectness, axis=-1)[..., 1]
    most = config.first_stage_max_proposals
    nmsed = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], scores[:, :, None], max_output_size_per_class=most, max_total_size=most,
        iou_threshold=config.first_stage_nms_iou_threshold, score_threshold=config.first_stage_nms_score_threshold,
        pad_per_class=False, clip_boxes=True)
    return tf.stop_gradient(nmsed.nmsed_boxes), tf.cast(nmsed.valid_detections, tf.int32)


def detections(box_encodings, class_logits, proposal_boxes, num_proposals, config) -> dict:
    """``boxes [B, D, 4]``, ``classes [B, D]`` (1-based), ``scores [B, D]``, ``num_detections [B]``,
    ``D = max_total_detections``: the box classifier's outputs on each image's proposals, post-processed."""
    tf = tensorflow()
    boxes = BOX_CODER.decode(box_encodings, proposal_boxes[:, :, None, :])  # [B, P, classes or 1, 4]
    scores = convert_scores(class_logits, config.postprocess)
    scores = tf.where(existing(num_proposals, tf.shape(scores)[1])[..., None], scores, -1.0)
    post = config.postprocess
    nmsed = tf.image.combined_non_max_suppression(
        boxes, scores, max_output_size_per_class=post.max_detections_per_class,
        max_total_size=post.max_total_detections, iou_threshold=post.iou_threshold,
        score_threshold=post.score_threshold, pad_per_class=False, clip_boxes=True)
    num = tf.cast(nmsed.valid_detections, tf.int32)
    real = existing(num, tf.shape(nmsed.nmsed_scores)[1])
    return {"boxes": nmsed.nmsed_boxes, "classes": tf.where(real, tf.cast(nmsed.nmsed_classes, tf.int32) + 1, 0),
            "scores": nmsed.nmsed_scores, "num_detections": num}
