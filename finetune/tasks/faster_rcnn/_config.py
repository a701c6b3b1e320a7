"""The settings of a Faster R-CNN ResNet fine-tuning run: a ``model { faster_rcnn { ... } }`` block.

Defaults are the proto defaults (``object_detection/protos/faster_rcnn.proto``,
``grid_anchor_generator.proto``); the 2018 zoo's values, where they differ, are
noted.  ``image_size`` is the fixed (height, width) every image is resized to
(batches need one shape); ``depth_multiplier`` scales the bottleneck and RPN
depths, a ckptkit extension for small models (the proto has no such field).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ssd._anchors import tile_anchors
from ..ssd._postprocess import PostprocessConfig

RESNET_BASE_DEPTHS = (64, 128, 256, 512)
FEATURE_STRIDE = 16  # first_stage_features_stride: the only stride the ResNet extractors build


@dataclass(frozen=True)
class GridAnchorConfig:
    """``grid_anchor_generator``: one box per (aspect ratio, scale) at every feature cell, in pixels."""

    scales: tuple[float, ...] = (0.5, 1.0, 2.0)  # the zoo's configs: 0.25, 0.5, 1.0, 2.0
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    height: int = 256
    width: int = 256
    height_stride: int = FEATURE_STRIDE
    width_stride: int = FEATURE_STRIDE
    height_offset: int = 0
    width_offset: int = 0

    def box_specs(self) -> list[tuple[float, float]]:
        """(scale, aspect ratio) per anchor at a cell, in the OD API's order: aspect ratio outer, scale inner."""
        return [(float(s), float(r)) for r in self.aspect_ratios for s in self.scales]

    @property
    def per_location(self) -> int:
        return len(self.scales) * len(self.aspect_ratios)

    def generate(self, grid_shape, image_shape) -> np.ndarray:
        """float32 ``[H * W * per_location, 4]`` normalised anchors, ordered (row, column, anchor)."""
        im_h, im_w = (float(d) for d in image_shape)
        return tile_anchors(grid_shape, self.box_specs(), (self.height / im_h, self.width / im_w),
                            (self.height_stride / im_h, self.width_stride / im_w),
                            (self.height_offset / im_h, self.width_offset / im_w))


@dataclass(frozen=True)
class FasterRCNNConfig:
    """A Faster R-CNN ResNet v1 detector and its two stages' training settings."""

    num_classes: int
    depth: int = 50  # faster_rcnn_resnet50 | 101 | 152
    image_size: tuple[int, int] = (600, 600)
    depth_multiplier: float = 1.0
    anchors: GridAnchorConfig = field(default_factory=GridAnchorConfig)
    rpn_depth: int = 512  # first_stage_box_predictor_depth
    rpn_kernel_size: int = 3
    rpn_initializer_stddev: float = 0.01
    first_stage_nms_score_threshold: float = 0.0
    first_stage_nms_iou_threshold: float = 0.7
    first_stage_max_proposals: int = 300  # the 2018 zoo: 300 (inception_v2: 100)
    first_stage_minibatch_size: int = 256
    first_stage_positive_balance_fraction: float = 0.5
    first_stage_localization_loss_weight: float = 1.0  # the zoo: 2.0
    first_stage_objectness_loss_weight: float = 1.0
    initial_crop_size: int = 14
    maxpool_kernel_size: int = 2
    maxpool_stride: int = 2
    second_stage_batch_size: int = 64
    second_stage_balance_fraction: float = 0.25
    second_stage_localization_loss_weight: float = 1.0  # the zoo: 2.0
    second_stage_classification_loss_weight: float = 1.0
    postprocess: PostprocessConfig = field(default_factory=lambda: PostprocessConfig(
        score_threshold=0.0, iou_threshold=0.6, max_detections_per_class=100, max_total_detections=100,
        score_converter="softmax"))
    share_box_across_classes: bool = False
    use_dropout: bool = False
    dropout_keep_probability: float = 1.0
    clip_anchors_to_image: bool = False
    freeze_batchnorm: bool = True  # feature_extractor.batch_norm_trainable: false (the proto's default)
    l2_weight: float = 0.0

    def __post_init__(self):
        if self.num_classes < 1:
            raise ValueError(f"Faster R-CNN: expected num_classes >= 1 (without background), got {self.num_classes}")
        if self.second_stage_batch_size > self.first_stage_max_proposals:
            raise ValueError(f"Faster R-CNN: second_stage_batch_size ({self.second_stage_batch_size}) is larger than "
                             f"first_stage_max_proposals ({self.first_stage_max_proposals}); lower it")
        if self.depth_multiplier <= 0:
            raise ValueError(f"Faster R-CNN: depth_multiplier must be positive, got {self.depth_multiplier}")

    @property
    def base_depths(self) -> tuple[int, ...]:
        return tuple(max(int(d * self.depth_multiplier), 1) for d in RESNET_BASE_DEPTHS)

    def spec(self):
        """The :class:`migrate.models.FasterRCNNSpec` of this detector."""
        from migrate.models import FasterRCNNSpec  # noqa: PLC0415

        return FasterRCNNSpec(
            num_classes=self.num_classes, depth=self.depth, base_depths=self.base_depths,
            rpn_depth=max(int(self.rpn_depth * self.depth_multiplier), 1), rpn_kernel_size=self.rpn_kernel_size,
            anchors_per_location=self.anchors.per_location, initial_crop_size=self.initial_crop_size,
            maxpool_kernel_size=self.maxpool_kernel_size, maxpool_stride=self.maxpool_stride,
            share_box_across_classes=self.share_box_across_classes, use_dropout=self.use_dropout,
            dropout_keep_probability=self.dropout_keep_probability, image_size=tuple(self.image_size),
            rpn_initializer_stddev=self.rpn_initializer_stddev)
