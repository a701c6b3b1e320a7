"""IoU similarity, the OD API's ``argmax_matcher`` and SSD target assignment, batched.

Everything works on padded batches: ground truth ``[B, N, 4]`` with
``num_boxes [B]`` valid rows, anchors ``[A, 4]``.  Padded rows never match.

Match values per anchor (as ``core.matcher.Match``): ``>= 0`` the index of the
matched ground-truth box, ``-1`` unmatched (a negative, background),
``-2`` ignored (no classification or localisation loss).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from migrate.tf import tensorflow

from ._box_coder import BoxCoder

UNMATCHED = -1
IGNORED = -2


def iou(boxes1, boxes2):
    """Pairwise IoU ``[..., N, M]`` of ``[..., N, 4]`` and ``[..., M, 4]`` boxes (0 where disjoint)."""
    tf = tensorflow()
    b1 = tf.expand_dims(tf.convert_to_tensor(boxes1, tf.float32), -2)  # [..., N, 1, 4]
    b2 = tf.expand_dims(tf.convert_to_tensor(boxes2, tf.float32), -3)  # [..., 1, M, 4]
    heights = tf.maximum(0.0, tf.minimum(b1[..., 2], b2[..., 2]) - tf.maximum(b1[..., 0], b2[..., 0]))
    widths = tf.maximum(0.0, tf.minimum(b1[..., 3], b2[..., 3]) - tf.maximum(b1[..., 1], b2[..., 1]))
    intersections = heights * widths
    areas1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    areas2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    unions = areas1 + areas2 - intersections
    return tf.where(intersections > 0.0, intersections / tf.where(unions > 0.0, unions, 1.0), 0.0)


@dataclass(frozen=True)
class MatcherConfig:
    """``argmax_matcher`` of an OD API pipeline.config."""

    matched_threshold: float = 0.5
    unmatched_threshold: float = 0.5
    negatives_lower_than_unmatched: bool = True
    force_match_for_each_row: bool = True

    def __post_init__(self):
        if self.unmatched_threshold > self.matched_threshold:
            raise ValueError(f"argmax_matcher: expected unmatched_threshold <= matched_threshold, got "
                             f"{self.unmatched_threshold} > {self.matched_threshold}")
        if self.unmatched_threshold == self.matched_threshold and not self.negatives_lower_than_unmatched:
            raise ValueError("argmax_matcher: with negatives_lower_than_unmatched=false the thresholds must "
                             f"differ, got both {self.matched_threshold}")


def argmax_match(similarity, valid, config: MatcherConfig):
    """Match values ``[B, A]`` (int32) for a similarity ``[B, N, A]`` with valid rows ``[B, N]``."""
    tf = tensorflow()
    valid = tf.cast(valid, tf.bool)
    similarity = tf.where(valid[:, :, None], similarity, -1.0)  # padding loses every argmax
    matches = tf.argmax(similarity, axis=1, output_type=tf.int32)
    matched_vals = tf.reduce_max(similarity, axis=1)
    below = matched_vals < config.unmatched_threshold
    between = (matched_vals >= config.unmatched_threshold) & (matched_vals < config.matched_threshold)
    below_value, between_value = (UNMATCHED, IGNORED) if config.negatives_lower_than_unmatched \
        else (IGNORED, UNMATCHED)
    matches = tf.where(below, below_value, tf.where(between, between_value, matches))
    if config.force_match_for_each_row:
        # Each valid row claims its best anchor; when rows claim the same anchor the first row wins.
        best_anchor = tf.argmax(similarity, axis=2, output_type=tf.int32)  # [B, N]
        claims = tf.one_hot(best_anchor, tf.shape(similarity)[2], dtype=tf.float32)
        claims = claims * tf.cast(valid, tf.float32)[:, :, None]  # [B, N, A]
        forced_row = tf.argmax(claims, axis=1, output_type=tf.int32)
        forced = tf.reduce_max(claims, axis=1) > 0.0
        matches = tf.where(forced, forced_row, matches)
    return matches


class Targets(NamedTuple):
    """Per-anchor training targets of a batch (``K`` = num_classes + 1, background at 0)."""

    cls_targets: object  # float32 [B, A, K] one-hot, background for unmatched and ignored
    cls_weights: object  # float32 [B, A]: 1 matched and unmatched, 0 ignored
    reg_targets: object  # float32 [B, A, 4] encoded boxes, 0 where not matched
    reg_weights: object  # float32 [B, A]: 1 matched, 0 otherwise
    matches: object  # int32 [B, A] match values (>= 0, UNMATCHED, IGNORED)


def valid_rows(classes, num_boxes=None):
    """``[B, N]`` mask of real ground-truth rows: below ``num_boxes`` and with a label id > 0."""
    tf = tensorflow()
    classes = tf.convert_to_tensor(classes)
    valid = classes > 0
    if num_boxes is not None:
        rows = tf.range(tf.shape(classes)[1])[None, :]
        valid &= rows < tf.cast(num_boxes, tf.int32)[:, None]
    return valid


def assign_targets(anchors, boxes, classes, num_boxes, num_classes: int,
                   matcher: MatcherConfig = MatcherConfig(), box_coder: BoxCoder = BoxCoder()) -> Targets:
    """SSD targets for anchors ``[A, 4]`` and ground truth ``boxes [B, N, 4]``, ``classes [B, N]`` (1-based)."""
    tf = tensorflow()
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    classes = tf.cast(classes, tf.int32)
    valid = valid_rows(classes, num_boxes)
    tf.debugging.assert_less_equal(
        tf.reduce_max(tf.where(valid, classes, 0)), num_classes,
        message=f"ground truth has a label id above num_classes={num_classes}; label ids are 1-based "
                f"and 0 is padding: check the label map or set num_classes")
    matches = argmax_match(iou(boxes, anchors), valid, matcher)
    positive = matches >= 0
    index = tf.maximum(matches, 0)
    matched_boxes = tf.gather(boxes, index, batch_dims=1)  # [B, A, 4]
    matched_classes = tf.where(positive, tf.gather(classes, index, batch_dims=1), 0)
    reg_targets = tf.where(positive[..., None], box_coder.encode(matched_boxes, anchors), 0.0)
    return Targets(
        cls_targets=tf.one_hot(matched_classes, num_classes + 1, dtype=tf.float32),
        cls_weights=tf.cast(matches != IGNORED, tf.float32),
        reg_targets=reg_targets,
        reg_weights=tf.cast(positive, tf.float32),
        matches=matches,
    )
