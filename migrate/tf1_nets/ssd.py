"""The TF1 Object Detection API's SSD MobileNet v1/v2 graph in inference mode, for detector parity.

Variable scopes are the OD API's (``FeatureExtractor/MobilenetV{1,2}/...``,
``<base>_1_Conv2d_<i>_1x1_<d>``, ``<base>_2_Conv2d_<i>_3x3_s2_<d>[_depthwise]``,
``BoxPredictor_<i>/{BoxEncodingPredictor,ClassPredictor}[_depthwise]``), so
parity restores them straight from the TF1 checkpoint.  The arguments are the
fields :func:`migrate._odapi.ssd_fields` reads off that checkpoint; the output
is the raw predictions per feature map, before anchors and post-processing.
"""
from __future__ import annotations

from ._slim import slim, tf
from .mobilenet import conv_arg_scope, mobilenet_v1_base, mobilenet_v2_base

LAYER_DEPTHS = (512, 256, 256, 128)


def ssd_mobilenet(images, feature_extractor: str, depth_multiplier: float, use_depthwise: bool,
                  box_predictor_kernel_size: int, box_predictor_depthwise: bool, anchors_per_location,
                  num_classes: int, min_depth: int = 16) -> dict[str, list]:
    """``{"feature_maps": [...], "box_encodings": [[B, n_i, 4] per map],
    "class_predictions_with_background": [[B, n_i, C + 1] per map]}``."""
    v1 = feature_extractor.startswith("ssd_mobilenet_v1")
    depth = lambda d: max(int(d * depth_multiplier), min_depth)  # noqa: E731 - the OD API's depth_fn
    with tf().compat.v1.variable_scope(f"FeatureExtractor/MobilenetV{1 if v1 else 2}"):
        if v1:
            net, ends = mobilenet_v1_base(images, depth_multiplier, min_depth=min_depth, is_training=False)
            maps, base = [ends["Conv2d_11_pointwise"], net], "Conv2d_13_pointwise"
        else:
            net, ends = mobilenet_v2_base(images, depth_multiplier, is_training=False)
            maps, base = [ends["layer_15/expansion_output"], net], "layer_19"
        with conv_arg_scope(is_training=False):
            for index, nominal in enumerate(LAYER_DEPTHS, start=2):
                net = _extra_layer(net, base, index, depth(nominal / 2), depth(nominal), use_depthwise)
                maps.append(net)
    outputs = {"feature_maps": maps, "box_encodings": [], "class_predictions_with_background": []}
    for i, (feature_map, anchors) in enumerate(zip(maps, anchors_per_location)):
        with tf().compat.v1.variable_scope(f"BoxPredictor_{i}"):
            for key, scope, per_anchor in (("box_encodings", "BoxEncodingPredictor", 4),
                                           ("class_predictions_with_background", "ClassPredictor", num_classes + 1)):
                raw = _head(feature_map, scope, anchors * per_anchor, box_predictor_kernel_size,
                            box_predictor_depthwise)
                outputs[key].append(tf().reshape(raw, [tf().shape(raw)[0], -1, per_anchor]))
    return outputs


def _extra_layer(net, base: str, index: int, half: int, full: int, depthwise: bool):
    s = slim()
    net = s.conv2d(net, half, [1, 1], scope=f"{base}_1_Conv2d_{index}_1x1_{half}")
    name = f"{base}_2_Conv2d_{index}_3x3_s2_{full}"
    if depthwise:
        net = s.separable_conv2d(net, None, [3, 3], depth_multiplier=1, stride=2, scope=f"{name}_depthwise")
        return s.conv2d(net, full, [1, 1], scope=name)
    return s.conv2d(net, full, [3, 3], stride=2, scope=name)


def _head(feature_map, scope: str, outputs: int, kernel: int, depthwise: bool):
    """A biased ``kernel`` conv, or (SSDLite) depthwise + BatchNorm + ReLU6 then a biased 1x1 conv."""
    s = slim()
    if depthwise:
        with conv_arg_scope(is_training=False):
            feature_map = s.separable_conv2d(feature_map, None, [kernel, kernel], depth_multiplier=1,
                                             scope=f"{scope}_depthwise")
        kernel = 1
    return s.conv2d(feature_map, outputs, [kernel, kernel], activation_fn=None, normalizer_fn=None, scope=scope)
