"""MobileNet v1 and v2 written with tf_slim layers under slim's variable names.

tf_slim does not ship MobileNets, so these follow the layouts of
``models/research/slim/nets/mobilenet_v1.py`` and ``mobilenet/mobilenet_v2.py``
(same scopes, depths and strides) without their configurability.  The
``*_base`` functions return end points so the SSD builders can attach their
extra layers, as the Object Detection API does.  ``is_training=False`` is the
inference graph parity runs; the fixture zoo trains with ``True``.
"""
from __future__ import annotations

from ._slim import slim, tf

# (output depth, stride) of MobileNet v1's 13 depthwise-separable layers.
V1_SEPARABLE = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
# (expansion factor, output depth, repeats, first stride) of MobileNet v2's
# 17 inverted-residual layers, expanded_conv .. expanded_conv_16.
V2_BOTTLENECKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                  (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv_arg_scope(stddev: float = 0.03, decay: float = 0.9997, is_training: bool = True):
    """Conv + BatchNorm (with gamma) + ReLU6, as both slim MobileNets train."""
    s = slim()
    bn = {"center": True, "scale": True, "decay": decay, "epsilon": 0.001, "is_training": is_training,
          # slim's fused kernel; see _tf1.in_place_batch_norm for why.
          "updates_collections": None}
    return s.arg_scope(
        [s.conv2d, s.separable_conv2d],
        weights_initializer=tf().compat.v1.truncated_normal_initializer(stddev=stddev),
        activation_fn=tf().nn.relu6, normalizer_fn=s.batch_norm, normalizer_params=bn)


def _logits(net, num_classes: int):
    """``Logits/Conv2d_1c_1x1``: global pool then a biased 1x1 convolution."""
    s = slim()
    with tf().compat.v1.variable_scope("Logits"):
        net = tf().reduce_mean(net, [1, 2], keepdims=True)
        return s.conv2d(net, num_classes, [1, 1], activation_fn=None,
                        normalizer_fn=None, scope="Conv2d_1c_1x1")


def mobilenet_v1_base(images, depth_multiplier: float, min_depth: int = 8, is_training: bool = True):
    """MobileNet v1 up to ``Conv2d_13_pointwise`` in the current variable scope."""
    s = slim()
    depth = lambda d: max(int(d * depth_multiplier), min_depth)  # noqa: E731
    with conv_arg_scope(stddev=0.09, decay=0.9997, is_training=is_training):
        net = s.conv2d(images, depth(32), [3, 3], stride=2, scope="Conv2d_0")
        end_points = {"Conv2d_0": net}
        for i, (out, stride) in enumerate(V1_SEPARABLE, start=1):
            net = s.separable_conv2d(net, None, [3, 3], depth_multiplier=1,
                                     stride=stride, scope=f"Conv2d_{i}_depthwise")
            net = s.conv2d(net, depth(out), [1, 1], scope=f"Conv2d_{i}_pointwise")
            end_points[f"Conv2d_{i}_pointwise"] = net
    return net, end_points


def mobilenet_v1(images, depth_multiplier: float = 1.0, num_classes: int = 1001, is_training: bool = False):
    """Classification MobileNet v1 under ``MobilenetV1``; return logits [batch, classes]."""
    with tf().compat.v1.variable_scope("MobilenetV1"):
        net, _ = mobilenet_v1_base(images, depth_multiplier, is_training=is_training)
        return tf().squeeze(_logits(net, num_classes), [1, 2], name="Logits/SpatialSqueeze")


def make_divisible(value: float, divisor: int = 8, min_value: int = 8) -> int:
    """Round a channel count to a multiple of 8, never losing more than 10%."""
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _inverted_residual(net, scope: str, factor: int, out: int, stride: int):
    """One ``expanded_conv*`` block: [expand] -> depthwise -> project (+ skip).

    Returns the block output and the expansion output (None without expand).
    """
    s = slim()
    with tf().compat.v1.variable_scope(scope):
        inputs, in_depth, expansion = net, net.shape[-1], None
        if factor > 1:
            net = expansion = s.conv2d(net, make_divisible(in_depth * factor), [1, 1],
                                       scope="expand")
        net = s.separable_conv2d(net, None, [3, 3], depth_multiplier=1,
                                 stride=stride, scope="depthwise")
        net = s.conv2d(net, out, [1, 1], activation_fn=None, scope="project")
        return (net + inputs if stride == 1 and in_depth == out else net), expansion


def mobilenet_v2_base(images, depth_multiplier: float, is_training: bool = True, finegrain: bool = False):
    """MobileNet v2 up to ``Conv_1`` (slim's ``layer_19``) in the current scope.

    End points use slim's layer numbering: ``layer_1`` is ``Conv``,
    ``layer_2`` is ``expanded_conv``, ``layer_k`` is ``expanded_conv_{k-2}``.
    """
    s = slim()
    depth = lambda d: make_divisible(d * depth_multiplier)  # noqa: E731
    end_points = {}
    with conv_arg_scope(stddev=0.09, decay=0.997, is_training=is_training):
        net = s.conv2d(images, depth(32), [3, 3], stride=2, scope="Conv")
        block = 0
        for factor, out, repeats, first_stride in V2_BOTTLENECKS:
            for r in range(repeats):
                scope = "expanded_conv" + (f"_{block}" if block else "")
                stride = first_stride if r == 0 else 1
                net, expansion = _inverted_residual(net, scope, factor, depth(out), stride)
                end_points[f"layer_{block + 2}/expansion_output"] = expansion
                block += 1
        # finegrain_classification_mode keeps the last layer at 1280 for multipliers below 1
        last = 1280 if finegrain and depth_multiplier < 1 else depth(1280)
        net = s.conv2d(net, last, [1, 1], scope="Conv_1")
        end_points["layer_19"] = net
    return net, end_points


def mobilenet_v2(images, depth_multiplier: float = 1.0, num_classes: int = 1001, is_training: bool = False,
                 finegrain: bool = True):
    """Classification MobileNet v2 under ``MobilenetV2``; return logits [batch, classes]."""
    with tf().compat.v1.variable_scope("MobilenetV2"):
        net, _ = mobilenet_v2_base(images, depth_multiplier, is_training=is_training, finegrain=finegrain)
        return tf().squeeze(_logits(net, num_classes), [1, 2], name="Logits/SpatialSqueeze")


def ssd_mobilenet_v1_features(images, depth_multiplier: float = 1.0, is_training: bool = False):
    """The OD API SSD feature extractor's backbone (``FeatureExtractor/MobilenetV1``), last feature map."""
    with tf().compat.v1.variable_scope("FeatureExtractor/MobilenetV1"):
        net, _ = mobilenet_v1_base(images, depth_multiplier, min_depth=16, is_training=is_training)
    return net


def ssd_mobilenet_v2_features(images, depth_multiplier: float = 1.0, is_training: bool = False):
    """The OD API SSD feature extractor's backbone (``FeatureExtractor/MobilenetV2``), last feature map."""
    with tf().compat.v1.variable_scope("FeatureExtractor/MobilenetV2"):
        net, _ = mobilenet_v2_base(images, depth_multiplier, is_training=is_training)
    return net
