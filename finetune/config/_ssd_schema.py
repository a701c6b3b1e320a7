"""The ``model { ssd { ... } }`` part of the pipeline.config schema (see :mod:`._pipeline`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

_TPU = ("info", "a TPU or export setting; it does not change what ckptkit trains")
_DROP = ("warning", "ckptkit does not implement it; the setting is ignored")


def unsupported(prefix: str, names: tuple[str, ...], detail: str) -> dict:
    """``KNOWN`` entries for oneof alternatives ckptkit cannot use."""
    return {f"{prefix}.{name}": ("error", detail) for name in names}


# ----------------------------------------------------------------- model.ssd building blocks
@dataclass(frozen=True)
class FixedShapeResizer:
    PROTO: ClassVar[str] = "fixed_shape_resizer"
    RANGES: ClassVar[dict] = {"height": (1, None), "width": (1, None)}
    KNOWN: ClassVar[dict] = {"resize_method": ("warning", "ckptkit always resizes bilinearly"),
                             "convert_to_grayscale": _DROP}
    height: int = 300
    width: int = 300


@dataclass(frozen=True)
class L2Regularizer:
    PROTO: ClassVar[str] = "l2_regularizer"
    weight: float = 1.0


@dataclass(frozen=True)
class TruncatedNormalInitializer:
    PROTO: ClassVar[str] = "truncated_normal_initializer"
    mean: float = 0.0
    stddev: float = 1.0


@dataclass(frozen=True)
class RandomNormalInitializer:
    PROTO: ClassVar[str] = "random_normal_initializer"
    mean: float = 0.0
    stddev: float = 1.0


@dataclass(frozen=True)
class VarianceScalingInitializer:
    PROTO: ClassVar[str] = "variance_scaling_initializer"
    ENUMS: ClassVar[dict] = {"mode": ("FAN_IN", "FAN_OUT", "FAN_AVG")}
    factor: float = 2.0
    uniform: bool = False
    mode: str = "FAN_IN"


@dataclass(frozen=True)
class BatchNorm:
    RANGES: ClassVar[dict] = {"decay": (0.0, 1.0), "epsilon": (0.0, None)}
    decay: float = 0.999
    center: bool = True
    scale: bool = False
    epsilon: float = 0.001
    train: bool = True


@dataclass(frozen=True)
class Hyperparams:
    """``conv_hyperparams``: activation, L2 weight, initializer and batch norm of conv layers."""

    ENUMS: ClassVar[dict] = {"op": ("CONV", "FC"), "activation": ("NONE", "RELU", "RELU_6", "SWISH")}
    KNOWN: ClassVar[dict] = {
        "regularizer.l1_regularizer": ("warning", "ckptkit supports l2_regularizer only; no regularization"),
        "sync_batch_norm": _TPU, "group_norm": ("error", "ckptkit supports batch_norm only"),
        "regularize_depthwise": _DROP, "force_use_bias": _DROP,
        "initializer.random_uniform_initializer": ("warning", "ckptkit supports truncated_normal, random_normal "
                                                   "and variance_scaling initializers; Keras defaults are used"),
    }
    op: str = "CONV"
    activation: str = "RELU"
    regularizer: Optional[L2Regularizer] = None
    initializer: Union[TruncatedNormalInitializer, RandomNormalInitializer, VarianceScalingInitializer, None] = None
    batch_norm: Optional[BatchNorm] = None


@dataclass(frozen=True)
class FeatureExtractor:
    RANGES: ClassVar[dict] = {"depth_multiplier": (0.0, None), "min_depth": (0, None), "pad_to_multiple": (1, None)}
    KNOWN: ClassVar[dict] = {
        "batch_norm_trainable": ("warning", "a deprecated OD API field; ckptkit follows model.ssd.freeze_batchnorm"),
        "fpn": ("error", "FPN feature extractors are not supported; use an SSD MobileNet extractor"),
        "bifpn": ("error", "BiFPN (EfficientDet) feature extractors are not supported; use an SSD MobileNet "
                  "extractor"),
        "replace_preprocessor_with_placeholder": ("info", "an export setting"),
        "num_layers": _DROP,
        "spaghettinet_arch_name": ("error", "SpaghettiNet feature extractors are not supported; use an SSD "
                                   "MobileNet extractor"),
    }
    type: str = "ssd_mobilenet_v1"
    depth_multiplier: float = 1.0
    min_depth: int = 16
    pad_to_multiple: int = 1
    use_explicit_padding: bool = False
    use_depthwise: bool = False
    override_base_feature_extractor_hyperparams: bool = False
    conv_hyperparams: Hyperparams = field(default_factory=Hyperparams)


@dataclass(frozen=True)
class SsdAnchorGenerator:
    PROTO: ClassVar[str] = "ssd_anchor_generator"
    RANGES: ClassVar[dict] = {"num_layers": (1, None), "min_scale": (0.0, None), "max_scale": (0.0, None),
                              "aspect_ratios": (0.0, None), "scales": (0.0, None)}
    num_layers: int = 6
    min_scale: float = 0.2
    max_scale: float = 0.95
    scales: tuple[float, ...] = ()
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = True
    base_anchor_height: float = 1.0
    base_anchor_width: float = 1.0
    height_stride: tuple[int, ...] = ()
    width_stride: tuple[int, ...] = ()
    height_offset: tuple[int, ...] = ()
    width_offset: tuple[int, ...] = ()


@dataclass(frozen=True)
class FasterRcnnBoxCoder:
    PROTO: ClassVar[str] = "faster_rcnn_box_coder"
    RANGES: ClassVar[dict] = {k: (0.0, None) for k in ("y_scale", "x_scale", "height_scale", "width_scale")}
    y_scale: float = 10.0
    x_scale: float = 10.0
    height_scale: float = 5.0
    width_scale: float = 5.0


@dataclass(frozen=True)
class ArgMaxMatcher:
    PROTO: ClassVar[str] = "argmax_matcher"
    RANGES: ClassVar[dict] = {"matched_threshold": (0.0, 1.0), "unmatched_threshold": (0.0, 1.0)}
    KNOWN: ClassVar[dict] = {"use_matmul_gather": ("info", "a TPU implementation detail")}
    matched_threshold: float = 0.5
    unmatched_threshold: float = 0.5
    ignore_thresholds: bool = False
    negatives_lower_than_unmatched: bool = True
    force_match_for_each_row: bool = False


@dataclass(frozen=True)
class IouSimilarity:
    PROTO: ClassVar[str] = "iou_similarity"


@dataclass(frozen=True)
class ConvolutionalBoxPredictor:
    PROTO: ClassVar[str] = "convolutional_box_predictor"
    RANGES: ClassVar[dict] = {"kernel_size": (1, None), "box_code_size": (4, 4),
                              "dropout_keep_probability": (0.0, 1.0)}
    KNOWN: ClassVar[dict] = {"box_encodings_clip_range": _DROP,
                             "mask_head": ("error", "instance masks are not supported")}
    conv_hyperparams: Hyperparams = field(default_factory=Hyperparams)
    min_depth: int = 0
    max_depth: int = 0
    num_layers_before_predictor: int = 0
    use_dropout: bool = True
    dropout_keep_probability: float = 0.8
    kernel_size: int = 1
    box_code_size: int = 4
    apply_sigmoid_to_scores: bool = False
    class_prediction_bias_init: float = 0.0
    use_depthwise: bool = False


@dataclass(frozen=True)
class BatchNonMaxSuppression:
    RANGES: ClassVar[dict] = {"iou_threshold": (0.0, 1.0), "max_detections_per_class": (1, None),
                              "max_total_detections": (1, None)}
    KNOWN: ClassVar[dict] = {
        "use_static_shapes": ("info", "a TPU implementation detail"),
        "use_combined_nms": ("info", "an export setting"),
        "combined_nms": ("info", "an export setting (the older name of use_combined_nms)"),
        "change_coordinate_frame": ("info", "no effect here"),
        "soft_nms_sigma": _DROP, "use_class_agnostic_nms": _DROP, "max_classes_per_detection": _DROP,
        "use_partitioned_nms": ("info", "an implementation detail"),
        "use_hard_nms": ("info", "an export setting (which TensorFlow NMS op is called; NMS is hard either way)"),
        "use_cpu_nms": ("info", "an implementation detail (the device NMS runs on)"),
    }
    score_threshold: float = 0.0
    iou_threshold: float = 0.6
    max_detections_per_class: int = 100
    max_total_detections: int = 100


@dataclass(frozen=True)
class PostProcessing:
    ENUMS: ClassVar[dict] = {"score_converter": ("IDENTITY", "SIGMOID", "SOFTMAX")}
    KNOWN: ClassVar[dict] = {"calibration_config": _DROP}
    batch_non_max_suppression: BatchNonMaxSuppression = field(default_factory=BatchNonMaxSuppression)
    score_converter: str = "IDENTITY"
    logit_scale: float = 1.0


# ----------------------------------------------------------------- losses
_ANCHORWISE = {"anchorwise_output": ("info", "deprecated in the OD API; ckptkit's losses are always anchor-wise")}


@dataclass(frozen=True)
class WeightedSigmoid:
    PROTO: ClassVar[str] = "weighted_sigmoid"
    KNOWN: ClassVar[dict] = _ANCHORWISE


@dataclass(frozen=True)
class WeightedSoftmax:
    PROTO: ClassVar[str] = "weighted_softmax"
    KNOWN: ClassVar[dict] = _ANCHORWISE
    logit_scale: float = 1.0


@dataclass(frozen=True)
class WeightedSigmoidFocal:
    PROTO: ClassVar[str] = "weighted_sigmoid_focal"
    KNOWN: ClassVar[dict] = _ANCHORWISE
    RANGES: ClassVar[dict] = {"gamma": (0.0, None), "alpha": (0.0, 1.0)}
    gamma: float = 2.0
    alpha: Optional[float] = None  # unset: no class balancing (as in the proto)


@dataclass(frozen=True)
class WeightedSmoothL1:
    PROTO: ClassVar[str] = "weighted_smooth_l1"
    KNOWN: ClassVar[dict] = _ANCHORWISE
    delta: float = 1.0


@dataclass(frozen=True)
class HardExampleMiner:
    ENUMS: ClassVar[dict] = {"loss_type": ("BOTH", "CLASSIFICATION", "LOCALIZATION")}
    RANGES: ClassVar[dict] = {"num_hard_examples": (0, None), "iou_threshold": (0.0, 1.0),
                              "max_negatives_per_positive": (0, None), "min_negatives_per_image": (0, None)}
    num_hard_examples: int = 64
    iou_threshold: float = 0.7
    loss_type: str = "BOTH"
    max_negatives_per_positive: int = 0
    min_negatives_per_image: int = 0


_CLASSIFICATION_LOSSES = "weighted_sigmoid, weighted_softmax and weighted_sigmoid_focal"


@dataclass(frozen=True)
class Loss:
    KNOWN: ClassVar[dict] = {
        **{f"classification_loss.{name}": ("error", f"ckptkit supports {_CLASSIFICATION_LOSSES}")
           for name in ("weighted_logits_softmax", "bootstrapped_sigmoid", "penalty_reduced_logistic_focal_loss",
                        "weighted_dice_classification_loss")},
        **{f"localization_loss.{name}": ("error", "ckptkit supports weighted_smooth_l1 only")
           for name in ("weighted_l2", "weighted_iou", "l1_localization_loss", "weighted_giou")},
        "random_example_sampler": ("error", "use hard_example_miner"),
        "equalization_loss": _DROP, "expected_loss_weights": _DROP, "min_num_negative_samples": _DROP,
        "desired_negative_sampling_ratio": _DROP,
    }
    localization_loss: WeightedSmoothL1 = field(default_factory=WeightedSmoothL1)
    classification_loss: Union[WeightedSigmoid, WeightedSoftmax, WeightedSigmoidFocal] = \
        field(default_factory=WeightedSigmoid)
    hard_example_miner: Optional[HardExampleMiner] = None
    classification_weight: float = 1.0
    localization_weight: float = 1.0


@dataclass(frozen=True)
class SSD:
    """``model { ssd { ... } }``."""

    PROTO: ClassVar[str] = "ssd"
    RANGES: ClassVar[dict] = {"num_classes": (1, None)}
    KNOWN: ClassVar[dict] = {
        "inplace_batchnorm_update": ("info", "ckptkit updates batch-norm statistics eagerly"),
        "add_summaries": ("info", "a logging setting"),
        "return_raw_detections_during_predict": ("info", "an export setting"),
        "use_expected_classification_loss_under_sampling": _DROP, "use_confidences_as_targets": _DROP,
        "implicit_example_weight": _DROP, "weight_regression_loss_by_score": _DROP,
        # TF1-era Ssd fields of use_expected_classification_loss_under_sampling (later moved to Loss)
        "minimum_negative_sampling": _DROP, "desired_negative_sampling_ratio": _DROP,
        "explicit_background_class": ("warning", "ckptkit always adds an implicit background column; labels "
                                      "with an explicit background class are not treated specially"),
        "mask_head_config": ("error", "instance masks are not supported"),
        **unsupported("image_resizer", ("keep_aspect_ratio_resizer", "identity_resizer",
                                         "conditional_shape_resizer", "pad_to_multiple_resizer"),
                       "ckptkit supports fixed_shape_resizer only"),
        **unsupported("anchor_generator", ("multiscale_anchor_generator", "grid_anchor_generator",
                                            "flexible_grid_anchor_generator"),
                       "ckptkit supports ssd_anchor_generator only"),
        **unsupported("box_coder", ("mean_stddev_box_coder", "square_box_coder", "keypoint_box_coder"),
                       "ckptkit supports faster_rcnn_box_coder only"),
        **unsupported("matcher", ("bipartite_matcher",), "ckptkit supports argmax_matcher only"),
        **unsupported("similarity_calculator", ("neg_sq_dist_similarity", "ioa_similarity",
                                                 "thresholded_iou_similarity"),
                       "ckptkit supports iou_similarity only"),
        **unsupported("box_predictor", ("weight_shared_convolutional_box_predictor", "mask_rcnn_box_predictor",
                                         "rfcn_box_predictor", "convolutional_keras_box_predictor"),
                       "ckptkit supports convolutional_box_predictor only"),
    }
    num_classes: int = 90
    image_resizer: FixedShapeResizer = field(default_factory=FixedShapeResizer)
    feature_extractor: FeatureExtractor = field(default_factory=FeatureExtractor)
    box_coder: FasterRcnnBoxCoder = field(default_factory=FasterRcnnBoxCoder)
    matcher: ArgMaxMatcher = field(default_factory=ArgMaxMatcher)
    similarity_calculator: IouSimilarity = field(default_factory=IouSimilarity)
    encode_background_as_zeros: bool = False
    negative_class_weight: float = 1.0
    box_predictor: ConvolutionalBoxPredictor = field(default_factory=ConvolutionalBoxPredictor)
    anchor_generator: SsdAnchorGenerator = field(default_factory=SsdAnchorGenerator)
    post_processing: PostProcessing = field(default_factory=PostProcessing)
    normalize_loss_by_num_matches: bool = False
    normalize_loc_loss_by_codesize: bool = False
    loss: Loss = field(default_factory=Loss)
    freeze_batchnorm: bool = False
    add_background_class: bool = True
