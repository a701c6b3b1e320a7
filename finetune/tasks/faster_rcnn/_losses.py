"""Faster R-CNN's targets and losses as in the OD API's ``FasterRCNNMetaArch._loss_rpn`` and
``_loss_box_classifier``.

RPN: anchors matched to ground truth at IoU 0.7 / 0.3 (each box claims its
best anchor), a balanced sample of ``first_stage_minibatch_size`` anchors per
image, smooth L1 on the positives' box codes and 2-way softmax cross entropy on
objectness, each summed over the sample and divided by its size.  Box
classifier: proposals matched at IoU 0.5, softmax cross entropy over
``num_classes + 1`` and smooth L1 on the codes of the matched class, averaged
over each image's proposals.  Both are averaged over the batch and weighted.
"""
from __future__ import annotations

from migrate.tf import tensorflow

from ..ssd._box_coder import BoxCoder
from ..ssd._matcher import IGNORED, MatcherConfig, argmax_match, iou, valid_rows
from ._sampler import balanced_sample

RPN_MATCHER = MatcherConfig(matched_threshold=0.7, unmatched_threshold=0.3, force_match_for_each_row=True)
DETECTION_MATCHER = MatcherConfig(matched_threshold=0.5, unmatched_threshold=0.5, force_match_for_each_row=False)
BOX_CODER = BoxCoder()  # scale factors 10, 10, 5, 5 for both stages


def smooth_l1(predictions, targets, delta: float = 1.0):
    """Huber loss summed over the last axis (the box code)."""
    tf = tensorflow()
    error = tf.abs(predictions - targets)
    return tf.reduce_sum(tf.where(error < delta, 0.5 * error ** 2, delta * (error - 0.5 * delta)), axis=-1)


def existing(num_proposals, count):
    """bool ``[B, count]``: which of the padded proposal rows hold a proposal."""
    tf = tensorflow()
    return tf.range(count)[None, :] < num_proposals[:, None]


def match(boxes, classes, num_boxes, candidates, matcher: MatcherConfig):
    """(match values ``[B, M]``, valid ground-truth rows ``[B, N]``) of ``candidates`` (``[M, 4]`` or
    ``[B, M, 4]``) against the batch's ground truth."""
    valid = valid_rows(classes, num_boxes)
    return argmax_match(iou(boxes, candidates), valid, matcher), valid


def rpn_loss(outputs: dict, batch: dict, anchors, usable, config, seed) -> dict:
    """``{"rpn_localization", "rpn_objectness"}``: the first stage's weighted losses.  ``usable`` (bool
    ``[A]``) marks anchors that may be sampled (inside the image unless anchors are clipped)."""
    tf = tensorflow()
    boxes = tf.convert_to_tensor(batch["boxes"], tf.float32)
    matches, _ = match(boxes, batch["classes"], batch.get("num_boxes"), anchors, RPN_MATCHER)
    positive = matches >= 0
    candidates = (matches != IGNORED) & usable[None, :]
    sampled = balanced_sample(candidates, positive, config.first_stage_minibatch_size,
                              config.first_stage_positive_balance_fraction, seed)
    weights = tf.cast(sampled, tf.float32)
    normalizer = tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)
    targets = BOX_CODER.encode(tf.gather(boxes, tf.maximum(matches, 0), batch_dims=1), anchors)
    localization = smooth_l1(outputs["rpn_box_encodings"], targets) * weights * tf.cast(positive, tf.float32)
    objectness = tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.one_hot(tf.cast(positive, tf.int32), 2), logits=outputs["rpn_objectness"]) * weights
    return {
        "rpn_localization": config.first_stage_localization_loss_weight * tf.reduce_mean(
            tf.reduce_sum(localization, axis=1) / normalizer),
        "rpn_objectness": config.first_stage_objectness_loss_weight * tf.reduce_mean(
            tf.reduce_sum(objectness, axis=1) / normalizer),
    }


def sample_proposals(proposals, num_proposals, batch: dict, config, seed):
    """(boxes ``[B, S, 4]``, valid ``[B, S]``): ``second_stage_batch_size`` proposals per image, a quarter
    (``second_stage_balance_fraction``) positive at most, as the OD API samples the box classifier's batch.
    Ground-truth boxes are not added (the OD API does not either)."""
    tf = tensorflow()
    size = config.second_stage_batch_size
    matches, _ = match(batch["boxes"], batch["classes"], batch.get("num_boxes"), proposals, DETECTION_MATCHER)
    exists = existing(num_proposals, tf.shape(proposals)[1])
    sampled = balanced_sample(exists & (matches != IGNORED), matches >= 0, size, config.second_stage_balance_fraction,
                              seed)
    order = tf.argsort(tf.cast(~sampled, tf.int32), axis=1, stable=True)[:, :size]  # sampled first, in order
    boxes = tf.gather(proposals, order, batch_dims=1)
    return boxes, tf.gather(sampled, order, batch_dims=1)


def box_classifier_loss(second: dict, proposals, valid, batch: dict, config) -> dict:
    """``{"localization", "classification"}`` of the box classifier's outputs on ``proposals`` ``[B, P, 4]``
    (``valid`` bool ``[B, P]``)."""
    tf = tensorflow()
    boxes = tf.convert_to_tensor(batch["boxes"], tf.float32)
    classes = tf.cast(batch["classes"], tf.int32)
    matches, _ = match(boxes, classes, batch.get("num_boxes"), proposals, DETECTION_MATCHER)
    positive = (matches >= 0) & valid
    index = tf.maximum(matches, 0)
    labels = tf.where(positive, tf.gather(classes, index, batch_dims=1), 0)  # 0: background
    weights = tf.cast(valid & (matches != IGNORED), tf.float32)
    normalizer = tf.maximum(tf.reduce_sum(tf.cast(valid, tf.float32), axis=1, keepdims=True), 1.0)
    logits = second["class_predictions_with_background"]
    classification = tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.one_hot(labels, config.num_classes + 1), logits=logits) * weights
    codes = second["box_encodings"]  # [B, P, classes or 1, 4]
    if codes.shape[2] == 1:
        chosen = codes[:, :, 0]
    else:
        chosen = tf.gather(codes, tf.maximum(labels - 1, 0), batch_dims=2)
    targets = BOX_CODER.encode(tf.gather(boxes, index, batch_dims=1), proposals)
    localization = smooth_l1(chosen, targets) * tf.cast(positive, tf.float32)
    return {
        "localization": config.second_stage_localization_loss_weight * tf.reduce_mean(
            tf.reduce_sum(localization / normalizer, axis=1)),
        "classification": config.second_stage_classification_loss_weight * tf.reduce_mean(
            tf.reduce_sum(classification / normalizer, axis=1)),
    }
