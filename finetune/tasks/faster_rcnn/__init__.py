"""Faster R-CNN ResNet detection fine-tuning with the TF Object Detection API's conventions.

Importing this package never imports TensorFlow; building or running a model does.
"""
from ._config import FasterRCNNConfig as FasterRCNNConfig
from ._config import GridAnchorConfig as GridAnchorConfig
from ._sampler import balanced_sample as balanced_sample
from ._task import FasterRCNNTask as FasterRCNNTask

__all__ = ["FasterRCNNConfig", "FasterRCNNTask", "GridAnchorConfig", "balanced_sample"]
