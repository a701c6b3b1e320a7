"""COCO detection metrics through pycocotools, built in memory (no JSON files, no prints).

Boxes arrive as the data layer and post-processing give them: normalised
``(ymin, xmin, ymax, xmax)`` with 1-based label ids, and are converted to COCO
``[x, y, width, height]`` in pixels of the given image size (the size only
matters for the small/medium/large area ranges).

Metrics (``-1`` from pycocotools, "undefined", becomes NaN):

``mAP``            AP averaged over IoU .50:.05:.95, all areas, 100 detections
``mAP@0.5``        AP at IoU .50
``mAP@0.75``       AP at IoU .75
``mAP_small`` ...  AP over IoU .50:.95 per area range
``AR@1/10/100``    recall averaged over IoU .50:.95 with 1/10/100 detections per image
``AP@0.5/<name>``  AP at IoU .50 of each class that has ground truth
"""
from __future__ import annotations

import contextlib
import io
import math

import numpy as np

_STATS = ("mAP", "mAP@0.5", "mAP@0.75", "mAP_small", "mAP_medium", "mAP_large",
          "AR@1", "AR@10", "AR@100", "AR@100_small", "AR@100_medium", "AR@100_large")
# the names the OD API's COCO evaluator gives the same statistics (its TensorBoard tags)
ODAPI_TAGS = dict(zip(_STATS, (
    "DetectionBoxes_Precision/mAP", "DetectionBoxes_Precision/mAP@.50IOU", "DetectionBoxes_Precision/mAP@.75IOU",
    "DetectionBoxes_Precision/mAP (small)", "DetectionBoxes_Precision/mAP (medium)",
    "DetectionBoxes_Precision/mAP (large)", "DetectionBoxes_Recall/AR@1", "DetectionBoxes_Recall/AR@10",
    "DetectionBoxes_Recall/AR@100", "DetectionBoxes_Recall/AR@100 (small)", "DetectionBoxes_Recall/AR@100 (medium)",
    "DetectionBoxes_Recall/AR@100 (large)")))


def odapi_tag(name: str) -> str:
    """The OD API's TensorBoard tag for one of ckptkit's SSD metric or loss names (others unchanged)."""
    if name in ODAPI_TAGS:
        return ODAPI_TAGS[name]
    if name.startswith("AP@0.5/"):
        return f"DetectionBoxes_PerformanceByCategory/mAP@.50IOU/{name.split('/', 1)[1]}"
    if name.startswith("loss/"):
        return f"Loss/{name.split('/', 1)[1]}_loss"
    return name


class CocoEvaluator:
    """Accumulates ground truth and detections image by image, then computes COCO metrics."""

    def __init__(self, num_classes: int, category_names: dict[int, str] | None = None):
        names = category_names or {}
        self.categories = [{"id": i, "name": str(names.get(i, i))} for i in range(1, num_classes + 1)]
        self._images: list[dict] = []
        self._groundtruth: list[dict] = []
        self._detections: list[dict] = []

    def add_image(self, gt_boxes, gt_classes, det_boxes=(), det_scores=(), det_classes=(),
                  image_size=(1, 1)) -> None:
        """One image: ground truth ``[N, 4]``, ``[N]`` and detections ``[M, 4]``, ``[M]``, ``[M]``."""
        image_id = len(self._images) + 1
        height, width = (float(d) for d in image_size)
        self._images.append({"id": image_id, "height": height, "width": width})
        for box, label in zip(np.reshape(gt_boxes, (-1, 4)), np.reshape(gt_classes, (-1,))):
            bbox = _coco_box(box, height, width)
            self._groundtruth.append({"id": len(self._groundtruth) + 1, "image_id": image_id,
                                      "category_id": int(label), "bbox": bbox,
                                      "area": bbox[2] * bbox[3], "iscrowd": 0})
        for box, score, label in zip(np.reshape(det_boxes, (-1, 4)), np.reshape(det_scores, (-1,)),
                                     np.reshape(det_classes, (-1,))):
            bbox = _coco_box(box, height, width)
            self._detections.append({"id": len(self._detections) + 1, "image_id": image_id,
                                     "category_id": int(label), "bbox": bbox, "score": float(score),
                                     "area": bbox[2] * bbox[3], "iscrowd": 0})

    def add_batch(self, batch: dict, detections: dict) -> None:
        """A padded batch (``boxes``, ``classes``, ``num_boxes``, ``image``) and its post-processed
        detections (``boxes``, ``scores``, ``classes``, ``num_detections``)."""
        gt_boxes, gt_classes = np.asarray(batch["boxes"]), np.asarray(batch["classes"])
        num_boxes = np.asarray(batch["num_boxes"]) if "num_boxes" in batch \
            else (gt_classes > 0).sum(axis=1)
        image_size = tuple(np.shape(batch["image"])[1:3]) if "image" in batch else (1, 1)
        det = {k: np.asarray(v) for k, v in detections.items()}
        for i in range(gt_boxes.shape[0]):
            n, m = int(num_boxes[i]), int(det["num_detections"][i])
            real = gt_classes[i, :n] > 0
            self.add_image(gt_boxes[i, :n][real], gt_classes[i, :n][real], det["boxes"][i, :m],
                           det["scores"][i, :m], det["classes"][i, :m], image_size)

    def result(self) -> dict[str, float]:
        """The metrics of everything added so far (see the module docstring)."""
        if not self._images:
            raise ValueError("COCO evaluation: no images were added; the evaluation split is empty")
        from pycocotools.coco import COCO  # noqa: PLC0415 - only evaluation needs it
        from pycocotools.cocoeval import COCOeval  # noqa: PLC0415

        with contextlib.redirect_stdout(io.StringIO()):
            gt, dt = COCO(), COCO()
            gt.dataset = {"images": self._images, "categories": self.categories,
                          "annotations": self._groundtruth}
            dt.dataset = {"images": self._images, "categories": self.categories,
                          "annotations": self._detections}
            gt.createIndex()
            dt.createIndex()
            evaluation = COCOeval(gt, dt, iouType="bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        metrics = {name: _defined(value) for name, value in zip(_STATS, evaluation.stats)}
        metrics.update(self._per_class_ap50(evaluation))
        return metrics

    def _per_class_ap50(self, evaluation) -> dict[str, float]:
        # precision [iou thresholds, recall thresholds, classes, area ranges, max detections]
        precision = evaluation.eval["precision"][0, :, :, 0, -1]
        with_gt = {a["category_id"] for a in self._groundtruth}
        found = {}
        for k, category in enumerate(self.categories):
            if category["id"] in with_gt:
                values = precision[:, k]
                values = values[values > -1]
                found[f"AP@0.5/{category['name']}"] = float(values.mean()) if values.size else 0.0
        return found


def coco_metrics(groundtruth, detections, num_classes: int, image_size=(1, 1),
                 category_names: dict[int, str] | None = None) -> dict[str, float]:
    """Metrics for per-image lists: ``groundtruth[i] = (boxes, classes)``,
    ``detections[i] = (boxes, scores, classes)``."""
    if len(groundtruth) != len(detections):
        raise ValueError(f"COCO evaluation: expected one detection entry per image, got "
                         f"{len(detections)} for {len(groundtruth)} images")
    evaluator = CocoEvaluator(num_classes, category_names)
    for (gt_boxes, gt_classes), (boxes, scores, classes) in zip(groundtruth, detections):
        evaluator.add_image(gt_boxes, gt_classes, boxes, scores, classes, image_size)
    return evaluator.result()


def _coco_box(box, height: float, width: float) -> list[float]:
    ymin, xmin, ymax, xmax = (float(v) for v in box)
    return [xmin * width, ymin * height, (xmax - xmin) * width, (ymax - ymin) * height]


def _defined(value) -> float:
    value = float(value)
    return math.nan if value == -1.0 else value


def draw_detections(batch: dict, found: dict, max_images: int, min_score: float):
    """The first ``max_images`` of ``batch`` as ``[N, H, W, 3]`` in [0, 1], ground truth drawn green and the
    detections ``found`` (post-processed, for those images) scoring at least ``min_score`` red."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    images = (tf.convert_to_tensor(batch["image"][:max_images], tf.float32) + 1.0) / 2.0
    predicted = tf.where((found["scores"] >= min_score)[..., None], found["boxes"], 0.0)
    truth = tf.where((tf.convert_to_tensor(batch["classes"][:max_images]) > 0)[..., None],
                     tf.convert_to_tensor(batch["boxes"][:max_images], tf.float32), 0.0)
    images = tf.image.draw_bounding_boxes(images, truth, [[0.0, 1.0, 0.0, 1.0]])
    return tf.image.draw_bounding_boxes(images, predicted, [[1.0, 0.0, 0.0, 1.0]])


def evaluate_detector(task, dataset) -> dict[str, float]:
    """COCO metrics and the mean losses (``loss/<part>``) of a detection task over a split: every batch through
    ``task.forward`` (inference), ``task.loss`` and ``task.postprocess``."""
    evaluator = CocoEvaluator(task.config.num_classes, task.category_names)
    totals: dict[str, float] = {}
    batches = 0
    for batch in dataset:
        outputs = task.forward(batch["image"], training=False)
        for name, value in task.loss(batch, outputs, training=False).items():
            totals[name] = totals.get(name, 0.0) + float(value)
        evaluator.add_batch(batch, {k: np.asarray(v) for k, v in task.postprocess(outputs).items()})
        batches += 1
    metrics = evaluator.result()
    metrics.update({f"loss/{name}": value / batches for name, value in totals.items()})
    return metrics
