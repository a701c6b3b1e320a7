"""The typed ``pipeline.config``: frozen dataclasses that ARE the schema ckptkit understands.

Field names are the OD API's proto field names, so ``model { ssd { num_classes: 3 } }``
is ``PipelineConfig.model.num_classes``.  Defaults are the proto defaults
(``object_detection/protos``), so a setting absent from a file and a
dataclass built without a file agree; where the proto has none, the 2018 zoo's
``ssd_mobilenet_v1_coco`` value is used (``num_classes`` 90, the feature
extractor type) or the simplest choice (momentum, a constant learning rate).
The ``model { ssd { ... } }`` part lives in :mod:`._ssd_schema`, ``model { faster_rcnn { ... } }``
in :mod:`._faster_rcnn_schema`.

Conventions read by :mod:`._read` (the schema is these classes, nothing else):

* a class with ``PROTO`` is one alternative of a proto ``oneof``; a field typed
  with such classes (or a union of them) is written ``field { alternative { ... } }``;
* ``INLINE`` names fields whose alternatives are written directly in the
  message (``optimizer { momentum_optimizer { ... } }`` -> ``Optimizer.algorithm``);
* ``ENUMS`` lists allowed enum identifiers, ``CHOICES`` allowed string values,
  ``RANGES`` inclusive numeric bounds (``None`` = open);
* ``KNOWN`` lists fields (or ``field.alternative``) ckptkit understands but does
  not use: ``(severity, reason)`` with ``info`` = no effect on results,
  ``warning`` = the OD API would train differently (the setting is dropped),
  ``error`` = ckptkit cannot train this.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from ._ssd_schema import (  # noqa: F401 - re-exported: the whole schema is importable from here
    ArgMaxMatcher, BatchNonMaxSuppression, BatchNorm, ConvolutionalBoxPredictor, FasterRcnnBoxCoder,
    FeatureExtractor, FixedShapeResizer, HardExampleMiner, Hyperparams, IouSimilarity, L2Regularizer, Loss,
    PostProcessing, RandomNormalInitializer, SSD, SsdAnchorGenerator, TruncatedNormalInitializer,
    VarianceScalingInitializer, WeightedSigmoid, WeightedSigmoidFocal, WeightedSmoothL1, WeightedSoftmax,
    unsupported,
)
from ._faster_rcnn_schema import (  # noqa: F401 - re-exported
    FasterRcnn, FasterRcnnFeatureExtractor, GridAnchorGenerator, KeepAspectRatioResizer, MaskRCNNBoxPredictor,
)

_TPU = ("info", "an input-queue, TPU or distribution setting; it does not change what ckptkit trains")
_DROP = ("warning", "ckptkit does not implement it; the setting is ignored")


# ----------------------------------------------------------------- train_config.optimizer
@dataclass(frozen=True)
class ConstantLearningRate:
    PROTO: ClassVar[str] = "constant_learning_rate"
    RANGES: ClassVar[dict] = {"learning_rate": (0.0, None)}
    learning_rate: float = 0.002


@dataclass(frozen=True)
class ExponentialDecayLearningRate:
    PROTO: ClassVar[str] = "exponential_decay_learning_rate"
    RANGES: ClassVar[dict] = {"initial_learning_rate": (0.0, None), "decay_steps": (1, None),
                              "decay_factor": (0.0, None), "burnin_steps": (0, None)}
    initial_learning_rate: float = 0.002
    decay_steps: int = 4000000
    decay_factor: float = 0.95
    staircase: bool = True
    burnin_learning_rate: float = 0.0
    burnin_steps: int = 0
    min_learning_rate: float = 0.0


@dataclass(frozen=True)
class LearningRateSchedule:
    """One ``schedule { step: N learning_rate: R }`` of a manual step schedule."""

    RANGES: ClassVar[dict] = {"step": (0, None), "learning_rate": (0.0, None)}
    step: int = 0
    learning_rate: float = 0.002


@dataclass(frozen=True)
class ManualStepLearningRate:
    PROTO: ClassVar[str] = "manual_step_learning_rate"
    RANGES: ClassVar[dict] = {"initial_learning_rate": (0.0, None)}
    initial_learning_rate: float = 0.002
    schedule: tuple[LearningRateSchedule, ...] = ()
    warmup: bool = False


@dataclass(frozen=True)
class CosineDecayLearningRate:
    PROTO: ClassVar[str] = "cosine_decay_learning_rate"
    RANGES: ClassVar[dict] = {"learning_rate_base": (0.0, None), "total_steps": (1, None),
                              "warmup_learning_rate": (0.0, None), "warmup_steps": (0, None),
                              "hold_base_rate_steps": (0, None)}
    learning_rate_base: float = 0.002
    total_steps: int = 4000000
    warmup_learning_rate: float = 0.0002
    warmup_steps: int = 10000
    hold_base_rate_steps: int = 0


LearningRate = Union[ConstantLearningRate, ExponentialDecayLearningRate, ManualStepLearningRate,
                     CosineDecayLearningRate]


@dataclass(frozen=True)
class RMSPropOptimizer:
    PROTO: ClassVar[str] = "rms_prop_optimizer"
    learning_rate: LearningRate = field(default_factory=ConstantLearningRate)
    momentum_optimizer_value: float = 0.9
    decay: float = 0.9
    epsilon: float = 1.0


@dataclass(frozen=True)
class MomentumOptimizer:
    PROTO: ClassVar[str] = "momentum_optimizer"
    learning_rate: LearningRate = field(default_factory=ConstantLearningRate)
    momentum_optimizer_value: float = 0.9


@dataclass(frozen=True)
class AdamOptimizer:
    PROTO: ClassVar[str] = "adam_optimizer"
    learning_rate: LearningRate = field(default_factory=ConstantLearningRate)
    epsilon: float = 1e-8


@dataclass(frozen=True)
class Optimizer:
    """``optimizer { <algorithm> { learning_rate { <schedule> } ... } use_moving_average ... }``."""

    INLINE: ClassVar[tuple] = ("algorithm",)
    RANGES: ClassVar[dict] = {"moving_average_decay": (0.0, 1.0)}
    algorithm: Union[MomentumOptimizer, RMSPropOptimizer, AdamOptimizer] = field(default_factory=MomentumOptimizer)
    use_moving_average: bool = True  # the proto's default, as in the 2018 zoo checkpoints
    moving_average_decay: float = 0.9999


# ----------------------------------------------------------------- train_config.data_augmentation_options
@dataclass(frozen=True)
class RandomHorizontalFlip:
    PROTO: ClassVar[str] = "random_horizontal_flip"
    RANGES: ClassVar[dict] = {"probability": (0.0, 1.0)}
    KNOWN: ClassVar[dict] = {"keypoint_flip_permutation": ("info", "ckptkit has no keypoints")}
    probability: float = 0.5


@dataclass(frozen=True)
class RandomVerticalFlip:
    PROTO: ClassVar[str] = "random_vertical_flip"
    RANGES: ClassVar[dict] = {"probability": (0.0, 1.0)}
    KNOWN: ClassVar[dict] = {"keypoint_flip_permutation": ("info", "ckptkit has no keypoints")}
    probability: float = 0.5


@dataclass(frozen=True)
class RandomAdjustBrightness:
    PROTO: ClassVar[str] = "random_adjust_brightness"
    RANGES: ClassVar[dict] = {"max_delta": (0.0, 1.0)}
    max_delta: float = 0.2


@dataclass(frozen=True)
class RandomAdjustContrast:
    PROTO: ClassVar[str] = "random_adjust_contrast"
    RANGES: ClassVar[dict] = {"min_delta": (0.0, None), "max_delta": (0.0, None)}
    min_delta: float = 0.8
    max_delta: float = 1.25


@dataclass(frozen=True)
class RandomAdjustSaturation:
    PROTO: ClassVar[str] = "random_adjust_saturation"
    RANGES: ClassVar[dict] = {"min_delta": (0.0, None), "max_delta": (0.0, None)}
    min_delta: float = 0.8
    max_delta: float = 1.25


@dataclass(frozen=True)
class RandomAdjustHue:
    PROTO: ClassVar[str] = "random_adjust_hue"
    RANGES: ClassVar[dict] = {"max_delta": (0.0, 0.5)}
    max_delta: float = 0.02


_CROP_RANGES = {"min_object_covered": (0.0, 1.0), "min_aspect_ratio": (0.0, None), "max_aspect_ratio": (0.0, None),
                "min_area": (0.0, 1.0), "max_area": (0.0, 1.0), "overlap_thresh": (0.0, 1.0),
                "random_coef": (0.0, 1.0)}


@dataclass(frozen=True)
class RandomCropImage:
    """A random crop holding at least ``min_object_covered`` of some box; boxes whose
    overlap with the crop (intersection over box area) is below ``overlap_thresh`` are dropped."""

    PROTO: ClassVar[str] = "random_crop_image"
    RANGES: ClassVar[dict] = _CROP_RANGES
    min_object_covered: float = 1.0
    min_aspect_ratio: float = 0.75
    max_aspect_ratio: float = 1.33
    min_area: float = 0.1
    max_area: float = 1.0
    overlap_thresh: float = 0.3
    clip_boxes: bool = True
    random_coef: float = 0.0  # probability of keeping the image uncropped


@dataclass(frozen=True)
class SSDRandomCropOperation:
    RANGES: ClassVar[dict] = _CROP_RANGES
    min_object_covered: float = 0.0
    min_aspect_ratio: float = 0.5
    max_aspect_ratio: float = 2.0
    min_area: float = 0.1
    max_area: float = 1.0
    overlap_thresh: float = 0.0
    clip_boxes: bool = True
    random_coef: float = 0.15


# The OD API's ssd_random_crop when no operation is given (preprocessor.ssd_random_crop).
SSD_CROP_DEFAULTS = tuple(SSDRandomCropOperation(min_object_covered=c, overlap_thresh=c)
                          for c in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0))


@dataclass(frozen=True)
class SSDRandomCrop:
    """One of ``operations`` (chosen uniformly) per image; none given means the OD API's seven."""

    PROTO: ClassVar[str] = "ssd_random_crop"
    operations: tuple[SSDRandomCropOperation, ...] = ()

    def effective_operations(self) -> tuple[SSDRandomCropOperation, ...]:
        return self.operations or SSD_CROP_DEFAULTS


Augmentation = Union[RandomHorizontalFlip, RandomVerticalFlip, RandomAdjustBrightness, RandomAdjustContrast,
                     RandomAdjustSaturation, RandomAdjustHue, RandomCropImage, SSDRandomCrop]
_UNSUPPORTED_AUGMENTATIONS = (
    "normalize_image", "random_pixel_value_scale", "random_image_scale", "random_rgb_to_gray",
    "random_distort_color", "random_jitter_boxes", "random_pad_image", "random_absolute_pad_image",
    "random_crop_pad_image", "random_crop_to_aspect_ratio", "random_black_patches", "random_resize_method",
    "scale_boxes_to_pixel_coordinates", "resize_image", "subtract_channel_mean", "ssd_random_crop_pad",
    "ssd_random_crop_fixed_aspect_ratio", "ssd_random_crop_pad_fixed_aspect_ratio", "random_vertical_flip_90",
    "random_rotation90", "rgb_to_gray", "convert_class_logits_to_softmax", "random_self_concat_image",
    "autoaugment_image", "drop_label_probabilistically", "remap_labels", "random_jpeg_quality",
    "random_downscale_to_target_pixels", "random_patch_gaussian", "random_square_crop_by_scale",
    "random_scale_crop_and_pad_to_square", "adjust_gamma",
)


# ----------------------------------------------------------------- train_config, readers, eval_config
@dataclass(frozen=True)
class TrainConfig:
    RANGES: ClassVar[dict] = {"batch_size": (1, None), "num_steps": (0, None), "gradient_clipping_by_norm": (0.0, None),
                              "max_number_of_boxes": (1, None)}
    CHOICES: ClassVar[dict] = {"fine_tune_checkpoint_type": ("", "classification", "detection", "full")}
    KNOWN: ClassVar[dict] = {
        **{f"data_augmentation_options.{name}": ("warning", "ckptkit does not implement this augmentation; "
                                                 "it is skipped") for name in _UNSUPPORTED_AUGMENTATIONS},
        **{name: _TPU for name in ("sync_replicas", "startup_delay_steps", "replicas_to_aggregate",
                                   "batch_queue_capacity", "num_batch_queue_threads", "prefetch_queue_capacity",
                                   "unpad_groundtruth_tensors", "keep_checkpoint_every_n_hours",
                                   "retain_original_images", "summarize_gradients", "use_bfloat16")},
        "fine_tune_checkpoint_version": ("info", "ckptkit detects the checkpoint format (V1, V2, TF2) itself"),
        "load_all_detection_checkpoint_vars": ("info", "ckptkit restores by its mapping rules"),
        "merge_multiple_label_boxes": _DROP, "use_multiclass_scores": _DROP, "bias_grad_multiplier": _DROP,
        "freeze_batchnorm": ("warning", "set model.ssd.freeze_batchnorm (or model.faster_rcnn.feature_extractor."
                             "batch_norm_trainable) instead"),
        "num_steps_per_iteration": _TPU, "update_trainable_variables_regex": _DROP,
        "run_fine_tune_checkpoint_dummy_computation": ("info", "ckptkit restores without a dummy forward pass"),
    }
    batch_size: int = 32
    data_augmentation_options: tuple[Augmentation, ...] = ()
    optimizer: Optimizer = field(default_factory=Optimizer)
    gradient_clipping_by_norm: float = 0.0  # 0: no clipping
    fine_tune_checkpoint: str = ""
    fine_tune_checkpoint_type: str = ""  # see checkpoint_type
    from_detection_checkpoint: bool = False  # TF1 spelling of fine_tune_checkpoint_type
    num_steps: int = 0  # 0: train until stopped
    freeze_variables: tuple[str, ...] = ()  # regexes of variables to keep fixed
    update_trainable_variables: tuple[str, ...] = ()  # regexes: if given, only these train
    max_number_of_boxes: int = 100
    add_regularization_loss: bool = True

    @property
    def checkpoint_type(self) -> str:
        """``fine_tune_checkpoint_type``, or what the TF1 ``from_detection_checkpoint`` meant."""
        if self.fine_tune_checkpoint_type:
            return self.fine_tune_checkpoint_type
        return "detection" if self.from_detection_checkpoint else "classification"


@dataclass(frozen=True)
class TFRecordInputReader:
    input_path: tuple[str, ...] = ()  # files or glob patterns


@dataclass(frozen=True)
class InputReader:
    RANGES: ClassVar[dict] = {"num_epochs": (0, None), "max_number_of_boxes": (1, None)}
    KNOWN: ClassVar[dict] = {
        **{name: _TPU for name in (
            "queue_capacity", "min_after_dequeue", "num_readers", "num_parallel_batches", "num_prefetch_batches",
            "read_block_length", "shuffle_buffer_size", "filenames_shuffle_buffer_size", "num_parallel_map_calls",
            "num_parallel_reads", "drop_remainder", "use_bfloat16", "frame_index", "input_type")},
        "external_input_reader": ("error", "ckptkit reads tf_record_input_reader only"),
        "load_instance_masks": ("warning", "instance masks are not supported; they are not read"),
        "mask_type": ("info", "instance masks are not supported"),
        "load_multiclass_scores": _DROP, "load_context_features": _DROP, "load_keypoint_depth_features": _DROP,
        "sample_1_of_n_examples": _DROP,
        "num_additional_channels": ("error", "ckptkit reads RGB images only"),
        "num_keypoints": ("info", "ckptkit has no keypoints"),
        "keypoint_type_weight": ("info", "ckptkit has no keypoints"),
        "name": ("info", "a description; it does not change what ckptkit reads"),
        "prefetch_size": _TPU, "include_source_id": ("info", "ckptkit keys examples by their position"),
        "load_dense_pose": ("warning", "DensePose data is not supported; it is not read"),
        "expand_labels_hierarchy": _DROP, "load_context_image_ids": _DROP,
    }
    label_map_path: str = ""
    shuffle: bool = True
    num_epochs: int = 0  # 0: repeat forever
    tf_record_input_reader: TFRecordInputReader = field(default_factory=TFRecordInputReader)
    max_number_of_boxes: int = 100
    use_display_name: bool = False


@dataclass(frozen=True)
class EvalConfig:
    RANGES: ClassVar[dict] = {"num_examples": (0, None), "batch_size": (1, None)}
    KNOWN: ClassVar[dict] = {name: ("info", "an evaluation-job or visualisation setting ckptkit does not use")
                             for name in ("max_evals", "num_visualizations", "eval_interval_secs",
                                          "visualization_export_dir", "visualize_groundtruth_boxes",
                                          "ignore_groundtruth", "export_path", "eval_instance_masks",
                                          "min_score_threshold", "max_num_boxes_to_visualize", "skip_scores",
                                          "skip_labels", "keep_image_id_for_visualization_export",
                                          "retain_original_images", "retain_original_image_additional_channels",
                                          "groundtruth_box_visualization_color", "save_graph", "save_graph_dir",
                                          "use_dummy_loss_in_eval", "all_metrics_per_category",
                                          "recall_lower_bound", "recall_upper_bound",
                                          "skip_predictions_for_unlabeled_class",
                                          "force_no_resize", "eval_master")} | {
        # eval.proto fields for metrics ckptkit does not compute (keypoints, image-level labels, super-categories)
        "parameterized_metric": ("info", "keypoint metrics are not computed by ckptkit"),
        "keypoint_edge": ("info", "ckptkit has no keypoints"),
        "super_categories": ("info", "ckptkit reports per-category COCO metrics only, no super-categories"),
        "image_classes_field_map_empty_to_ones": ("info", "ckptkit does not read image-level class labels"),
    }
    metrics_set: tuple[str, ...] = ("coco_detection_metrics",)
    num_examples: int = 5000
    batch_size: int = 1
    use_moving_averages: bool = False
    include_metrics_per_category: bool = False


@dataclass(frozen=True)
class PipelineConfig:
    """A whole ``pipeline.config``.  ``model`` is an :class:`SSD` or a :class:`FasterRcnn`; None when the file's
    model is neither (see ``findings``).

    ``source`` is the file read (relative paths in it resolve against its
    directory), ``findings`` what the reader noticed, ``origins`` where each
    setting came from (proto path -> ``file:line:col`` or ``--flag``).
    """

    META: ClassVar[tuple] = ("source", "findings", "origins")
    KNOWN: ClassVar[dict] = {
        **unsupported("model", ("center_net", "detr", "experimental_model"),
                       "ckptkit fine-tunes SSD and Faster R-CNN models only; use an ssd or faster_rcnn "
                       "pipeline.config"),
        "graph_rewriter": ("warning", "quantization-aware training rewrites are not applied here; "
                           "quantize the fine-tuned checkpoint separately"),
    }
    model: Optional[Union[SSD, FasterRcnn]] = field(default_factory=SSD)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    train_input_reader: InputReader = field(default_factory=InputReader)
    eval_config: EvalConfig = field(default_factory=EvalConfig)
    eval_input_reader: tuple[InputReader, ...] = ()
    source: str = ""
    findings: tuple = ()
    origins: dict = field(default_factory=dict, compare=False, repr=False)

    def path(self, name: str):
        """A path setting resolved (see :func:`._resolve.resolve_path`)."""
        from ._resolve import resolve_path  # noqa: PLC0415 - keeps the schema free of logic

        return resolve_path(self, name)

    def input_files(self, split: str = "train") -> list:
        """The TFRecord files of ``split`` ("train" or "eval"), globs expanded."""
        from ._resolve import input_files  # noqa: PLC0415

        return input_files(self, split)
