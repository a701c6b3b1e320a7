"""From a typed ``PipelineConfig`` to what the tasks and the engine take: the one translation table.

Every function is pure (no TensorFlow): the backbone to build, the SSD
settings (:class:`~finetune.tasks.SSDConfig`), the optimizer and the
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


@dataclass(frozen=True)
class Backbone:
    """The converted backbone to build: a tf_keras MobileNet/MobileNetV2 without its top."""

    kind: str  # mobilenet_v1 | mobilenet_v2
    depth_multiplier: float
    image_size: tuple[int, int]

    @property
    def keras_application(self) -> str:
        return KERAS_APPLICATION[self.kind]

    def describe(self) -> str:
        return f"{self.kind} (depth {self.depth_multiplier:g}, {self.image_size[0]}x{self.image_size[1]})"


def _where(config: PipelineConfig, path: str) -> str:
    return config.origins.get(path) or config.source or "pipeline.config"


def backbone_of(config: PipelineConfig) -> Backbone:
    """The backbone a config's ``feature_extractor`` and ``image_resizer`` describe."""
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


# ----------------------------------------------------------------- SSD
def ssd_config(config: PipelineConfig, warnings: list[str]) -> SSDConfig:
    """``model { ssd { ... } }`` as the SSD task's settings."""
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
