"""The ``model { faster_rcnn { ... } }`` part of the pipeline.config schema (see :mod:`._pipeline`).

Field names and defaults are those of the OD API's ``faster_rcnn.proto``,
``grid_anchor_generator.proto``, ``image_resizer.proto`` and
``box_predictor.proto`` (``MaskRCNNBoxPredictor``).  Where the proto has no
default (the feature extractor type, the ROI crop sizes, the resizer), the
2018 zoo's ``faster_rcnn_resnet50_coco`` value is used.  What ckptkit can
build (ResNet extractors, stride 16, two stages) is checked later, by
``finetune._settings.unbuildable``, with the proto path of each problem.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Union

from ._ssd_schema import FixedShapeResizer, Hyperparams, PostProcessing, WeightedSoftmax, unsupported

_INFO_TPU = ("info", "a TPU or implementation detail (static shapes, matmul ops); it does not change what "
             "ckptkit trains")
_EXPORT = ("info", "an export setting")
_MASKS = ("error", "instance masks are not supported")


@dataclass(frozen=True)
class KeepAspectRatioResizer:
    """``keep_aspect_ratio_resizer``: the shorter side to ``min_dimension``, the longer at most ``max_dimension``."""

    PROTO: ClassVar[str] = "keep_aspect_ratio_resizer"
    RANGES: ClassVar[dict] = {"min_dimension": (1, None), "max_dimension": (1, None)}
    KNOWN: ClassVar[dict] = {
        "resize_method": ("warning", "ckptkit always resizes bilinearly"),
        "convert_to_grayscale": ("warning", "ckptkit does not implement it; the setting is ignored"),
        "per_channel_pad_value": ("warning", "ckptkit pads with zeros"),
    }
    min_dimension: int = 600
    max_dimension: int = 1024
    pad_to_max_dimension: bool = False


@dataclass(frozen=True)
class FasterRcnnFeatureExtractor:
    """``feature_extractor``: the backbone (``type``: faster_rcnn_resnet50 | 101 | 152, ``_keras`` in TF2)."""

    RANGES: ClassVar[dict] = {"first_stage_features_stride": (1, None)}
    KNOWN: ClassVar[dict] = {
        "conv_hyperparams": ("info", "read by FPN feature extractors only (the ResNet extractors ckptkit builds "
                             "take no hyperparams)"),
        "override_base_feature_extractor_hyperparams": ("info", "read by FPN feature extractors only"),
        "pad_to_multiple": ("info", "read by FPN feature extractors only"),
        "fpn": ("error", "FPN feature extractors are not supported; use faster_rcnn_resnet50/101/152"),
    }
    type: str = "faster_rcnn_resnet50"  # the proto has no default: the 2018 zoo's
    first_stage_features_stride: int = 16
    batch_norm_trainable: bool = False
    # ckptkit's extension, set by --depth-multiplier (the OD API has no such field): the bottleneck and RPN
    # depths scaled, for small models
    depth_multiplier: float = 1.0


@dataclass(frozen=True)
class GridAnchorGenerator:
    """``grid_anchor_generator``: boxes of ``height`` x ``width`` pixels times each scale and aspect ratio."""

    PROTO: ClassVar[str] = "grid_anchor_generator"
    RANGES: ClassVar[dict] = {"height": (1, None), "width": (1, None), "height_stride": (1, None),
                              "width_stride": (1, None), "height_offset": (0, None), "width_offset": (0, None),
                              "scales": (0.0, None), "aspect_ratios": (0.0, None)}
    height: int = 256
    width: int = 256
    height_stride: int = 16
    width_stride: int = 16
    height_offset: int = 0
    width_offset: int = 0
    scales: tuple[float, ...] = ()  # repeated, no default: the OD API builds no anchors without them
    aspect_ratios: tuple[float, ...] = ()


@dataclass(frozen=True)
class MaskRCNNBoxPredictor:
    """``mask_rcnn_box_predictor``: the second stage's box and class heads."""

    PROTO: ClassVar[str] = "mask_rcnn_box_predictor"
    RANGES: ClassVar[dict] = {"dropout_keep_probability": (0.0, 1.0), "box_code_size": (4, 4)}
    KNOWN: ClassVar[dict] = {
        "conv_hyperparams": ("info", "read by the mask head only"),
        "predict_instance_masks": _MASKS, "predict_keypoints": ("error", "keypoints are not supported"),
        **{name: ("info", "a mask head setting (instance masks are not supported)")
           for name in ("mask_prediction_conv_depth", "mask_height", "mask_width", "mask_prediction_num_conv_layers",
                        "masks_are_class_agnostic", "convolve_then_upsample_masks")},
    }
    fc_hyperparams: Hyperparams = field(default_factory=lambda: Hyperparams(op="FC"))
    use_dropout: bool = False
    dropout_keep_probability: float = 0.5
    box_code_size: int = 4
    share_box_across_classes: bool = False


@dataclass(frozen=True)
class FasterRcnn:
    """``model { faster_rcnn { ... } }``."""

    PROTO: ClassVar[str] = "faster_rcnn"
    RANGES: ClassVar[dict] = {
        "num_classes": (1, None), "number_of_stages": (1, 3), "first_stage_atrous_rate": (1, None),
        "first_stage_box_predictor_kernel_size": (1, None), "first_stage_box_predictor_depth": (1, None),
        "first_stage_minibatch_size": (1, None), "first_stage_positive_balance_fraction": (0.0, 1.0),
        "first_stage_nms_iou_threshold": (0.0, 1.0), "first_stage_max_proposals": (1, None),
        "initial_crop_size": (1, None), "maxpool_kernel_size": (1, None), "maxpool_stride": (1, None),
        "second_stage_batch_size": (1, None), "second_stage_balance_fraction": (0.0, 1.0),
    }
    KNOWN: ClassVar[dict] = {
        "second_stage_mask_prediction_loss_weight": ("info", "weights the instance mask loss, which ckptkit "
                                                     "does not compute"),
        "hard_example_miner": ("error", "ckptkit samples second_stage_batch_size proposals per image with "
                               "second_stage_balance_fraction; online hard example mining is not implemented"),
        "inplace_batchnorm_update": ("info", "ckptkit updates batch-norm statistics eagerly"),
        "use_matmul_crop_and_resize": _INFO_TPU, "use_matmul_gather_in_matcher": _INFO_TPU,
        "use_static_balanced_label_sampler": _INFO_TPU, "use_static_shapes": _INFO_TPU,
        "use_static_shapes_for_eval": _INFO_TPU, "use_partitioned_nms_in_first_stage": _INFO_TPU,
        "use_combined_nms_in_first_stage": _INFO_TPU,
        "resize_masks": ("info", "an instance mask setting (masks are not supported)"),
        "return_raw_detections_during_predict": _EXPORT, "output_final_box_features": _EXPORT,
        "output_final_box_rpn_features": _EXPORT,
        "context_config": ("error", "Context R-CNN (attention over context features) is not supported"),
        **unsupported("image_resizer", ("identity_resizer", "conditional_shape_resizer", "pad_to_multiple_resizer"),
                      "ckptkit supports keep_aspect_ratio_resizer and fixed_shape_resizer only"),
        **unsupported("first_stage_anchor_generator", ("ssd_anchor_generator", "multiscale_anchor_generator",
                                                        "flexible_grid_anchor_generator"),
                      "ckptkit's region proposal network supports grid_anchor_generator only"),
        **unsupported("second_stage_box_predictor", ("rfcn_box_predictor", "convolutional_box_predictor",
                                                      "weight_shared_convolutional_box_predictor"),
                      "ckptkit supports mask_rcnn_box_predictor only (R-FCN is not supported)"),
        **unsupported("second_stage_classification_loss",
                      ("weighted_sigmoid", "weighted_sigmoid_focal", "weighted_logits_softmax", "bootstrapped_sigmoid",
                       "penalty_reduced_logistic_focal_loss", "weighted_dice_classification_loss"),
                      "ckptkit's box classifier trains with weighted_softmax only"),
    }
    number_of_stages: int = 2
    num_classes: int = 90
    image_resizer: Union[KeepAspectRatioResizer, FixedShapeResizer] = field(default_factory=KeepAspectRatioResizer)
    feature_extractor: FasterRcnnFeatureExtractor = field(default_factory=FasterRcnnFeatureExtractor)
    first_stage_anchor_generator: GridAnchorGenerator = field(default_factory=GridAnchorGenerator)
    first_stage_atrous_rate: int = 1
    first_stage_box_predictor_conv_hyperparams: Hyperparams = field(default_factory=Hyperparams)
    first_stage_box_predictor_kernel_size: int = 3
    first_stage_box_predictor_depth: int = 512
    first_stage_minibatch_size: int = 256
    first_stage_positive_balance_fraction: float = 0.5
    first_stage_nms_score_threshold: float = 0.0
    first_stage_nms_iou_threshold: float = 0.7
    first_stage_max_proposals: int = 300
    first_stage_localization_loss_weight: float = 1.0
    first_stage_objectness_loss_weight: float = 1.0
    initial_crop_size: int = 14  # no proto default: the zoo's
    maxpool_kernel_size: int = 2
    maxpool_stride: int = 2
    second_stage_box_predictor: MaskRCNNBoxPredictor = field(default_factory=MaskRCNNBoxPredictor)
    second_stage_batch_size: int = 64
    second_stage_balance_fraction: float = 0.25
    second_stage_post_processing: PostProcessing = field(default_factory=PostProcessing)
    second_stage_localization_loss_weight: float = 1.0
    second_stage_classification_loss_weight: float = 1.0
    second_stage_classification_loss: WeightedSoftmax = field(default_factory=WeightedSoftmax)  # the OD API's default
    clip_anchors_to_image: bool = False
