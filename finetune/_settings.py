"""From a typed ``PipelineConfig`` to what the tasks and the engine take: the one translation table.

Every function is pure (no TensorFlow): the backbone to build, the SSD
settings (:class:`~finetune.tasks.SSDConfig`), the Faster R-CNN settings
(:class:`~finetune.tasks.faster_rcnn.FasterRCNNConfig`), the optimizer and the
learning-rate schedule (as a ``build_schedule`` kind and its arguments).
Settings ckptkit reads but cannot honour are appended to ``warnings``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from finetune.config import ConfigError, PipelineConfig, schema
from finetune.engine import OptimizerConfig
from finetune.tasks.ssd import (
    AnchorConfig, BoxCoder, HardExampleMinerConfig, LossConfig, MatcherConfig, PostprocessConfig, SSDConfig,
)

# feature_extractor.type (and the bare backbone names the flags accept) -> backbone kind
EXTRACTORS = {
    "ssd_mobilenet_v1": "mobilenet_v1", "ssd_mobilenet_v1_keras": "mobilenet_v1", "mobilenet_v1": "mobilenet_v1",
    "ssd_mobilenet_v2": "mobilenet_v2", "ssd_mobilenet_v2_keras": "mobilenet_v2", "mobilenet_v2": "mobilenet_v2",
}
KERAS_APPLICATION = {"mobilenet_v1": "MobileNet", "mobilenet_v2": "MobileNetV2"}
MAX_CLASSES = 10_000  # a guard, not a limit of SSD: the largest detection label sets have ~1,200 classes
MAX_IMAGE_SIZE = 4096  # a guard: SSD MobileNets run at 300-640, classifiers at 224
FEATURE_MAPS = 6  # two backbone maps and four extra layers (SSDConfig.extra_layer_depths)
# model.faster_rcnn.feature_extractor.type -> ResNet v1 depth (TF1 slim and TF2 Keras spellings)
FASTER_RCNN_EXTRACTORS = {f"faster_rcnn_resnet{depth}{keras}": depth
                          for depth in (50, 101, 152) for keras in ("", "_keras")}
FASTER_RCNN_STRIDE = 16  # first_stage_features_stride: block3 at output stride 16
_FRCNN = "model.faster_rcnn"


@dataclass(frozen=True)
class Backbone:
    """The converted backbone to build: a tf_keras MobileNet/MobileNetV2 without its top, or (Faster R-CNN)
    slim's ResNet v1 (``resnet_v1_50`` ...)."""

    kind: str  # mobilenet_v1 | mobilenet_v2 | resnet_v1_<depth>
    depth_multiplier: float
    image_size: tuple[int, int]
    keep_aspect: tuple[int, int] | None = None  # keep_aspect_ratio_resizer's (min, max), padded to max square

    @property
    def keras_application(self) -> str:
        return KERAS_APPLICATION[self.kind]

    def fits(self, architecture: str) -> bool:
        """Whether a legacy checkpoint of ``architecture`` (``migrate.detect_architecture``) holds this backbone."""
        if self.kind.startswith("resnet_v1_"):
            depth = self.kind.removeprefix("resnet_v1_")
            return architecture in (f"od/faster_rcnn_resnet{depth}", f"slim/resnet_v1_{depth}")
        return architecture.endswith(self.kind)

    def describe(self) -> str:
        return f"{self.kind} (depth {self.depth_multiplier:g}, {self.image_size[0]}x{self.image_size[1]})"


def _where(config: PipelineConfig, path: str) -> str:
    return config.origins.get(path) or config.source or "pipeline.config"


def backbone_of(config: PipelineConfig) -> Backbone:
    """The backbone a config's ``feature_extractor`` and ``image_resizer`` describe."""
    if isinstance(config.model, schema.FasterRcnn):
        extractor = config.model.feature_extractor
        problems = _faster_rcnn_unbuildable(config.model)
        if problems:
            raise ConfigError(f"{_where(config, problems[0][0])}: {problems[0][0]}: {problems[0][1]}")
        resizer = config.model.image_resizer
        keep = (resizer.min_dimension, resizer.max_dimension) \
            if isinstance(resizer, schema.KeepAspectRatioResizer) else None
        return Backbone(f"resnet_v1_{FASTER_RCNN_EXTRACTORS[extractor.type]}", float(extractor.depth_multiplier),
                        frcnn_image_size(config.model)[0], keep)
    _need_ssd(config, "backbone_of")
    extractor = config.model.feature_extractor
    kind = EXTRACTORS.get(extractor.type)
    if kind is None:
        raise ConfigError(f"{_where(config, 'model.ssd.feature_extractor.type')}: feature_extractor.type "
                          f"{extractor.type!r} is not supported; ckptkit fine-tunes "
                          f"{', '.join(k for k in EXTRACTORS if k.startswith('ssd_'))} (or pass --feature-extractor)")
    resizer = config.model.image_resizer
    if max(resizer.height, resizer.width) > MAX_IMAGE_SIZE:
        raise ConfigError(f"{_where(config, 'model.ssd.image_resizer.fixed_shape_resizer.height')}: input size "
                          f"{resizer.height}x{resizer.width} is larger than ckptkit builds (at most {MAX_IMAGE_SIZE}; "
                          "activations and anchors grow with its square); set a smaller image_resizer or --image-size")
    return Backbone(kind, float(extractor.depth_multiplier), (resizer.height, resizer.width))


def detector_config(config: PipelineConfig, warnings: list[str]):
    """The detection task's settings: :func:`ssd_config` or :func:`faster_rcnn_config`, by the config's model."""
    if isinstance(config.model, schema.FasterRcnn):
        return faster_rcnn_config(config, warnings)
    return ssd_config(config, warnings)


# ----------------------------------------------------------------- SSD
def ssd_config(config: PipelineConfig, warnings: list[str]) -> SSDConfig:
    """``model { ssd { ... } }`` as the SSD task's settings."""
    _need_ssd(config, "ssd_config")
    ssd = config.model
    extractor, predictor = ssd.feature_extractor, ssd.box_predictor
    _check_supported(config, warnings)
    hyper = extractor.conv_hyperparams
    batch_norm = hyper.batch_norm or schema.BatchNorm()
    regularizer = hyper.regularizer
    l2 = regularizer.weight if regularizer is not None and config.train_config.add_regularization_loss else 0.0
    initializer = predictor.conv_hyperparams.initializer
    stddev = getattr(initializer, "stddev", 0.03) if not isinstance(
        initializer, schema.VarianceScalingInitializer) else 0.03
    backbone = backbone_of(config)
    return SSDConfig(
        num_classes=ssd.num_classes, kind=backbone.kind, image_size=backbone.image_size, anchors=_anchors(config),
        box_coder=_box_coder(ssd.box_coder), matcher=_matcher(ssd.matcher, config, warnings), loss=_loss(ssd),
        postprocess=_postprocess(ssd.post_processing),
        depth_multiplier=float(extractor.depth_multiplier), min_depth=extractor.min_depth,
        use_depthwise=extractor.use_depthwise, box_predictor_kernel_size=predictor.kernel_size,
        box_predictor_depthwise=predictor.use_depthwise,
        class_prediction_bias_init=predictor.class_prediction_bias_init,
        use_dropout=predictor.use_dropout, dropout_keep_probability=predictor.dropout_keep_probability,
        initializer_stddev=stddev, batch_norm_decay=batch_norm.decay, batch_norm_epsilon=batch_norm.epsilon,
        l2_weight=l2, freeze_batchnorm=ssd.freeze_batchnorm)


def unbuildable(config: PipelineConfig, task: str = "detection") -> list[tuple[str, str]]:
    """``(proto path, problem)`` for each setting ckptkit cannot build; empty when the model is supported.

    The one list of support checks: :func:`finetune._validate.check_config` reports them all at once,
    ``backbone_of`` and ``ssd_config`` refuse on them.
    """
    if isinstance(config.model, schema.FasterRcnn):
        out = _faster_rcnn_unbuildable(config.model)
        if task != "detection":
            out.append((_FRCNN, f"a {task} run fine-tunes an SSD MobileNet backbone; use an ssd pipeline.config "
                        "or flags"))
        return out
    out = []
    extractor = config.model.feature_extractor
    if extractor.type not in EXTRACTORS:
        out.append(("model.ssd.feature_extractor.type", f"{extractor.type!r} is not supported; ckptkit fine-tunes "
                    f"{', '.join(k for k in EXTRACTORS if k.startswith('ssd_'))} (or pass --feature-extractor)"))
    resizer = config.model.image_resizer
    if max(resizer.height, resizer.width) > MAX_IMAGE_SIZE:
        out.append(("model.ssd.image_resizer.fixed_shape_resizer.height", f"input size {resizer.height}x"
                    f"{resizer.width} is larger than ckptkit builds (at most {MAX_IMAGE_SIZE}); set a smaller "
                    "image_resizer or --image-size"))
    return out + (_ssd_unbuildable(config.model) if task == "detection" else [])


def _need_ssd(config: PipelineConfig, what: str) -> None:
    if not isinstance(config.model, schema.SSD):
        model = "model { faster_rcnn { ... } }" if config.model is not None else "no supported model"
        raise ConfigError(f"{config.source or 'pipeline.config'}: {what} needs model {{ ssd {{ ... }} }}; this config "
                          f"has {model}" + (" (see faster_rcnn_config)" if config.model else ""))


def _ssd_unbuildable(ssd) -> list[tuple[str, str]]:
    predictor, out = ssd.box_predictor, []
    key = "model.ssd.box_predictor.convolutional_box_predictor"
    if predictor.num_layers_before_predictor:
        out.append((f"{key}.num_layers_before_predictor", f"{predictor.num_layers_before_predictor} layers before "
                    "the predictor (ckptkit's predictor has none); set it to 0"))
    if ssd.num_classes > MAX_CLASSES:
        out.append(("model.ssd.num_classes", f"num_classes {ssd.num_classes} (at most {MAX_CLASSES}: the class "
                    "head grows with it; check num_classes and the label map's ids)"))
    if ssd.anchor_generator.num_layers != FEATURE_MAPS:
        out.append(("model.ssd.anchor_generator.ssd_anchor_generator.num_layers",
                    f"ssd_anchor_generator num_layers {ssd.anchor_generator.num_layers} (the SSD MobileNet feature "
                    f"extractor gives {FEATURE_MAPS} feature maps)"))
    return out


def _check_supported(config: PipelineConfig, warnings: list[str]) -> None:
    ssd = config.model
    errors = [problem for _, problem in _ssd_unbuildable(ssd)]
    if errors:
        raise ConfigError(f"{config.source or 'pipeline.config'}: ckptkit cannot build this SSD: {'; '.join(errors)}; "
                          "use the zoo's ssd_mobilenet_v1/v2 settings")
    if ssd.encode_background_as_zeros or not ssd.add_background_class:
        warnings.append("encode_background_as_zeros / add_background_class: ckptkit always predicts a background "
                        "column; the setting is ignored")
    decay = (ssd.feature_extractor.conv_hyperparams.batch_norm or schema.BatchNorm()).decay
    steps = config.train_config.num_steps
    if not ssd.freeze_batchnorm and steps and steps * (1.0 - decay) < 1.0:
        warnings.append(f"batch_norm decay {decay:g} averages over ~{1 / (1 - decay):.0f} steps but the run has "
                        f"{steps}: the new layers' moving statistics stay near their initial values, and evaluation "
                        "(which uses them) is poor; lower conv_hyperparams.batch_norm.decay for short runs")
    if ssd.feature_extractor.use_explicit_padding:
        warnings.append("feature_extractor.use_explicit_padding is ignored "
                        "(Keras pads as TF-slim's SAME for even sizes)")


def _anchors(config: PipelineConfig) -> AnchorConfig:
    g = config.model.anchor_generator
    values = {f.name: getattr(g, f.name) for f in fields(g)}  # the same fields: AnchorConfig extends the schema
    return AnchorConfig(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


def _box_coder(coder) -> BoxCoder:
    return BoxCoder(coder.y_scale, coder.x_scale, coder.height_scale, coder.width_scale)


def _matcher(matcher, config: PipelineConfig, warnings: list[str]) -> MatcherConfig:
    if matcher.ignore_thresholds:
        warnings.append("argmax_matcher.ignore_thresholds is not supported; the thresholds are applied")
    try:
        return MatcherConfig(matcher.matched_threshold, matcher.unmatched_threshold,
                             matcher.negatives_lower_than_unmatched, matcher.force_match_for_each_row)
    except ValueError as e:
        raise ConfigError(f"{_where(config, 'model.ssd.matcher.argmax_matcher.matched_threshold')}: {e}") from None


_CLASSIFICATION = {schema.WeightedSigmoid: "sigmoid", schema.WeightedSoftmax: "softmax",
                   schema.WeightedSigmoidFocal: "focal"}


def _loss(ssd) -> LossConfig:
    loss = ssd.loss
    cls = loss.classification_loss
    miner = loss.hard_example_miner
    return LossConfig(
        classification=_CLASSIFICATION[type(cls)], focal_gamma=getattr(cls, "gamma", 2.0),
        focal_alpha=getattr(cls, "alpha", None), logit_scale=getattr(cls, "logit_scale", 1.0),
        smooth_l1_delta=loss.localization_loss.delta, classification_weight=loss.classification_weight,
        localization_weight=loss.localization_weight, normalize_loss_by_num_matches=ssd.normalize_loss_by_num_matches,
        normalize_loc_loss_by_codesize=ssd.normalize_loc_loss_by_codesize,
        hard_example_miner=None if miner is None else HardExampleMinerConfig(
            miner.num_hard_examples or None, miner.iou_threshold, miner.loss_type.lower(),
            miner.max_negatives_per_positive or None, miner.min_negatives_per_image))


def _postprocess(post) -> PostprocessConfig:
    nms = post.batch_non_max_suppression
    return PostprocessConfig(nms.score_threshold, nms.iou_threshold, nms.max_detections_per_class,
                             nms.max_total_detections, post.score_converter.lower(), post.logit_scale)


# ----------------------------------------------------------------- Faster R-CNN
_OTHER_EXTRACTORS = (  # what the OD API's other Faster R-CNN extractor types are, for the refusal
    ("fpn", "a ResNet FPN (feature pyramid) extractor"), ("inception_resnet_v2", "the Inception-ResNet v2 backbone"),
    ("inception_v2", "the Inception v2 backbone"), ("pnas", "the PNASNet backbone"), ("nas", "the NASNet backbone"),
    ("resnet", "a ResNet variant ckptkit does not build"),
)


def _extractor_problem(kind: str) -> str:
    what = next((text for key, text in _OTHER_EXTRACTORS if key in kind), "an extractor ckptkit does not build")
    return (f"{kind!r} is {what}; ckptkit's Faster R-CNN builds ResNet v1 at output stride 16: "
            f"{', '.join(FASTER_RCNN_EXTRACTORS)}")


def frcnn_image_size(model) -> tuple[tuple[int, int], str]:
    """(height, width) every image is brought to, and the proto path of the setting that gives it."""
    resizer = model.image_resizer
    if isinstance(resizer, schema.FixedShapeResizer):
        return (resizer.height, resizer.width), f"{_FRCNN}.image_resizer.fixed_shape_resizer.height"
    return (resizer.max_dimension,) * 2, f"{_FRCNN}.image_resizer.keep_aspect_ratio_resizer.max_dimension"


def _faster_rcnn_unbuildable(model) -> list[tuple[str, str]]:
    out, extractor = [], model.feature_extractor
    if extractor.type not in FASTER_RCNN_EXTRACTORS:
        out.append((f"{_FRCNN}.feature_extractor.type", _extractor_problem(extractor.type)))
    if extractor.first_stage_features_stride != FASTER_RCNN_STRIDE:
        out.append((f"{_FRCNN}.feature_extractor.first_stage_features_stride",
                    f"first_stage_features_stride {extractor.first_stage_features_stride} (the ResNet extractors "
                    f"build {FASTER_RCNN_STRIDE} only, as the OD API's Keras ones do); set it to 16"))
    if model.number_of_stages != 2:
        out.append((f"{_FRCNN}.number_of_stages", f"number_of_stages {model.number_of_stages} (ckptkit trains the "
                    "region proposal network and the box classifier together); set it to 2"))
    if model.first_stage_atrous_rate != 1:
        out.append((f"{_FRCNN}.first_stage_atrous_rate", f"first_stage_atrous_rate {model.first_stage_atrous_rate} "
                    "(ckptkit's RPN conv is not dilated); set it to 1"))
    (height, width), key = frcnn_image_size(model)
    if max(height, width) > MAX_IMAGE_SIZE:
        out.append((key, f"input size {height}x{width} is larger than ckptkit builds (at most {MAX_IMAGE_SIZE}); "
                    "set a smaller image_resizer"))
    if model.num_classes > MAX_CLASSES:
        out.append((f"{_FRCNN}.num_classes", f"num_classes {model.num_classes} (at most {MAX_CLASSES}: the class "
                    "head grows with it; check num_classes and the label map's ids)"))
    grid = model.first_stage_anchor_generator
    for name in ("scales", "aspect_ratios"):
        if not getattr(grid, name):
            out.append((f"{_FRCNN}.first_stage_anchor_generator.grid_anchor_generator.{name}",
                        f"no {name} (the OD API builds no anchors without them); the zoo's are scales "
                        "[0.25, 0.5, 1.0, 2.0] and aspect_ratios [0.5, 1.0, 2.0]"))
    if model.second_stage_batch_size > model.first_stage_max_proposals:
        out.append((f"{_FRCNN}.second_stage_batch_size", f"second_stage_batch_size {model.second_stage_batch_size} "
                    f"is larger than first_stage_max_proposals {model.first_stage_max_proposals}; lower it"))
    return out


def faster_rcnn_config(config: PipelineConfig, warnings: list[str]):
    """``model { faster_rcnn { ... } }`` as the Faster R-CNN task's settings (a ``FasterRCNNConfig``).

    Refuses (one :class:`ConfigError`, each problem with its proto path) what
    :func:`unbuildable` lists; settings ckptkit reads but trains differently
    are appended to ``warnings``.
    """
    from finetune.tasks.faster_rcnn import FasterRCNNConfig, GridAnchorConfig  # noqa: PLC0415 - see the report

    model = config.model
    if not isinstance(model, schema.FasterRcnn):
        raise ConfigError(f"{config.source or 'pipeline.config'}: faster_rcnn_config needs model {{ faster_rcnn "
                          "{ ... } }; this config has " + ("an ssd model (use ssd_config)" if model else "none"))
    problems = _faster_rcnn_unbuildable(model)
    if problems:
        raise ConfigError(f"{config.source or 'pipeline.config'}: ckptkit cannot build this Faster R-CNN: "
                          f"{'; '.join(f'{path}: {problem}' for path, problem in problems)}")
    _faster_rcnn_warnings(config, warnings)
    grid, predictor = model.first_stage_anchor_generator, model.second_stage_box_predictor
    rpn = model.first_stage_box_predictor_conv_hyperparams
    regularizer = rpn.regularizer
    l2 = regularizer.weight if regularizer is not None and config.train_config.add_regularization_loss else 0.0
    initializer = rpn.initializer
    stddev = initializer.stddev if isinstance(initializer, (schema.TruncatedNormalInitializer,
                                                            schema.RandomNormalInitializer)) else 0.01
    post = model.second_stage_post_processing
    return FasterRCNNConfig(
        num_classes=model.num_classes, depth=FASTER_RCNN_EXTRACTORS[model.feature_extractor.type],
        image_size=frcnn_image_size(model)[0],
        anchors=GridAnchorConfig(scales=tuple(grid.scales), aspect_ratios=tuple(grid.aspect_ratios),
                                 height=grid.height, width=grid.width, height_stride=grid.height_stride,
                                 width_stride=grid.width_stride, height_offset=grid.height_offset,
                                 width_offset=grid.width_offset),
        rpn_depth=model.first_stage_box_predictor_depth, rpn_kernel_size=model.first_stage_box_predictor_kernel_size,
        rpn_initializer_stddev=stddev, first_stage_nms_score_threshold=model.first_stage_nms_score_threshold,
        first_stage_nms_iou_threshold=model.first_stage_nms_iou_threshold,
        first_stage_max_proposals=model.first_stage_max_proposals,
        first_stage_minibatch_size=model.first_stage_minibatch_size,
        first_stage_positive_balance_fraction=model.first_stage_positive_balance_fraction,
        first_stage_localization_loss_weight=model.first_stage_localization_loss_weight,
        first_stage_objectness_loss_weight=model.first_stage_objectness_loss_weight,
        initial_crop_size=model.initial_crop_size, maxpool_kernel_size=model.maxpool_kernel_size,
        maxpool_stride=model.maxpool_stride, second_stage_batch_size=model.second_stage_batch_size,
        second_stage_balance_fraction=model.second_stage_balance_fraction,
        second_stage_localization_loss_weight=model.second_stage_localization_loss_weight,
        second_stage_classification_loss_weight=model.second_stage_classification_loss_weight,
        postprocess=_postprocess(post), share_box_across_classes=predictor.share_box_across_classes,
        use_dropout=predictor.use_dropout, dropout_keep_probability=predictor.dropout_keep_probability,
        clip_anchors_to_image=model.clip_anchors_to_image,
        freeze_batchnorm=not model.feature_extractor.batch_norm_trainable, l2_weight=l2,
        depth_multiplier=float(model.feature_extractor.depth_multiplier))


def _faster_rcnn_warnings(config: PipelineConfig, warnings: list[str]) -> None:
    model = config.model
    resizer, key = model.image_resizer, f"{_FRCNN}.image_resizer"
    if isinstance(resizer, schema.KeepAspectRatioResizer) and not resizer.pad_to_max_dimension:
        side = resizer.max_dimension
        warnings.append(f"{key}.keep_aspect_ratio_resizer: the OD API trains on each image at its own size "
                        f"(shorter side {resizer.min_dimension}, longer at most {side}); ckptkit also pads it to "
                        f"{side}x{side} (pad_to_max_dimension: true), as batches need one shape")
    rpn = model.first_stage_box_predictor_conv_hyperparams
    if not isinstance(rpn.initializer, (schema.TruncatedNormalInitializer, schema.RandomNormalInitializer)):
        warnings.append(f"{_FRCNN}.first_stage_box_predictor_conv_hyperparams.initializer: ckptkit initializes the "
                        "RPN conv from a truncated normal with stddev 0.01 (the zoo's); the setting is ignored")
    if rpn.batch_norm is not None:
        warnings.append(f"{_FRCNN}.first_stage_box_predictor_conv_hyperparams.batch_norm: ckptkit's RPN conv has "
                        "a bias and no batch norm; the setting is ignored")
    fc = model.second_stage_box_predictor.fc_hyperparams
    if fc.regularizer is not None and fc.regularizer.weight and config.train_config.add_regularization_loss:
        warnings.append(f"{_FRCNN}.second_stage_box_predictor.mask_rcnn_box_predictor.fc_hyperparams.regularizer: "
                        "the box classifier's Dense layers are not regularized (as in the OD API's Keras heads); "
                        "only the RPN conv's l2 weight is applied")
    post = model.second_stage_post_processing
    if post.score_converter != "SOFTMAX":
        warnings.append(f"{_FRCNN}.second_stage_post_processing.score_converter {post.score_converter}: the box "
                        "classifier trains with softmax cross-entropy; its scores are meant for SOFTMAX")
    if model.second_stage_classification_loss.logit_scale != 1.0:
        warnings.append(f"{_FRCNN}.second_stage_classification_loss.weighted_softmax.logit_scale: ckptkit's box "
                        "classifier loss does not scale its logits; the setting is ignored")


# ----------------------------------------------------------------- optimizer and schedule
def optimizer_config(config: PipelineConfig, warnings: list[str]) -> OptimizerConfig:
    """``train_config.optimizer`` as the engine's optimizer settings."""
    optimizer = config.train_config.optimizer
    algorithm = optimizer.algorithm
    ema = {"use_ema": optimizer.use_moving_average, "ema_momentum": optimizer.moving_average_decay}
    steps = config.train_config.num_steps
    if optimizer.use_moving_average and steps and steps * (1.0 - optimizer.moving_average_decay) < 1.0:
        warnings.append(f"use_moving_average with moving_average_decay {optimizer.moving_average_decay:g} averages "
                        f"over ~{1 / (1 - optimizer.moving_average_decay):.0f} steps but the run has {steps}: the "
                        "exported weights stay close to the starting point; lower the decay or set "
                        "use_moving_average: false")
    if isinstance(algorithm, schema.MomentumOptimizer):
        return OptimizerConfig("momentum", momentum=algorithm.momentum_optimizer_value, **ema)
    if isinstance(algorithm, schema.RMSPropOptimizer):
        return OptimizerConfig("rmsprop", momentum=algorithm.momentum_optimizer_value, rho=algorithm.decay,
                               epsilon=algorithm.epsilon, **ema)
    return OptimizerConfig("adam", epsilon=algorithm.epsilon, **ema)


def schedule_spec(config: PipelineConfig, warnings: list[str]) -> tuple[str, dict]:
    """``(kind, arguments)`` for ``finetune.engine.build_schedule``."""
    rate = config.train_config.optimizer.algorithm.learning_rate
    steps = config.train_config.num_steps
    if isinstance(rate, schema.CosineDecayLearningRate) and rate.total_steps < steps:
        warnings.append(f"cosine_decay_learning_rate total_steps {rate.total_steps} < num_steps {steps}: the learning "
                        f"rate is 0 after step {rate.total_steps}; set total_steps to num_steps")
    if isinstance(rate, schema.ConstantLearningRate):
        return "constant", {"learning_rate": rate.learning_rate}
    if isinstance(rate, schema.ExponentialDecayLearningRate):
        return "exponential_decay", {
            "initial_learning_rate": rate.initial_learning_rate, "decay_steps": rate.decay_steps,
            "decay_factor": rate.decay_factor, "staircase": rate.staircase,
            "burnin_learning_rate": rate.burnin_learning_rate, "burnin_steps": rate.burnin_steps,
            "min_learning_rate": rate.min_learning_rate}
    if isinstance(rate, schema.ManualStepLearningRate):
        return "manual_step", {"boundaries": [s.step for s in rate.schedule],
                               "rates": [rate.initial_learning_rate] + [s.learning_rate for s in rate.schedule],
                               "warmup": rate.warmup}
    return "cosine_decay", {"learning_rate_base": rate.learning_rate_base, "total_steps": rate.total_steps,
                            "warmup_learning_rate": rate.warmup_learning_rate, "warmup_steps": rate.warmup_steps,
                            "hold_base_rate_steps": rate.hold_base_rate_steps}


def grad_clip_norm(config: PipelineConfig) -> float | None:
    return config.train_config.gradient_clipping_by_norm or None
