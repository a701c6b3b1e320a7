"""Faster R-CNN on slim's ResNet v1, computing what the TF1 Object Detection API's
``faster_rcnn_resnet{50,101,152}`` computes.

The TF2 OD API rebuilt this detector on Keras' ResNet, which strides each
block's FIRST unit in its 1x1 conv where slim strides the LAST unit in its 3x3
(:mod:`._slim_resnet_v1`), so TF1 zoo weights loaded there detect something
else.  This model keeps slim's function, so a converted TF1 checkpoint detects
what it detected, and names its parts after the OD API's ``FasterRCNNMetaArch``
attributes (the checkpoint keys under ``model/``):

``_feature_extractor_for_proposal_features`` (``FirstStageFeatureExtractor``)
    images -> block3; block3 keeps its input's resolution (output stride 16),
    as TF1's ``output_stride=16`` makes it.
``_first_stage_box_predictor_first_conv`` (``Conv``)
    the RPN's 3x3 conv, ReLU6.
``_first_stage_box_predictor`` (``FirstStageBoxPredictor``)
    1x1 convs: ``BoxEncodingPredictor`` (anchors x 4), ``ClassPredictor`` (anchors x 2).
``_feature_extractor_for_box_classifier_features`` (``SecondStageFeatureExtractor``)
    block4 at stride 1 over the proposals' crops (``crop_and_resize`` to
    ``initial_crop_size``, then a VALID max pool).
``_mask_rcnn_box_predictor`` (``SecondStageBoxPredictor``)
    spatial mean, then dense ``BoxEncodingPredictor`` (classes x 4) and ``ClassPredictor`` (classes + 1).

Layer names inside the feature extractors are slim's scopes with "/" written
as "." (``resnet_v1_50.block1.unit_1.bottleneck_v1.conv1``), as in
:func:`slim_resnet_v1`, so a converted slim classification checkpoint's
backbone restores by name.  Proposal generation (anchors, decoding, NMS) is the
fine-tuning task's: the model computes the networks on either side of it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .._tf import tf_keras
from ._slim_resnet_v1 import BN_DECAY, root_block, stack_blocks, units_per_block

FIRST_STAGE_STRIDES = (2, 2, 1)  # blocks 1-3; block3's stride is taken by output_stride=16
SECOND_STAGE_STRIDE = 1  # block4 over the crops, as the OD API stacks it


@dataclass(frozen=True)
class FasterRCNNSpec:
    """What shapes a Faster R-CNN ResNet's variables (and a few initial values)."""

    num_classes: int = 90
    depth: int = 50
    base_depths: tuple[int, ...] = (64, 128, 256, 512)
    units: tuple[int, ...] | None = None  # per block; None: what ``depth`` has
    rpn_depth: int = 512  # first_stage_box_predictor_depth
    rpn_kernel_size: int = 3  # first_stage_box_predictor_kernel_size
    anchors_per_location: int = 12  # grid_anchor_generator: scales x aspect_ratios
    initial_crop_size: int = 14
    maxpool_kernel_size: int = 2
    maxpool_stride: int = 2
    share_box_across_classes: bool = False
    use_dropout: bool = False
    dropout_keep_probability: float = 1.0
    image_size: tuple[int, int] | None = None  # None: any size
    rpn_initializer_stddev: float = 0.01  # first_stage_box_predictor_conv_hyperparams' truncated normal
    batch_norm_decay: float = BN_DECAY

    @property
    def scope(self) -> str:
        return f"resnet_v1_{self.depth}"

    @property
    def block_units(self) -> tuple[int, ...]:
        return units_per_block(self.depth, self.units, self.base_depths)

    @property
    def feature_depth(self) -> int:
        """Depth of block3's output: what the RPN sees and the crops hold."""
        return 4 * self.base_depths[2]

    @property
    def crop_size(self) -> int:
        """Side of a proposal's features after the max pool (7 for the zoo's 14 / 2 / 2)."""
        return (self.initial_crop_size - self.maxpool_kernel_size) // self.maxpool_stride + 1


def faster_rcnn(num_classes: int = 90, depth: int = 50, input_shape=None, include_top=None, **fields):
    """Build the detector (a target builder: ``module:migrate.models:faster_rcnn``); ``include_top`` has no
    meaning for a detector and is ignored.  Every variable is created."""
    for name in ("base_depths", "units", "image_size"):
        if isinstance(fields.get(name), list):
            fields[name] = tuple(fields[name])
    if input_shape:
        fields["image_size"] = tuple(input_shape[:2])
    spec = FasterRCNNSpec(num_classes, depth, **fields)
    model = _classes()["FasterRCNNMetaArch"](spec)
    model.build_variables()
    return model


def _proposal_feature_extractor(spec: FasterRCNNSpec):
    keras = tf_keras()
    height, width = spec.image_size or (None, None)
    images = keras.layers.Input((height, width, 3), name="images")
    blocks = zip(spec.base_depths[:3], spec.block_units[:3], FIRST_STAGE_STRIDES)
    net = stack_blocks(root_block(images, spec.scope), spec.scope, blocks)
    return keras.Model(images, net, name="FirstStageFeatureExtractor")


def _box_classifier_feature_extractor(spec: FasterRCNNSpec):
    keras = tf_keras()
    crops = keras.layers.Input((spec.crop_size, spec.crop_size, spec.feature_depth), name="proposal_features")
    block4 = [(spec.base_depths[3], spec.block_units[3], SECOND_STAGE_STRIDE)]
    return keras.Model(crops, stack_blocks(crops, spec.scope, block4, first=4),
                       name="SecondStageFeatureExtractor")


def _rpn_initializer(spec: FasterRCNNSpec):
    """A new truncated normal per layer (one unseeded Keras initializer repeats its values when reused)."""
    return tf_keras().initializers.TruncatedNormal(stddev=spec.rpn_initializer_stddev)


def _fc_initializer():
    """The second stage's ``fc_hyperparams`` in the zoo configs: variance scaling 1.0, FAN_AVG, uniform."""
    return tf_keras().initializers.VarianceScaling(1.0, "fan_avg", "uniform")


_CLASSES: dict = {}


def _classes() -> dict:
    """The model classes, defined once tf_keras is loaded (importing this module stays TensorFlow-free)."""
    if _CLASSES:
        return _CLASSES
    from .._tf import tensorflow  # noqa: PLC0415

    keras, tf = tf_keras(), tensorflow()
    layers = keras.layers

    class FirstStageBoxPredictor(keras.Model):
        """The RPN's heads: per anchor 4 box codes and 2 objectness logits (background, object)."""

        def __init__(self, spec: FasterRCNNSpec):
            super().__init__(name="FirstStageBoxPredictor")
            self.anchors = spec.anchors_per_location
            self.box_encoding = layers.Conv2D(self.anchors * 4, 1, kernel_initializer=_rpn_initializer(spec),
                                              name="BoxEncodingPredictor")
            self.objectness = layers.Conv2D(self.anchors * 2, 1, kernel_initializer=_rpn_initializer(spec),
                                            name="ClassPredictor")

        def call(self, net):
            batch = tf.shape(net)[0]
            return (tf.reshape(self.box_encoding(net), [batch, -1, 4]),
                    tf.reshape(self.objectness(net), [batch, -1, 2]))

    class SecondStageBoxPredictor(keras.Model):
        """``MaskRCNNBoxPredictor``: spatial mean, optional dropout, dense box codes and class logits."""

        def __init__(self, spec: FasterRCNNSpec):
            super().__init__(name="SecondStageBoxPredictor")
            self.boxes = 1 if spec.share_box_across_classes else spec.num_classes
            self.dropout = layers.Dropout(1.0 - spec.dropout_keep_probability) if spec.use_dropout else None
            self.box_encoding = layers.Dense(self.boxes * 4, kernel_initializer=_fc_initializer(),
                                             name="BoxEncodingPredictor")
            self.classes = layers.Dense(spec.num_classes + 1, kernel_initializer=_fc_initializer(),
                                        name="ClassPredictor")

        def call(self, features, training=None):
            net = tf.reduce_mean(features, [1, 2])
            if self.dropout is not None:
                net = self.dropout(net, training=training)
            return tf.reshape(self.box_encoding(net), [-1, self.boxes, 4]), self.classes(net)

    class FasterRCNNMetaArch(keras.Model):
        """The two stages' networks; ``call((images, boxes))`` runs both, the second on given boxes."""

        def __init__(self, spec: FasterRCNNSpec):
            super().__init__(name="faster_rcnn_meta_arch")
            self.spec = spec
            self._feature_extractor_for_proposal_features = _proposal_feature_extractor(spec)
            self._first_stage_box_predictor_first_conv = layers.Conv2D(
                spec.rpn_depth, spec.rpn_kernel_size, padding="same", activation=tf.nn.relu6,
                kernel_initializer=_rpn_initializer(spec), name="Conv")
            self._first_stage_box_predictor = FirstStageBoxPredictor(spec)
            self._feature_extractor_for_box_classifier_features = _box_classifier_feature_extractor(spec)
            self._mask_rcnn_box_predictor = SecondStageBoxPredictor(spec)
            self._maxpool = layers.MaxPooling2D(spec.maxpool_kernel_size, spec.maxpool_stride, padding="valid")

        @property
        def feature_extractors(self) -> list:
            """Both stages' feature extractors: what a ``detection`` fine-tune checkpoint restores."""
            return [self._feature_extractor_for_proposal_features,
                    self._feature_extractor_for_box_classifier_features]

        def first_stage(self, images, training=None) -> dict:
            """``features`` (block3), ``rpn_box_encodings`` [B, anchors, 4] and ``rpn_objectness`` [B, anchors,
            2], anchors ordered (y, x, anchor) as the grid anchor generator lays them out."""
            features = self._feature_extractor_for_proposal_features(images, training=training)
            rpn = self._first_stage_box_predictor_first_conv(features)
            encodings, objectness = self._first_stage_box_predictor(rpn)
            return {"features": features, "rpn_box_encodings": encodings, "rpn_objectness": objectness}

        def crop(self, features, boxes):
            """Each image's ``boxes`` [B, P, 4] (normalised y1, x1, y2, x2) cut out of ``features``, resized to
            ``initial_crop_size`` and max-pooled: [B * P, crop, crop, depth]."""
            per_image = tf.shape(boxes)[1]
            indices = tf.repeat(tf.range(tf.shape(boxes)[0]), per_image)
            size = [self.spec.initial_crop_size] * 2
            crops = tf.image.crop_and_resize(features, tf.reshape(boxes, [-1, 4]), indices, size)
            return self._maxpool(crops)

        def second_stage(self, features, boxes, training=None) -> dict:
            """``box_encodings`` [B, P, classes (1 if shared), 4] and ``class_predictions_with_background``
            [B, P, classes + 1] for ``boxes`` [B, P, 4] (normalised)."""
            batch, per_image = tf.shape(boxes)[0], tf.shape(boxes)[1]
            crops = self.crop(features, boxes)
            net = self._feature_extractor_for_box_classifier_features(crops, training=training)
            encodings, logits = self._mask_rcnn_box_predictor(net, training=training)
            return {"box_encodings": tf.reshape(encodings, [batch, per_image, -1, 4]),
                    "class_predictions_with_background": tf.reshape(logits, [batch, per_image, -1])}

        def call(self, inputs, training=None):
            images, boxes = inputs
            outputs = self.first_stage(images, training=training)
            outputs.update(self.second_stage(outputs["features"], boxes, training=training))
            return outputs

        def build_variables(self) -> None:
            """Create every variable: one pass over a small image with one whole-image box."""
            height, width = self.spec.image_size or (64, 64)
            self((tf.zeros([1, height, width, 3]), tf.constant([[[0.0, 0.0, 1.0, 1.0]]])))

    _CLASSES.update(FasterRCNNMetaArch=FasterRCNNMetaArch)
    return _CLASSES
