"""Quantizing SSD detectors: SavedModel and TFLite export with post-processing inside, and COCO evaluation.

    >>> from quantize.detection import export_detection_tflite, evaluate_detection_tflite
    >>> export_detection_tflite(ssd_task, "ssd_int8.tflite", "int8", representative_images=images)  # doctest: +SKIP
    >>> evaluate_detection_tflite("ssd_int8.tflite", "test.record", "label_map.pbtxt")["mAP@0.5"]   # doctest: +SKIP

``make(source)`` is the :class:`quantize._task.QuantizeTask` factory the
framework calls for ``--task detection``.  Importing this package never
imports TensorFlow.
"""
from __future__ import annotations

from migrate.lazy import lazy_exports

_LAZY = {
    "METHODS": "._export",
    "apply_recipe": "._export",
    "detection_tflite_converter": "._export",
    "export_detection_saved_model": "._export",
    "export_detection_tflite": "._export",
    "evaluate_detection_saved_model": "._evaluate",
    "evaluate_detection_tflite": "._evaluate",
    "evaluate_detections": "._evaluate",
    "load_detection_saved_model": "._evaluate",
    "open_detection_tflite": "._evaluate",
    "saved_model_detections": "._evaluate",
    "tflite_detections": "._evaluate",
    "DetectionQuantizeTask": "._task",
    "make": "._task",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
