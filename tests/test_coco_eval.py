"""finetune.tasks.ssd COCO metrics (pycocotools, in memory)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from finetune.tasks.ssd import CocoEvaluator, coco_metrics

GT = [
    (np.array([[0.1, 0.1, 0.4, 0.5], [0.5, 0.5, 0.9, 0.8]]), np.array([1, 2])),
    (np.array([[0.2, 0.3, 0.7, 0.9]]), np.array([1])),
]


def _perfect():
    return [(boxes, np.full(len(classes), 0.9), classes) for boxes, classes in GT]


def test_perfect_detections_score_one(capsys):
    metrics = coco_metrics(GT, _perfect(), num_classes=3, image_size=(300, 300),
                           category_names={1: "cat", 2: "dog", 3: "bird"})
    for name in ("mAP", "mAP@0.5", "mAP@0.75", "AR@100", "AP@0.5/cat", "AP@0.5/dog"):
        assert metrics[name] == pytest.approx(1.0), name
    assert "AP@0.5/bird" not in metrics  # no ground truth: AP undefined
    assert capsys.readouterr().out == ""  # pycocotools' prints are silenced


def test_shifted_boxes_score_lower():
    shifted = [(boxes + np.array([0.03, 0.03, 0.03, 0.03]), scores, classes)
               for boxes, scores, classes in _perfect()]
    metrics = coco_metrics(GT, shifted, num_classes=2, image_size=(300, 300))
    assert metrics["mAP@0.5"] == pytest.approx(1.0)  # IoU still above 0.5
    assert 0.0 < metrics["mAP"] < 1.0
    assert metrics["mAP@0.75"] < 1.0


def test_wrong_class_and_extra_detections():
    wrong = [(boxes, scores, 3 - classes) for boxes, scores, classes in _perfect()]  # swaps 1 and 2
    assert coco_metrics(GT, wrong, num_classes=2)["mAP"] == pytest.approx(0.0)
    extra = [(np.concatenate([b, [[0.0, 0.0, 0.05, 0.05]]]), np.concatenate([s, [0.1]]), np.concatenate([c, [1]]))
             for b, s, c in _perfect()]  # a low-scoring false positive ranks after the true ones
    assert coco_metrics(GT, extra, num_classes=2)["mAP"] == pytest.approx(1.0)


def test_empty_detections_score_zero():
    empty = [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)) for _ in GT]
    metrics = coco_metrics(GT, empty, num_classes=2)
    assert metrics["mAP"] == 0.0 and metrics["mAP@0.5"] == 0.0 and metrics["AR@100"] == 0.0
    assert metrics["AP@0.5/1"] == 0.0


def test_add_batch_reads_padded_batches():
    evaluator = CocoEvaluator(num_classes=2)
    batch = {"image": np.zeros((2, 64, 64, 3)), "boxes": np.zeros((2, 3, 4)), "classes": np.zeros((2, 3), int),
             "num_boxes": np.array([2, 1])}
    batch["boxes"][0, :2], batch["classes"][0, :2] = GT[0]
    batch["boxes"][1, :1], batch["classes"][1, :1] = GT[1]
    detections = {"boxes": batch["boxes"].copy(), "classes": batch["classes"].copy(),
                  "scores": np.where(batch["classes"] > 0, 0.8, 0.0), "num_detections": np.array([2, 1])}
    evaluator.add_batch(batch, detections)
    assert evaluator.result()["mAP"] == pytest.approx(1.0)


def test_undefined_metrics_are_nan_and_empty_split_is_refused():
    no_gt = coco_metrics([(np.zeros((0, 4)), np.zeros(0))], [(np.zeros((0, 4)), np.zeros(0), np.zeros(0))],
                         num_classes=1)
    assert math.isnan(no_gt["mAP"])
    with pytest.raises(ValueError, match="no images were added"):
        CocoEvaluator(num_classes=1).result()
