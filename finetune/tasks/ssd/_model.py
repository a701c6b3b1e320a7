"""SSD MobileNet as the TF2 Object Detection API builds it, in the layout its checkpoints have.

The detector is :func:`migrate.models.odapi_ssd`: the OD API's trackable
structure (``_feature_extractor/classification_backbone``, its
``feature_map_generator``, ``_box_predictor/_prediction_heads``), so one
checkpoint layout serves every way in and out of a run:

* a TF1 zoo checkpoint converted by ``ckpt-migrate convert`` (the whole detector),
* a TF2 zoo checkpoint (``checkpoint/ckpt-0`` beside its pipeline.config),
* what ckptkit's fine-tuning writes, which the TF2 OD API restores in turn.

Training runs the same layers through a flat functional graph
(:func:`migrate.models.odapi_ssd_functional`), because tfmot and the TFLite
converter take functional models only; both share every variable.

Feature maps (``feature_map_layout`` of the OD API's feature extractors):
MobileNet v1's ``Conv2d_11_pointwise`` and ``Conv2d_13_pointwise`` (tf_keras
``conv_pw_11_relu``, ``conv_pw_13_relu``); MobileNet v2's
``layer_15/expansion_output`` and ``layer_19`` (``block_13_expand_relu``,
``out_relu``); then one extra map per ``extra_layer_depths`` entry.  The
model maps images ``[B, H, W, 3]`` in [-1, 1] to ``{"box_encodings": [B,
anchors, 4], "class_predictions_with_background": [B, anchors, num_classes + 1]}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._base import freeze_batchnorm
from ._anchors import AnchorConfig
from ._box_coder import BoxCoder
from ._losses import LossConfig
from ._matcher import MatcherConfig
from ._postprocess import PostprocessConfig

KINDS = {"mobilenet_v1": "ssd_mobilenet_v1_keras", "mobilenet_v2": "ssd_mobilenet_v2_keras"}


@dataclass(frozen=True)
class SSDConfig:
    """An SSD ``model`` block of a pipeline.config.

    ``kind`` is the backbone (``mobilenet_v1`` | ``mobilenet_v2``) at
    ``depth_multiplier`` (backbone and extra layers, as in the OD API).
    ``use_depthwise`` makes the extra layers separable and
    ``box_predictor_depthwise`` the heads (SSDLite).  ``l2_weight`` is the
    conv_hyperparams' ``l2_regularizer`` weight, applied as slim does
    (``weight * sum(w ** 2) / 2``) to every kernel of the model.
    ``freeze_batchnorm`` normalises with the moving statistics also in
    training (gamma and beta still train), as the OD API's option does.
    """

    num_classes: int
    kind: str = "mobilenet_v1"
    image_size: tuple[int, int] = (300, 300)
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    box_coder: BoxCoder = field(default_factory=BoxCoder)
    matcher: MatcherConfig = field(default_factory=MatcherConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    extra_layer_depths: tuple[int, ...] = (512, 256, 256, 128)
    depth_multiplier: float = 1.0
    min_depth: int = 16
    use_depthwise: bool = False
    box_predictor_kernel_size: int = 1
    box_predictor_depthwise: bool = False
    class_prediction_bias_init: float = 0.0
    use_dropout: bool = False  # dropout on the class predictor's input, as the OD API applies it
    dropout_keep_probability: float = 0.8
    initializer_stddev: float = 0.03
    batch_norm_decay: float = 0.9997
    batch_norm_epsilon: float = 0.001
    l2_weight: float = 4e-5
    freeze_batchnorm: bool = False

    def __post_init__(self):
        if self.num_classes < 1:
            raise ValueError(f"SSD: expected num_classes >= 1 (without background), got {self.num_classes}")
        if self.kind not in KINDS:
            raise ValueError(f"SSD: backbone {self.kind!r} is not supported; expected one of {', '.join(KINDS)}")

    def spec(self):
        """The :class:`migrate.models.SSDSpec` of this detector (what shapes its variables, and initial values)."""
        from migrate.models import SSDSpec  # noqa: PLC0415

        same = ("num_classes", "depth_multiplier", "min_depth", "use_depthwise", "box_predictor_kernel_size",
                "box_predictor_depthwise", "use_dropout", "dropout_keep_probability", "batch_norm_epsilon",
                "initializer_stddev", "class_prediction_bias_init", "batch_norm_decay")
        return SSDSpec(feature_extractor=KINDS[self.kind], **{name: getattr(self, name) for name in same},
                       anchors_per_location=tuple(self.anchors.num_anchors_per_location()),
                       image_size=tuple(self.image_size), layer_depths=tuple(self.extra_layer_depths))


@dataclass(frozen=True)
class SSDModel:
    """The built detector: its functional graph, its checkpointed structure, anchors and backbone."""

    model: object  # tf_keras.Model: the functional graph that trains and exports
    trackable: object  # the OD API structure over the same variables: what checkpoints are written from
    backbone: object  # tf_keras.Model: images -> the two backbone feature maps (``classification_backbone``)
    anchors: np.ndarray  # float32 [num_anchors, 4]
    feature_map_shapes: tuple[tuple[int, int], ...]
    kind: str  # "mobilenet_v1" | "mobilenet_v2"

    @property
    def feature_extractor(self):
        """What a ``detection`` checkpoint restores: the backbone and the extra layers."""
        return self.trackable._feature_extractor  # noqa: SLF001 - the OD API's attribute name is the layout


def build_ssd(config: SSDConfig) -> SSDModel:
    """The detector ``config`` describes, freshly initialised (seed it with ``tf_keras.utils.set_random_seed``)."""
    from dataclasses import asdict  # noqa: PLC0415

    from migrate.models import odapi_ssd, odapi_ssd_functional  # noqa: PLC0415

    spec = asdict(config.spec())
    trackable = odapi_ssd(spec.pop("feature_extractor"), spec.pop("num_classes"), **spec)
    graph, shapes = odapi_ssd_functional(trackable)
    if config.freeze_batchnorm:
        freeze_batchnorm(graph)
    anchors = config.anchors.generate(shapes, tuple(config.image_size))
    backbone = trackable._feature_extractor.classification_backbone  # noqa: SLF001
    return SSDModel(graph, trackable, backbone, anchors, shapes, config.kind)
