"""finetune.tasks.ssd losses: toy tensors with values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from finetune.tasks.ssd import HardExampleMinerConfig, LossConfig
from finetune.tasks.ssd._losses import (hard_example_mask, sigmoid_classification_loss, sigmoid_focal_loss,
                                        smooth_l1_localization_loss, softmax_classification_loss, ssd_loss)
from finetune.tasks.ssd._matcher import Targets

LOG2 = math.log(2.0)


def test_weighted_sigmoid():
    logits = np.array([[[0.0, 0.0], [2.0, 0.0]]], np.float32)
    targets = np.array([[[1.0, 0.0], [1.0, 1.0]]], np.float32)
    loss = sigmoid_classification_loss(logits, targets, np.array([[1.0, 0.5]], np.float32)).numpy()
    np.testing.assert_allclose(loss, [[[LOG2, LOG2], [0.5 * math.log1p(math.exp(-2)), 0.5 * LOG2]]], rtol=1e-5)


def test_weighted_softmax():
    logits = np.array([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]], np.float32)
    targets = np.array([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]], np.float32)
    loss = softmax_classification_loss(logits, targets, np.array([[1.0, 2.0]], np.float32)).numpy()
    np.testing.assert_allclose(loss, [[math.log(3.0), 2 * math.log1p(2 * math.exp(-2))]], rtol=1e-5)
    scaled = softmax_classification_loss(logits, targets, np.ones((1, 2), np.float32), logit_scale=2.0).numpy()
    np.testing.assert_allclose(scaled[0, 1], math.log1p(2 * math.exp(-1)), rtol=1e-5)


def test_sigmoid_focal():
    logits = np.zeros((1, 1, 2), np.float32)
    targets = np.array([[[1.0, 0.0]]], np.float32)
    loss = sigmoid_focal_loss(logits, targets, np.ones((1, 1), np.float32), gamma=2.0, alpha=0.25).numpy()
    # p_t = 0.5 -> (1 - p_t)^2 = 0.25; alpha_t = 0.25 for the positive, 0.75 for the negative
    np.testing.assert_allclose(loss, [[[0.25 * 0.25 * LOG2, 0.25 * 0.75 * LOG2]]], rtol=1e-5)
    plain = sigmoid_focal_loss(logits + 1.5, targets, np.ones((1, 1), np.float32), gamma=0.0, alpha=None)
    expected = sigmoid_classification_loss(logits + 1.5, targets, np.ones((1, 1), np.float32))
    np.testing.assert_allclose(plain.numpy(), expected.numpy(), rtol=1e-6)


def test_smooth_l1():
    predictions = np.array([[[0.5, 2.0, 0.0, -3.0], [1.0, 1.0, 1.0, 1.0]]], np.float32)
    targets = np.zeros_like(predictions)
    loss = smooth_l1_localization_loss(predictions, targets, np.array([[1.0, 0.0]], np.float32)).numpy()
    np.testing.assert_allclose(loss, [[0.125 + 1.5 + 0.0 + 2.5, 0.0]], rtol=1e-6)
    wide = smooth_l1_localization_loss(predictions, targets, np.array([[1.0, 0.0]], np.float32), delta=2.0)
    np.testing.assert_allclose(wide.numpy()[0, 0], 0.125 + 2.0 + 0.0 + 4.0, rtol=1e-6)


def _grid_boxes(n):
    return np.array([[[0.0, i, 0.5, i + 0.5] for i in range(n)]], np.float32)


def _mine(cls_losses, positive, negative, boxes=None, **config):
    cls_losses = np.array([cls_losses], np.float32)
    boxes = _grid_boxes(cls_losses.shape[1]) if boxes is None else boxes
    return hard_example_mask(cls_losses, np.zeros_like(cls_losses), boxes, np.array([positive]),
                             np.array([negative]), HardExampleMinerConfig(**config)).numpy()[0].tolist()


POS = [True, False, False, False, False, False]
NEG = [False, True, True, True, True, True]


def test_hard_mining_keeps_top_negatives_per_positive():
    losses = [0.1, 0.9, 0.2, 0.8, 0.3, 0.05]
    assert _mine(losses, POS, NEG, max_negatives_per_positive=2) == [1, 1, 0, 1, 0, 0]
    assert _mine(losses, POS, NEG, max_negatives_per_positive=None, num_hard_examples=3) == [0, 1, 0, 1, 1, 0]


def test_hard_mining_nms_removes_duplicate_boxes():
    boxes = _grid_boxes(6)
    boxes[0, 3] = boxes[0, 1]  # anchor 3 duplicates anchor 1 (IoU 1 > 0.99)
    assert _mine([0.1, 0.9, 0.2, 0.8, 0.3, 0.05], POS, NEG, boxes, max_negatives_per_positive=2) == \
        [1, 1, 0, 0, 1, 0]


def test_hard_mining_min_negatives_without_positives():
    no_pos = [False] * 6
    assert _mine([0.1, 0.9, 0.2, 0.8, 0.3, 0.05], no_pos, NEG, min_negatives_per_image=1) == [0, 1, 0, 0, 0, 0]
    assert _mine([0.1, 0.9, 0.2, 0.8, 0.3, 0.05], no_pos, NEG) == [0] * 6


def test_hard_mining_loss_type_both():
    cls_losses = np.array([[0.0, 1.0, 0.0]], np.float32)
    loc_losses = np.array([[0.0, 0.0, 2.0]], np.float32)
    config = HardExampleMinerConfig(num_hard_examples=1, loss_type="both", max_negatives_per_positive=None)

    def mine(loc_weight):
        return hard_example_mask(cls_losses, loc_losses, _grid_boxes(3), np.zeros((1, 3), bool),
                                 np.ones((1, 3), bool), config, cls_weight=1.0, loc_weight=loc_weight)

    assert mine(0.4).numpy().tolist() == [[0.0, 1.0, 0.0]]  # 1.0 * 1 > 0.4 * 2
    assert mine(0.6).numpy().tolist() == [[0.0, 0.0, 1.0]]  # 1.0 * 1 < 0.6 * 2


def _targets(matches, num_classes=1):
    matches = np.array([matches], np.int32)
    positive = (matches >= 0).astype(np.float32)
    cls = np.where(matches >= 0, 1, 0)
    return Targets(cls_targets=np.eye(num_classes + 1, dtype=np.float32)[cls],
                   cls_weights=(matches != -2).astype(np.float32),
                   reg_targets=np.zeros(matches.shape + (4,), np.float32),
                   reg_weights=positive, matches=matches)


def test_ssd_loss_normalised_by_matches():
    targets = _targets([0, 1, -1, -2])  # 2 matches, 1 negative, 1 ignored
    encodings = np.full((1, 4, 4), 0.5, np.float32)  # 0.125 per coordinate -> 0.5 per anchor
    logits = np.zeros((1, 4, 2), np.float32)  # log 2 per entry -> 2 log 2 per weighted anchor
    losses = ssd_loss(encodings, logits, targets, None, LossConfig(hard_example_miner=None))
    assert float(losses["localization"]) == pytest.approx(2 * 0.5 / 2)
    assert float(losses["classification"]) == pytest.approx(3 * 2 * LOG2 / 2, rel=1e-5)
    by_codesize = ssd_loss(encodings, logits, targets, None,
                           LossConfig(hard_example_miner=None, normalize_loc_loss_by_codesize=True,
                                      localization_weight=2.0))
    assert float(by_codesize["localization"]) == pytest.approx(2.0 * 1.0 / (2 * 4))
    unnormalised = ssd_loss(encodings, logits, targets, None,
                            LossConfig(hard_example_miner=None, normalize_loss_by_num_matches=False))
    assert float(unnormalised["classification"]) == pytest.approx(3 * 2 * LOG2, rel=1e-5)


def test_ssd_loss_with_hard_mining_and_no_matches():
    targets = _targets([-1, -1, -1])
    logits = np.array([[[3.0, 0.0], [0.0, 0.0], [-3.0, 0.0]]], np.float32)  # background logit
    miner = HardExampleMinerConfig(max_negatives_per_positive=3, min_negatives_per_image=1)
    losses = ssd_loss(np.zeros((1, 3, 4), np.float32), logits, targets, _grid_boxes(3),
                      LossConfig(hard_example_miner=miner))
    # only the hardest negative (background logit -3) counts; normaliser max(0 matches, 1) = 1
    assert float(losses["classification"]) == pytest.approx(math.log1p(math.exp(3.0)) + LOG2, rel=1e-5)
    assert float(losses["localization"]) == 0.0


def test_focal_configuration_is_checked():
    with pytest.raises(ValueError, match="expected classification in"):
        LossConfig(classification="hinge")
    with pytest.raises(ValueError, match="expected loss_type in"):
        HardExampleMinerConfig(loss_type="cls")
