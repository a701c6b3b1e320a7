"""Fine-tune converted checkpoints: SSD detection and image classification from a pipeline.config or flags.

    >>> import finetune
    >>> report = finetune.finetune("pipeline.config", model_dir="runs/ssd", num_steps=500)   # doctest: +SKIP
    >>> report.test_metrics["mAP@0.5"], report.restore.restored                               # doctest: +SKIP
    >>> finetune.evaluate("pipeline.config", model_dir="runs/ssd").metrics_history            # doctest: +SKIP

The subpackages are ``config`` (pipeline.config), ``data`` (label maps,
TFRecords, input pipelines), ``tasks`` (SSD, classification) and ``engine``
(the training loop).  Importing this package never imports TensorFlow.
"""
from __future__ import annotations

from migrate.lazy import lazy_exports

_LAZY = {
    "finetune": "._run",
    "evaluate": "._run",
    "validate": "._validate",
    "ValidateReport": "reports",
    "RunOptions": "._run",
    "FinetuneError": "._errors",
    "FinetuneReport": "reports",
    "compare_transfer": "._transfer",
    "TransferReport": "reports",
    "load_trained": "._trained",
    "configure": "._configure",
    "backbone_of": "._settings",
    "ssd_config": "._settings",
    "faster_rcnn_config": "._settings",
    "build_inputs": "._inputs",
    "export": "._export",
    "ExportReport": "reports",
    "detection_serving": "._serving",
    "classification_serving": "._serving",
    "SERVING_INPUT_TYPES": "._serving",
    "TrainedRun": "._trained",
}

__all__ = ["SERVING_INPUT_TYPES", "ExportReport", "FinetuneError", "FinetuneReport", "RunOptions", "TrainedRun",
           "TransferReport",
           "backbone_of", "build_inputs", "classification_serving", "compare_transfer", "configure",
           "detection_serving", "evaluate", "export", "faster_rcnn_config", "finetune", "ssd_config",
           "load_trained",
           "validate", "ValidateReport"]


__getattr__ = lazy_exports(__name__, _LAZY)
