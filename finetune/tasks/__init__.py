"""Fine-tuning tasks: what the training engine trains and evaluates.

Importing this package never imports TensorFlow; building a task does.
"""
from ._base import Task as Task
from ._base import split_variables as split_variables
from .classification import ClassificationConfig as ClassificationConfig
from .classification import ClassificationTask as ClassificationTask
from .classification import DomainAdversarialConfig as DomainAdversarialConfig
from .faster_rcnn import FasterRCNNConfig as FasterRCNNConfig
from .faster_rcnn import FasterRCNNTask as FasterRCNNTask
from .ssd import SSDConfig as SSDConfig
from .ssd import SSDTask as SSDTask

__all__ = [
    "ClassificationConfig", "ClassificationTask", "DomainAdversarialConfig", "FasterRCNNConfig", "FasterRCNNTask",
    "SSDConfig", "SSDTask", "Task",
    "split_variables",
]
