"""The TF2 Object Detection API's SSD, with the trackable structure its checkpoints are written in.

A TF2 OD API checkpoint is keyed by object paths, not variable names:
``model/_feature_extractor/classification_backbone/layer_with_weights-N/...``,
``model/_feature_extractor/feature_map_generator/convolutions/I/J/...`` and
``model/_box_predictor/_prediction_heads/box_encodings/I/_box_encoder_layers/J/...``.
This module builds a tf_keras model whose attributes carry those names, so
``tf.train.Checkpoint(model=m).save()`` writes exactly the keys the OD API's
own ``model_builder`` model writes (checked entry for entry against
``tests/data/odapi_tf2``), and the OD API's fine-tune loader restores it.

The structure follows the attribute names of the OD API's classes
(``SSDMetaArch``, ``SSDMobileNetV{1,2}KerasFeatureExtractor``,
``KerasMultiResolutionFeatureMaps``, ``ConvolutionalBoxPredictor`` and its
heads); the code is ours.  Calling the model maps images in [-1, 1] to the raw
``box_encodings`` [B, anchors, 4] and ``class_predictions_with_background``
[B, anchors, num_classes + 1], per feature map under ``per_feature_map`` (with the six ``feature_maps``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .._tf import tf_keras

# feature extractor type -> (backbone layers giving the two base feature maps, attribute holding the extra layers)
EXTRACTORS = {
    "ssd_mobilenet_v1_keras": (("conv_pw_11_relu", "conv_pw_13_relu"), "_feature_map_generator"),
    "ssd_mobilenet_v2_keras": (("block_13_expand_relu", "out_relu"), "feature_map_generator"),
}
LAYER_DEPTHS = (512, 256, 256, 128)  # feature_map_layout's layer_depth of the four generated maps
ANCHORS_PER_LOCATION = (3, 6, 6, 6, 6, 6)  # ssd_anchor_generator, 6 layers, reduce_boxes_in_lowest_layer


@dataclass(frozen=True)
class SSDSpec:
    """What decides the variables of an OD API SSD: the ``model.ssd`` fields that shape them."""

    feature_extractor: str = "ssd_mobilenet_v2_keras"
    num_classes: int = 90
    depth_multiplier: float = 1.0
    min_depth: int = 16
    use_depthwise: bool = False  # feature_extractor.use_depthwise: separable extra layers
    box_predictor_kernel_size: int = 1
    box_predictor_depthwise: bool = False  # convolutional_box_predictor.use_depthwise (SSDLite heads)
    use_dropout: bool = False
    dropout_keep_probability: float = 0.8
    anchors_per_location: tuple[int, ...] = ANCHORS_PER_LOCATION
    image_size: int | tuple[int, int] = 300  # square side, or (height, width)
    batch_norm_epsilon: float = 0.001
    layer_depths: tuple[int, ...] = LAYER_DEPTHS  # feature_map_layout's generated maps
    # Initial values and BatchNorm momentum only (they shape no variable): what training starts from.
    initializer_stddev: float | None = None  # truncated normal of the extra layers and heads; None: Keras' default
    class_prediction_bias_init: float = 0.0
    batch_norm_decay: float = 0.99

    def depth(self, layer_depth: float) -> int:
        """The OD API's ``depth_fn``: a nominal depth times the multiplier, at least ``min_depth``."""
        return max(int(layer_depth * self.depth_multiplier), self.min_depth)

    @property
    def image_shape(self) -> tuple[int, int]:
        size = self.image_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def odapi_ssd(feature_extractor: str = "ssd_mobilenet_v2_keras", num_classes: int = 90, input_shape=None,
              include_top=None, **fields):
    """Build the SSD (a target builder: ``module:migrate.models:odapi_ssd``); ``include_top`` has no meaning
    for a detector and is ignored."""
    size = fields.pop("image_size", 300)
    size = tuple(input_shape[:2]) if input_shape else size
    size = tuple(size) if isinstance(size, list) else size
    for name in ("anchors_per_location", "layer_depths"):
        if isinstance(fields.get(name), list):
            fields[name] = tuple(fields[name])
    spec = SSDSpec(feature_extractor, num_classes, image_size=size, **fields)
    model = build(spec)
    model(tf_keras().Input((*spec.image_shape, 3)))  # creates every variable
    return model


def build(spec: SSDSpec):
    """The (unbuilt) detector for ``spec``."""
    if spec.feature_extractor not in EXTRACTORS:
        raise ValueError(f"OD API SSD: feature_extractor {spec.feature_extractor!r} is not supported; "
                         f"supported: {', '.join(EXTRACTORS)}")
    if len(spec.anchors_per_location) != 2 + len(spec.layer_depths):
        raise ValueError(f"OD API SSD: expected {2 + len(spec.layer_depths)} anchors-per-location counts (two "
                         f"backbone maps and {len(spec.layer_depths)} generated ones), got {spec.anchors_per_location}")
    return _classes()["SSDMetaArch"](spec)


def _backbone(spec: SSDSpec):
    """The classification backbone: tf_keras' MobileNet in build order, up to the two base feature maps."""
    keras = tf_keras()
    shape = (*spec.image_shape, 3)
    taps, _ = EXTRACTORS[spec.feature_extractor]
    if spec.feature_extractor == "ssd_mobilenet_v1_keras":
        full = keras.applications.MobileNet(input_shape=shape, alpha=spec.depth_multiplier, include_top=False,
                                            weights=None)
        full = _same_padding(full)
    else:
        full = keras.applications.MobileNetV2(input_shape=shape, alpha=spec.depth_multiplier, include_top=False,
                                              weights=None)
        full = _same_padding(full, _v2_filters(spec))
    outputs = [full.get_layer(name).output for name in taps]
    return keras.Model(full.input, outputs, name="classification_backbone")


def _same_padding(model, filters=None):
    """``model`` with SAME padding throughout, as the OD API builds its backbones (``use_explicit_padding:
    false``): Keras pads stride-2 convolutions itself (``ZeroPadding2D`` then VALID), which differs from
    SAME wherever the padded size is odd (MobileNet v1 at 300x300).  Layer order and names are kept, so
    the checkpoint keys (``layer_with_weights-N``) are too.  ``filters(name, filters)`` may change a
    convolution's output depth (layers are cloned in build order)."""
    keras = tf_keras()

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.ZeroPadding2D):
            return keras.layers.Activation("linear", name=config["name"])
        if config.get("padding") == "valid" and isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            config["padding"] = "same"
        if filters is not None and type(layer) is keras.layers.Conv2D:
            config["filters"] = filters(config["name"], config["filters"])
        return type(layer).from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def _v2_filters(spec: SSDSpec):
    """MobileNetV2's depths as the OD API's layer overrides set them, where Keras' own differ: ``Conv_1`` is
    1280, scaled by the multiplier only below 1 (Keras scales it only above 1), every convolution but the
    expansions has at least ``min_depth`` filters, and an expansion is 6 times its actual input depth."""
    alpha, current = spec.depth_multiplier, {}

    def filters(name: str, keras_filters: int) -> int:
        if name == "Conv_1":
            depth = 1280 if alpha >= 1.0 else _make_divisible(1280 * alpha)
        elif name.endswith("_expand"):
            depth = 6 * current["depth"]
        else:
            depth = keras_filters
        if not name.endswith("_expand"):
            depth = max(depth, spec.min_depth)
        if name == "Conv1" or name.endswith("_project"):
            current["depth"] = depth
        return depth

    return filters


def _make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's rounding of a scaled depth to a multiple of ``divisor``, never below 90% of ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _extra_layers(spec: SSDSpec, index: int, layer_depth: int, name: str) -> list:
    """One generated feature map's layers, in the OD API's order: 1x1 conv, BN, ReLU6, then a stride-2 3x3
    (depthwise + BN + ReLU6 + 1x1 when ``use_depthwise``), BN, ReLU6."""
    layers = tf_keras().layers
    half, full = spec.depth(layer_depth / 2), spec.depth(layer_depth)
    first = f"{name}_1_Conv2d_{index}_1x1_{half}"
    second = f"{name}_2_Conv2d_{index}_3x3_s2_{full}"
    stack = [layers.Conv2D(half, 1, padding="same", use_bias=False, name=first, **_initializers(spec)),
             _batch_norm(spec, first),
             layers.ReLU(6.0, name=f"{first}_relu6")]
    if spec.use_depthwise:
        stack += [layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name=f"{second}_depthwise",
                                         **_initializers(spec, "depthwise_initializer")),
                  _batch_norm(spec, f"{second}_depthwise"), layers.ReLU(6.0, name=f"{second}_depthwise_relu6"),
                  layers.Conv2D(full, 1, padding="same", use_bias=False, name=second, **_initializers(spec))]
    else:
        stack.append(layers.Conv2D(full, 3, strides=2, padding="same", use_bias=False, name=second,
                                   **_initializers(spec)))
    return stack + [_batch_norm(spec, second), layers.ReLU(6.0, name=f"{second}_relu6")]


def _batch_norm(spec: SSDSpec, name: str):
    return tf_keras().layers.BatchNormalization(momentum=spec.batch_norm_decay, epsilon=spec.batch_norm_epsilon,
                                                name=f"{name}_BatchNorm")


def _initializers(spec: SSDSpec, argument: str = "kernel_initializer") -> dict:
    """A new initializer for one layer (an unseeded Keras initializer repeats its values when reused)."""
    if spec.initializer_stddev is None:
        return {}
    return {argument: tf_keras().initializers.TruncatedNormal(stddev=spec.initializer_stddev)}


def _head_layers(spec: SSDSpec, outputs: int, name: str, dropout: bool, bias_init: float = 0.0) -> list:
    """A prediction head's layers: a ``kernel_size`` conv, or (SSDLite) depthwise + BN + ReLU6 + 1x1 conv."""
    keras = tf_keras()
    layers = keras.layers
    stack = [layers.Dropout(1.0 - spec.dropout_keep_probability, name=f"{name}_dropout")] if dropout else []
    k = spec.box_predictor_kernel_size
    last = dict(_initializers(spec), bias_initializer=keras.initializers.Constant(bias_init))
    if spec.box_predictor_depthwise:
        stack += [layers.DepthwiseConv2D(k, padding="same", use_bias=False, name=f"{name}_depthwise",
                                         **_initializers(spec, "depthwise_initializer")),
                  _batch_norm(spec, f"{name}_depthwise"), layers.ReLU(6.0, name=f"{name}_depthwise_relu6"),
                  layers.Conv2D(outputs, 1, padding="same", name=name, **last)]
    else:
        stack.append(layers.Conv2D(outputs, k, padding="same", name=name, **last))
    return stack


def _run(stack: list, net, training=None):
    for layer in stack:
        net = layer(net, training=training)
    return net


_CLASSES: dict = {}


def _classes() -> dict:
    """The model classes, defined once tf_keras is loaded (importing this module stays TensorFlow-free)."""
    if _CLASSES:
        return _CLASSES
    from .._tf import tensorflow  # noqa: PLC0415

    keras, ops = tf_keras(), tensorflow()

    class FeatureMapGenerator(keras.Model):
        """``KerasMultiResolutionFeatureMaps``: ``convolutions[i]`` are map i's layers ([] for base maps)."""

        def __init__(self, spec: SSDSpec, base_name: str):
            super().__init__(name="feature_map_generator")
            self.convolutions = [[], []] + [_extra_layers(spec, i, depth, base_name)
                                            for i, depth in enumerate(spec.layer_depths, start=2)]

        def call(self, base_maps, training=None):
            maps, net = list(base_maps), base_maps[-1]
            for stack in self.convolutions[2:]:
                net = _run(stack, net, training)
                maps.append(net)
            return maps

    class FeatureExtractor(keras.Model):
        """``SSDMobileNetV{1,2}KerasFeatureExtractor``: the backbone and the extra layers."""

        def __init__(self, spec: SSDSpec):
            super().__init__(name="feature_extractor")
            self.classification_backbone = _backbone(spec)
            base_name = "Conv2d_13_pointwise" if spec.feature_extractor == "ssd_mobilenet_v1_keras" else "layer_19"
            setattr(self, EXTRACTORS[spec.feature_extractor][1], FeatureMapGenerator(spec, base_name))
            self._generator_attribute = EXTRACTORS[spec.feature_extractor][1]

        def call(self, images, training=None):
            base_maps = self.classification_backbone(images, training=training)
            return getattr(self, self._generator_attribute)(base_maps, training=training)

    class Head(keras.Model):
        """One feature map's box or class head; its layers sit under ``attribute`` as in the OD API."""

        def __init__(self, stack: list, attribute: str, per_anchor: int, name: str):
            super().__init__(name=name)
            setattr(self, attribute, stack)
            self._attribute, self.per_anchor = attribute, per_anchor

        @property
        def stack(self) -> list:
            return getattr(self, self._attribute)

        def call(self, feature_map, training=None):
            net = _run(self.stack, feature_map, training)
            return ops.reshape(net, [ops.shape(net)[0], -1, self.per_anchor])

    class BoxPredictor(keras.Model):
        """``ConvolutionalBoxPredictor`` (no layers before the predictors): one box and one class head a map."""

        def __init__(self, spec: SSDSpec):
            super().__init__(name="box_predictor")
            slots = spec.num_classes + 1
            self._prediction_heads = {
                "box_encodings": [
                    Head(_head_layers(spec, a * 4, f"BoxPredictor_{i}_BoxEncodingPredictor", False),
                         "_box_encoder_layers", 4, f"BoxPredictor_{i}_box_encodings")
                    for i, a in enumerate(spec.anchors_per_location)],
                "class_predictions_with_background": [
                    Head(_head_layers(spec, a * slots, f"BoxPredictor_{i}_ClassPredictor", spec.use_dropout,
                                      spec.class_prediction_bias_init),
                         "_class_predictor_layers", slots, f"BoxPredictor_{i}_class_predictions")
                    for i, a in enumerate(spec.anchors_per_location)],
            }

        def call(self, feature_maps, training=None):
            return {kind: [head(m, training=training) for head, m in zip(heads, feature_maps)]
                    for kind, heads in self._prediction_heads.items()}

    class SSDMetaArch(keras.Model):
        """The detector: ``_feature_extractor`` and ``_box_predictor``, raw predictions out."""

        def __init__(self, spec: SSDSpec):
            super().__init__(name="ssd_meta_arch")
            self.spec = spec
            self._feature_extractor = FeatureExtractor(spec)
            self._box_predictor = BoxPredictor(spec)
            self.classification_only = False

        def checkpoint_children(self) -> dict:
            """The root children a checkpoint of this model has, as the OD API's loader reads them: the
            detector under ``model`` (``detection``, ``full``), or with ``classification_only`` the backbone
            alone under ``feature_extractor`` (``classification``)."""
            if self.classification_only:
                return {"feature_extractor": self._feature_extractor.classification_backbone}
            return {"model": self}

        def call(self, images, training=None):
            feature_maps = self._feature_extractor(images, training=training)
            per_map = self._box_predictor(feature_maps, training=training)
            outputs = {kind: ops.concat(parts, axis=1) for kind, parts in per_map.items()}
            outputs["per_feature_map"] = {**per_map, "feature_maps": feature_maps}
            return outputs

    _CLASSES.update(SSDMetaArch=SSDMetaArch, FeatureExtractor=FeatureExtractor, BoxPredictor=BoxPredictor)
    return _CLASSES


def functional(model):
    """``model`` (an :func:`odapi_ssd` detector) as a flat functional tf_keras model over the same layers and
    variables, for what needs a functional graph (tfmot, the TFLite converter, Keras' layer lookup), and the
    (height, width) of each feature map.  Outputs ``box_encodings`` and ``class_predictions_with_background``;
    ``model`` stays the object a checkpoint is written from."""
    keras = tf_keras()
    extractor = model._feature_extractor  # noqa: SLF001 - the OD API's attribute names are the layout
    backbone = extractor.classification_backbone
    generator = getattr(extractor, extractor._generator_attribute)  # noqa: SLF001
    maps, net = list(backbone.outputs), backbone.outputs[-1]
    for stack in generator.convolutions[2:]:
        net = _run(stack, net)
        maps.append(net)
    outputs = {}
    for kind, heads in model._box_predictor._prediction_heads.items():  # noqa: SLF001
        parts = [keras.layers.Reshape((-1, head.per_anchor), name=f"{head.name}_reshape")(_run(head.stack, m))
                 for head, m in zip(heads, maps)]
        outputs[kind] = keras.layers.Concatenate(axis=1, name=kind)(parts)
    graph = keras.Model(backbone.input, outputs, name=f"{model.name}_graph")
    return graph, tuple((int(m.shape[1]), int(m.shape[2])) for m in maps)
