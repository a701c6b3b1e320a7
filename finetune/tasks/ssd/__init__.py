"""SSD detection fine-tuning with the TF Object Detection API's conventions.

Importing this package never imports TensorFlow; building or running a model does.
"""
from ._anchors import AnchorConfig as AnchorConfig
from ._box_coder import BoxCoder as BoxCoder
from ._coco_eval import CocoEvaluator as CocoEvaluator
from ._coco_eval import coco_metrics as coco_metrics
from ._losses import HardExampleMinerConfig as HardExampleMinerConfig
from ._losses import LossConfig as LossConfig
from ._matcher import MatcherConfig as MatcherConfig
from ._matcher import assign_targets as assign_targets
from ._model import SSDConfig as SSDConfig
from ._model import build_ssd as build_ssd
from ._postprocess import PostprocessConfig as PostprocessConfig
from ._postprocess import postprocess as postprocess
from ._task import SSDTask as SSDTask

__all__ = [
    "AnchorConfig", "BoxCoder", "CocoEvaluator", "HardExampleMinerConfig", "LossConfig", "MatcherConfig",
    "PostprocessConfig", "SSDConfig", "SSDTask", "assign_targets", "build_ssd", "coco_metrics", "postprocess",
]
