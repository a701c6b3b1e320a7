"""finetune.tasks.ssd: faster_rcnn box coder, IoU, argmax matcher and target assignment."""
from __future__ import annotations

import numpy as np
import pytest

from finetune.tasks.ssd import BoxCoder, MatcherConfig, assign_targets
from finetune.tasks.ssd._matcher import IGNORED, UNMATCHED, argmax_match, iou


def test_encode_known_values():
    coder = BoxCoder()
    anchors = np.array([[0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.4, 0.6]], np.float32)
    boxes = np.array([[0.1, 0.1, 1.1, 1.1], [0.2, 0.2, 0.4, 0.6]], np.float32)
    codes = coder.encode(boxes, anchors).numpy()
    np.testing.assert_allclose(codes[0], [1.0, 1.0, 0.0, 0.0], atol=1e-5)  # 10 * 0.1 / 1
    np.testing.assert_allclose(codes[1], [0.0, 0.0, 0.0, 0.0], atol=1e-5)
    doubled = coder.encode([[0.0, 0.0, 2.0, 0.5]], [[0.0, 0.0, 1.0, 1.0]]).numpy()[0]
    np.testing.assert_allclose(doubled, [5.0, -2.5, 5 * np.log(2.0), 5 * np.log(0.5)], atol=1e-5)


def test_roundtrip_broadcasts_over_batch():
    rng = np.random.default_rng(0)
    corners = np.sort(rng.uniform(0, 1, (3, 7, 2, 2)), axis=2)  # [B, A, (min, max), (y, x)]
    boxes = np.stack([corners[:, :, 0, 0], corners[:, :, 0, 1], corners[:, :, 1, 0], corners[:, :, 1, 1]], -1)
    anchor_corners = np.sort(rng.uniform(0, 1, (7, 2, 2)), axis=1)
    anchors = np.stack([anchor_corners[:, 0, 0], anchor_corners[:, 0, 1],
                        anchor_corners[:, 1, 0], anchor_corners[:, 1, 1]], -1)
    for coder in (BoxCoder(), BoxCoder(1.0, 1.0, 1.0, 1.0)):
        codes = coder.encode(boxes.astype(np.float32), anchors.astype(np.float32))
        assert codes.shape == (3, 7, 4)
        np.testing.assert_allclose(coder.decode(codes, anchors.astype(np.float32)).numpy(), boxes, atol=1e-5)


def test_iou_pairs():
    a = np.array([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]], np.float32)
    b = np.array([[0.0, 0.5, 1.0, 1.5], [2.0, 2.0, 3.0, 3.0], [0.0, 0.0, 1.0, 1.0]], np.float32)
    np.testing.assert_allclose(iou(a, b).numpy(), [[[1 / 3, 0.0, 1.0], [0.0, 0.0, 0.0]]], atol=1e-6)


def test_argmax_matcher_thresholds_and_force_match():
    similarity = np.array([[[0.6, 0.4, 0.1, 0.0],
                            [0.2, 0.3, 0.45, 0.3]]], np.float32)
    valid = np.array([[True, True]])
    plain = MatcherConfig(matched_threshold=0.5, unmatched_threshold=0.4, force_match_for_each_row=False)
    assert argmax_match(similarity, valid, plain).numpy().tolist() == [[0, IGNORED, IGNORED, UNMATCHED]]
    forced = MatcherConfig(matched_threshold=0.5, unmatched_threshold=0.4)
    assert argmax_match(similarity, valid, forced).numpy().tolist() == [[0, IGNORED, 1, UNMATCHED]]
    swapped = MatcherConfig(0.5, 0.4, negatives_lower_than_unmatched=False, force_match_for_each_row=False)
    assert argmax_match(similarity, valid, swapped).numpy().tolist() == [[0, UNMATCHED, UNMATCHED, IGNORED]]


def test_padded_rows_never_match():
    similarity = np.array([[[0.6, 0.1], [0.9, 0.8]]], np.float32)
    matches = argmax_match(similarity, np.array([[True, False]]), MatcherConfig())
    assert matches.numpy().tolist() == [[0, UNMATCHED]]


def test_force_match_first_row_wins_a_shared_anchor():
    similarity = np.array([[[0.3, 0.1], [0.2, 0.0]]], np.float32)
    matches = argmax_match(similarity, np.array([[True, True]]), MatcherConfig())
    assert matches.numpy().tolist() == [[0, UNMATCHED]]


def test_matcher_rejects_crossed_thresholds():
    with pytest.raises(ValueError, match="unmatched_threshold <= matched_threshold"):
        MatcherConfig(matched_threshold=0.4, unmatched_threshold=0.5)


def test_assign_targets_batched():
    anchors = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0]], np.float32)
    boxes = np.array([[[0.0, 0.0, 0.5, 0.45], [0.0, 0.5, 0.5, 1.0]],
                      [[0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]], np.float32)
    classes = np.array([[2, 1], [3, 0]], np.int32)
    targets = assign_targets(anchors, boxes, classes, np.array([2, 1]), num_classes=3)
    assert targets.matches.numpy().tolist() == [[0, UNMATCHED, 1], [UNMATCHED, 0, UNMATCHED]]
    assert targets.cls_targets.shape == (2, 3, 4)
    assert np.argmax(targets.cls_targets.numpy(), -1).tolist() == [[2, 0, 1], [0, 3, 0]]
    assert targets.reg_weights.numpy().tolist() == [[1, 0, 1], [0, 1, 0]]
    assert targets.cls_weights.numpy().tolist() == [[1, 1, 1], [1, 1, 1]]
    expected = BoxCoder().encode(boxes[0, 0], anchors[0]).numpy()
    np.testing.assert_allclose(targets.reg_targets.numpy()[0, 0], expected, atol=1e-5)
    np.testing.assert_allclose(targets.reg_targets.numpy()[1, 0], 0.0)


def test_ignored_anchors_have_no_classification_weight():
    anchors = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.3]], np.float32)
    boxes = np.array([[[0.0, 0.0, 0.5, 0.5]]], np.float32)  # IoU 1.0 and 0.6
    targets = assign_targets(anchors, boxes, np.array([[1]]), np.array([1]), num_classes=1,
                             matcher=MatcherConfig(matched_threshold=0.7, unmatched_threshold=0.3))
    assert targets.matches.numpy().tolist() == [[0, IGNORED]]
    assert targets.cls_weights.numpy().tolist() == [[1.0, 0.0]]
    assert targets.cls_targets.numpy()[0, 1].tolist() == [1.0, 0.0]  # background, weight 0


def test_label_above_num_classes_is_refused():
    from migrate._tf import tensorflow

    with pytest.raises(tensorflow().errors.InvalidArgumentError, match="above num_classes=2"):
        assign_targets(np.zeros((1, 4), np.float32), np.zeros((1, 1, 4), np.float32), np.array([[3]]),
                       np.array([1]), num_classes=2)
