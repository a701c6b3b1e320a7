"""SSD on a converted MobileNet backbone, as the OD API's ``ssd_mobilenet_v1/v2`` builds it.

Feature maps (``feature_map_layout`` of the OD API's feature extractors):

* MobileNet v1: ``Conv2d_11_pointwise`` and ``Conv2d_13_pointwise`` (tf_keras
  ``conv_pw_11_relu``, ``conv_pw_13_relu``);
* MobileNet v2: ``layer_15/expansion_output`` and ``layer_19`` (tf_keras
  ``block_13_expand_relu``, ``out_relu``);

then one extra feature map per ``extra_layer_depths`` entry (default 512, 256,
256, 128): a 1x1 convolution to half the depth and a 3x3 stride-2 SAME
convolution, each with BatchNorm and ReLU6, depths ``max(int(d * depth_multiplier),
min_depth)``.  Layers are named after the OD API's variable scopes with "/"
written as "." (``Conv2d_13_pointwise_2_Conv2d_2_3x3_s2_512``,
``BoxPredictor_0.ClassPredictor``), so a detection checkpoint can be mapped
onto them by a rule file.

The box predictor is the ``convolutional_box_predictor`` with
``num_layers_before_predictor: 0`` and ``use_depthwise: false`` (what the zoo's
ssd_mobilenet configs use): per feature map one convolution (kernel
``box_predictor_kernel_size``) for ``A * 4`` box encodings and one, after
optional dropout, for ``A * (num_classes + 1)`` class logits, background first.  The model maps
images ``[B, H, W, 3]`` in [-1, 1] to ``{"box_encodings": [B, anchors, 4],
"class_predictions_with_background": [B, anchors, num_classes + 1]}``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from migrate.tf import tf_keras

from .._base import freeze_batchnorm
from ._anchors import AnchorConfig
from ._box_coder import BoxCoder
from ._losses import LossConfig
from ._matcher import MatcherConfig
from ._postprocess import PostprocessConfig

# backbone kind -> (tf_keras layers giving the two backbone feature maps, OD API name of the last one)
FEATURE_LAYERS = {
    "mobilenet_v1": (("conv_pw_11_relu", "conv_pw_13_relu"), "Conv2d_13_pointwise"),
    "mobilenet_v2": (("block_13_expand_relu", "out_relu"), "layer_19"),
}


@dataclass(frozen=True)
class SSDConfig:
    """An SSD ``model`` block of a pipeline.config, for a backbone given as a tf_keras model.

    ``depth_multiplier`` (of the extra layers) defaults to the backbone's alpha.
    ``l2_weight`` is the conv_hyperparams' ``l2_regularizer`` weight, applied as
    slim does (``weight * sum(w ** 2) / 2``) to every kernel of the model.
    ``freeze_batchnorm`` normalises with the moving statistics also in training
    (gamma and beta still train), as the OD API's option does.
    """

    num_classes: int
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    box_coder: BoxCoder = field(default_factory=BoxCoder)
    matcher: MatcherConfig = field(default_factory=MatcherConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    extra_layer_depths: tuple[int, ...] = (512, 256, 256, 128)
    depth_multiplier: float | None = None
    min_depth: int = 16
    box_predictor_kernel_size: int = 1
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


@dataclass(frozen=True)
class SSDModel:
    """The built detector: the keras model, its anchors and what they were derived from."""

    model: object  # tf_keras.Model
    features: object  # tf_keras.Model: images -> the two backbone feature maps
    anchors: np.ndarray  # float32 [num_anchors, 4]
    feature_map_shapes: tuple[tuple[int, int], ...]
    kind: str  # "mobilenet_v1" | "mobilenet_v2"


def backbone_kind(backbone) -> str:
    """``mobilenet_v1`` or ``mobilenet_v2``, from the backbone's layer names."""
    names = {layer.name for layer in backbone.layers}
    for kind, (layers, _) in FEATURE_LAYERS.items():
        if set(layers) <= names:
            return kind
    expected = "; ".join(f"{k}: {', '.join(v[0])}" for k, v in FEATURE_LAYERS.items())
    raise ValueError(f"SSD: expected a tf_keras MobileNet or MobileNetV2 backbone with layers ({expected}); "
                     f"model {backbone.name!r} has none of these sets. Build it with "
                     f"tf_keras.applications.MobileNet/MobileNetV2(include_top=False) or "
                     f"`ckpt-migrate convert --target auto`")


def backbone_alpha(backbone, kind: str) -> float:
    """The width multiplier of a tf_keras MobileNet: from its name, else from its layer depths."""
    found = re.search(r"_(\d+(?:\.\d+)?)_\d+$", backbone.name)
    if found:
        return float(found.group(1))
    if kind == "mobilenet_v1":
        return backbone.get_layer("conv1").filters / 32
    return backbone.get_layer("block_16_project").filters / 320


def build_ssd(backbone, config: SSDConfig) -> SSDModel:
    """An SSD keras model sharing ``backbone``'s layers (restoring into ``backbone`` restores it)."""
    keras = tf_keras()
    kind = backbone_kind(backbone)
    tap_names, base_name = FEATURE_LAYERS[kind]
    multiplier = config.depth_multiplier or backbone_alpha(backbone, kind)
    taps = [backbone.get_layer(name).output for name in tap_names]
    features = keras.Model(backbone.input, taps, name=f"{kind}_features")
    feature_maps = list(taps)
    net = taps[-1]
    for index, layer_depth in enumerate(config.extra_layer_depths, start=len(taps)):
        depth = max(int(layer_depth // 2 * multiplier), config.min_depth)
        net = _conv_bn_relu6(net, f"{base_name}_1_Conv2d_{index}_1x1_{depth}", depth, 1, 1, config)
        depth = max(int(layer_depth * multiplier), config.min_depth)
        net = _conv_bn_relu6(net, f"{base_name}_2_Conv2d_{index}_3x3_s2_{depth}", depth, 3, 2, config)
        feature_maps.append(net)
    shapes = tuple(_spatial_shape(f) for f in feature_maps)
    image_shape = _spatial_shape(backbone.input)
    anchors = config.anchors.generate(shapes, image_shape)
    per_location = config.anchors.num_anchors_per_location()
    boxes, logits = [], []
    for i, (feature_map, count) in enumerate(zip(feature_maps, per_location)):
        box, cls = _box_predictor(feature_map, i, count, config)
        boxes.append(box)
        logits.append(cls)
    outputs = {
        "box_encodings": keras.layers.Concatenate(axis=1, name="box_encodings")(boxes),
        "class_predictions_with_background":
            keras.layers.Concatenate(axis=1, name="class_predictions_with_background")(logits),
    }
    model = keras.Model(backbone.input, outputs, name=f"ssd_{kind}")
    if config.freeze_batchnorm:
        freeze_batchnorm(model)
    return SSDModel(model, features, anchors, shapes, kind)


def _conv_bn_relu6(net, name: str, depth: int, kernel: int, stride: int, config: SSDConfig):
    layers = tf_keras().layers
    net = layers.Conv2D(depth, kernel, strides=stride, padding="same", use_bias=False,
                        kernel_initializer=_initializer(config), name=name)(net)
    net = layers.BatchNormalization(momentum=config.batch_norm_decay, epsilon=config.batch_norm_epsilon,
                                    name=f"{name}.BatchNorm")(net)
    return layers.ReLU(6.0, name=f"{name}.Relu6")(net)


def _box_predictor(feature_map, index: int, num_anchors: int, config: SSDConfig):
    keras = tf_keras()
    layers = keras.layers
    scope = f"BoxPredictor_{index}"
    kernel = config.box_predictor_kernel_size
    box = layers.Conv2D(num_anchors * 4, kernel, padding="same", kernel_initializer=_initializer(config),
                        name=f"{scope}.BoxEncodingPredictor")(feature_map)
    class_input = feature_map
    if config.use_dropout:
        class_input = layers.Dropout(1.0 - config.dropout_keep_probability, name=f"{scope}.Dropout")(feature_map)
    cls = layers.Conv2D(num_anchors * (config.num_classes + 1), kernel, padding="same",
                        kernel_initializer=_initializer(config),
                        bias_initializer=keras.initializers.Constant(config.class_prediction_bias_init),
                        name=f"{scope}.ClassPredictor")(class_input)
    box = layers.Reshape((-1, 4), name=f"{scope}.BoxEncodingPredictor.Reshape")(box)
    cls = layers.Reshape((-1, config.num_classes + 1), name=f"{scope}.ClassPredictor.Reshape")(cls)
    return box, cls


def _initializer(config: SSDConfig):
    return tf_keras().initializers.TruncatedNormal(stddev=config.initializer_stddev)


def _spatial_shape(tensor) -> tuple[int, int]:
    height, width = tensor.shape[1], tensor.shape[2]
    if height is None or width is None:
        raise ValueError("SSD: anchors need a fixed input size, got a backbone with input shape "
                         f"{tuple(tensor.shape)}; build the backbone with input_shape=(H, W, 3)")
    return int(height), int(width)
