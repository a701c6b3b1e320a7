"""A TF1 OD API SSD or Faster R-CNN checkpoint's model, read off its names and shapes (no pipeline.config).

The fields are those of :class:`migrate.models.SSDSpec`, i.e. what a TF2
pipeline.config must say for the OD API to build a model these tensors fit:
the feature extractor, its depth multiplier, depthwise extra layers, the box
predictor's kernel and SSDLite heads, anchors per location and the class
count.  The rule set ``od_ssd_mobilenet`` uses them (``derive_with``) as the
arguments of its target.  No TensorFlow.
"""
from __future__ import annotations

import re

_EXTRACTORS = {"MobilenetV1": ("ssd_mobilenet_v1_keras", "Conv2d_0/weights", 32),
               "MobilenetV2": ("ssd_mobilenet_v2_keras", "expanded_conv_16/project/weights", 320)}
_DEPTHWISE_EXTRA = re.compile(r"^FeatureExtractor/\w+/\w+_2_Conv2d_\d+_3x3_s2_\d+_depthwise/depthwise_weights$")


def ssd_fields(specs) -> dict:
    """``{feature_extractor, depth_multiplier, use_depthwise, box_predictor_kernel_size,
    box_predictor_depthwise, anchors_per_location, num_classes}`` for an OD API SSD checkpoint; ``{}`` when
    ``specs`` is not one."""
    net = next((n for n in _EXTRACTORS if f"FeatureExtractor/{n}/{_EXTRACTORS[n][1]}" in specs), None)
    if net is None or "BoxPredictor_0/BoxEncodingPredictor/weights" not in specs:
        return {}
    extractor, probe, nominal = _EXTRACTORS[net]
    anchors = []
    while (box := specs.get(f"BoxPredictor_{len(anchors)}/BoxEncodingPredictor/weights")) is not None:
        anchors.append(box.shape[-1] // 4)
    slots = specs["BoxPredictor_0/ClassPredictor/weights"].shape[-1] // anchors[0]
    predictor_depthwise = "BoxPredictor_0/BoxEncodingPredictor_depthwise/depthwise_weights" in specs
    kernel_tensor = ("BoxPredictor_0/BoxEncodingPredictor_depthwise/depthwise_weights" if predictor_depthwise
                     else "BoxPredictor_0/BoxEncodingPredictor/weights")
    return {
        "feature_extractor": extractor,
        "depth_multiplier": round(specs[f"FeatureExtractor/{net}/{probe}"].shape[-1] / nominal, 4),
        "use_depthwise": any(_DEPTHWISE_EXTRA.match(name) for name in specs),
        "box_predictor_kernel_size": int(specs[kernel_tensor].shape[0]),
        "box_predictor_depthwise": predictor_depthwise,
        "anchors_per_location": anchors,
        "num_classes": slots - 1,
    }


_FRCNN_DEPTH = re.compile(r"^FirstStageFeatureExtractor/resnet_v1_(\d+)/conv1/weights$")
_FRCNN_UNIT = re.compile(r"^(First|Second)StageFeatureExtractor/resnet_v1_\d+/block(\d)/unit_(\d+)/")
_FRCNN_HEADS = ("Conv/weights", "FirstStageBoxPredictor/BoxEncodingPredictor/weights",
                "SecondStageBoxPredictor/ClassPredictor/weights",
                "SecondStageBoxPredictor/BoxEncodingPredictor/weights")


def _stage(block: int) -> str:
    """Where a block is read: blocks 1-3 in the first stage, block4 in the second (the first stage's own copy of
    block4 is built by TF1 but never used)."""
    return "Second" if block == 4 else "First"


def faster_rcnn_fields(specs) -> dict:
    """``{depth, base_depths, units, rpn_depth, rpn_kernel_size, anchors_per_location, num_classes,
    share_box_across_classes}`` (:class:`migrate.models.FasterRCNNSpec`) for an OD API Faster R-CNN ResNet
    checkpoint; ``{}`` when ``specs`` is not one."""
    depth = next((m.group(1) for name in specs if (m := _FRCNN_DEPTH.match(name))), None)
    first_units = [f"{_stage(b)}StageFeatureExtractor/resnet_v1_{depth}/block{b}/unit_1/bottleneck_v1/conv1/weights"
                   for b in range(1, 5)]
    if depth is None or any(name not in specs for name in (*_FRCNN_HEADS, *first_units)):
        return {}
    units = [0, 0, 0, 0]
    for name in specs:
        m = _FRCNN_UNIT.match(name)
        if m and m.group(1) == _stage(int(m.group(2))):
            block = int(m.group(2))
            units[block - 1] = max(units[block - 1], int(m.group(3)))
    num_classes = specs["SecondStageBoxPredictor/ClassPredictor/weights"].shape[-1] - 1
    rpn = specs["Conv/weights"].shape
    return {
        "depth": int(depth), "base_depths": [specs[name].shape[-1] for name in first_units], "units": units,
        "rpn_depth": rpn[-1], "rpn_kernel_size": rpn[0],
        "anchors_per_location": specs["FirstStageBoxPredictor/BoxEncodingPredictor/weights"].shape[-1] // 4,
        "num_classes": num_classes,
        "share_box_across_classes": (
            specs["SecondStageBoxPredictor/BoxEncodingPredictor/weights"].shape[-1] == 4 and num_classes > 1),
    }
