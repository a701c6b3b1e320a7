"""A TF1 OD API SSD checkpoint's model, read off its names and shapes (no pipeline.config needed).

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
