"""The TF1 Object Detection API's Faster R-CNN ResNet v1 networks in inference mode, for detector parity.

Scopes are the OD API's (``FirstStageFeatureExtractor/resnet_v1_<depth>/...``, ``Conv``,
``FirstStageBoxPredictor/...``, ``SecondStageFeatureExtractor/resnet_v1_<depth>/block4/...``,
``SecondStageBoxPredictor/...``), so parity restores them straight from the TF1
checkpoint.  As ``faster_rcnn_resnet_v1_feature_extractor`` does, the first
stage is the whole ResNet at ``output_stride=16`` read at block3, the second
stage block4 at stride 1 over ``crop_and_resize`` crops max-pooled (VALID),
and the box classifier two fully connected layers over the crops' spatial
mean.  The boxes to crop are given (normalised), so both sides see the same ones.
"""
from __future__ import annotations

from ._slim import slim, tf
from .slim_nets import inference_scope


def faster_rcnn_resnet(images, boxes, depth: int, base_depths, units, rpn_depth: int, rpn_kernel_size: int,
                       anchors_per_location: int, num_classes: int, share_box_across_classes: bool = False,
                       initial_crop_size: int = 14, maxpool_kernel_size: int = 2, maxpool_stride: int = 2) -> dict:
    """``{"features", "rpn_box_encodings" [B, A, 4], "rpn_objectness" [B, A, 2], "box_encodings" [B, P,
    classes, 4], "class_predictions_with_background" [B, P, classes + 1]}`` for ``boxes`` [B, P, 4]."""
    s, nets, v1 = slim(), slim().nets, tf().compat.v1
    scope = f"resnet_v1_{depth}"
    strides = (2, 2, 2, 1)
    blocks = [nets.resnet_v1.resnet_v1_block(f"block{i}", base_depth=int(d), num_units=int(u), stride=st)
              for i, (d, u, st) in enumerate(zip(base_depths, units, strides), start=1)]
    with s.arg_scope(inference_scope(nets.resnet_utils.resnet_arg_scope())):
        with v1.variable_scope("FirstStageFeatureExtractor"):
            _, ends = nets.resnet_v1.resnet_v1(images, blocks[:3], None, is_training=False, global_pool=False,
                                               output_stride=16, scope=scope)
        features = ends[f"FirstStageFeatureExtractor/{scope}/block3"]
    rpn = s.conv2d(features, rpn_depth, [rpn_kernel_size] * 2, activation_fn=tf().nn.relu6, scope="Conv")
    batch = tf().shape(images)[0]
    with v1.variable_scope("FirstStageBoxPredictor"):
        encodings = s.conv2d(rpn, anchors_per_location * 4, [1, 1], activation_fn=None, scope="BoxEncodingPredictor")
        objectness = s.conv2d(rpn, anchors_per_location * 2, [1, 1], activation_fn=None, scope="ClassPredictor")
    per_image = tf().shape(boxes)[1]
    crops = tf().image.crop_and_resize(features, tf().reshape(boxes, [-1, 4]),
                                       tf().repeat(tf().range(batch), per_image), [initial_crop_size] * 2)
    crops = s.max_pool2d(crops, [maxpool_kernel_size] * 2, stride=maxpool_stride)
    with s.arg_scope(inference_scope(nets.resnet_utils.resnet_arg_scope())), \
            s.arg_scope([s.batch_norm], is_training=False):
        with v1.variable_scope("SecondStageFeatureExtractor"), v1.variable_scope(scope):
            unit = {"depth": 4 * int(base_depths[3]), "depth_bottleneck": int(base_depths[3]), "stride": 1}
            block4 = nets.resnet_utils.Block("block4", nets.resnet_v1.bottleneck, [unit] * int(units[3]))
            second = nets.resnet_utils.stack_blocks_dense(crops, [block4])
    pooled = tf().reduce_mean(second, [1, 2])
    boxes_per_proposal = 1 if share_box_across_classes else num_classes
    with v1.variable_scope("SecondStageBoxPredictor"):
        box_codes = s.fully_connected(pooled, boxes_per_proposal * 4, activation_fn=None, scope="BoxEncodingPredictor")
        logits = s.fully_connected(pooled, num_classes + 1, activation_fn=None, scope="ClassPredictor")
    return {"features": features,
            "rpn_box_encodings": tf().reshape(encodings, [batch, -1, 4]),
            "rpn_objectness": tf().reshape(objectness, [batch, -1, 2]),
            "box_encodings": tf().reshape(box_codes, [batch, per_image, -1, 4]),
            "class_predictions_with_background": tf().reshape(logits, [batch, per_image, -1])}
