"""tf_slim's own classification nets in inference mode, as parity references.

Each builder wraps ``tf_slim.nets`` under its arg scope with
``is_training=False`` (BatchNorm uses its moving statistics, dropout is off)
and returns logits ``[batch, num_classes]``.  Variables get slim's scope
names, so parity restores them straight from the source checkpoint.
``base_depths`` rebuilds ResNets with other bottleneck depths (the fixture
zoo's ``*_small`` entries use ``(4, 8, 16, 32)``).
"""
from __future__ import annotations

from ._slim import slim, tf

# Units per block of slim's resnet_v{1,2}_{50,101,152,200}.
RESNET_UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
RESNET_STRIDES = (2, 2, 2, 1)  # in the last unit of each block
RESNET_BASE_DEPTHS = (64, 128, 256, 512)


def inference_scope(scope: dict) -> dict:
    """Copy a slim arg_scope so BatchNorm takes slim's fused kernel.

    With the default ``updates_collections=UPDATE_OPS`` slim builds BatchNorm
    through a Keras legacy layer that TensorFlow 2.21 can no longer import;
    ``None`` selects the fused kernel, which creates the same variables and,
    with ``is_training=False``, computes the same inference function.
    """
    copy = {}
    for op, kwargs in scope.items():
        kwargs = dict(kwargs)
        if "normalizer_params" in kwargs:
            kwargs["normalizer_params"] = {**kwargs["normalizer_params"], "updates_collections": None}
        if "updates_collections" in kwargs:
            kwargs["updates_collections"] = None
        copy[op] = kwargs
    return copy


def _squeezed(logits):
    """``[batch, 1, 1, classes]`` -> ``[batch, classes]``; other ranks unchanged."""
    return tf().squeeze(logits, [1, 2], name="SpatialSqueeze") if logits.shape.rank == 4 else logits


VGG_CONVS = {"vgg_16": (2, 2, 3, 3, 3), "vgg_19": (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)


def vgg_16(images, num_classes: int = 1000, widths=VGG_WIDTHS, fc_width: int = 4096):
    """slim ``vgg_16``: logits ``[batch, num_classes]`` (fc8, dropout off)."""
    return _vgg("vgg_16", images, num_classes, widths, fc_width)


def vgg_19(images, num_classes: int = 1000, widths=VGG_WIDTHS, fc_width: int = 4096):
    """slim ``vgg_19``: logits ``[batch, num_classes]`` (fc8, dropout off)."""
    return _vgg("vgg_19", images, num_classes, widths, fc_width)


def _vgg(name: str, images, num_classes: int, widths, fc_width: int):
    """slim's vgg graph at the given widths (``tf_slim.nets.vgg`` hard-codes 64..512 and 4096): the same
    scopes, 3x3 SAME convs, 2x2 max-pools, fc6 as a 7x7 VALID conv, fc7 and fc8 as 1x1 convs."""
    s = slim()
    with s.arg_scope(s.nets.vgg.vgg_arg_scope()), tf().compat.v1.variable_scope(name):
        net = images
        for block, (convs, width) in enumerate(zip(VGG_CONVS[name], widths), start=1):
            net = s.repeat(net, convs, s.conv2d, int(width), [3, 3], scope=f"conv{block}")
            net = s.max_pool2d(net, [2, 2], scope=f"pool{block}")
        net = s.conv2d(net, int(fc_width), [7, 7], padding="VALID", scope="fc6")
        net = s.conv2d(net, int(fc_width), [1, 1], scope="fc7")
        logits = s.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="fc8")
    return _squeezed(logits)


def resnet_blocks(block_fn, depth: int, base_depths=None) -> list:
    """slim's four ResNet blocks for ``depth``, optionally at other bottleneck depths."""
    if depth not in RESNET_UNITS:
        raise ValueError(f"expected a ResNet depth in {sorted(RESNET_UNITS)}, got depth={depth!r}")
    base_depths = tuple(base_depths or RESNET_BASE_DEPTHS)
    if len(base_depths) != len(RESNET_STRIDES):
        raise ValueError(f"expected {len(RESNET_STRIDES)} base depths, one per block; got {base_depths}")
    return [block_fn(f"block{i}", base_depth=int(d), num_units=u, stride=s)
            for i, (d, u, s) in enumerate(zip(base_depths, RESNET_UNITS[depth], RESNET_STRIDES), start=1)]


def resnet_v1(images, depth: int = 50, num_classes: int = 1000, base_depths=None):
    """slim ``resnet_v1_<depth>`` (scope ``resnet_v1_<depth>``): logits ``[batch, num_classes]``."""
    nets = slim().nets
    with slim().arg_scope(inference_scope(nets.resnet_utils.resnet_arg_scope())):
        blocks = resnet_blocks(nets.resnet_v1.resnet_v1_block, depth, base_depths)
        logits, _ = nets.resnet_v1.resnet_v1(images, blocks, num_classes, is_training=False,
                                             scope=f"resnet_v1_{depth}")
    return _squeezed(logits)


def resnet_v2(images, depth: int = 50, num_classes: int = 1001, base_depths=None):
    """slim ``resnet_v2_<depth>`` (scope ``resnet_v2_<depth>``): logits ``[batch, num_classes]``.

    tf_slim's ``resnet_v2`` keeps the logits ``[batch, 1, 1, classes]``;
    they are squeezed here as the research/slim version does.
    """
    nets = slim().nets
    with slim().arg_scope(inference_scope(nets.resnet_utils.resnet_arg_scope())):
        blocks = resnet_blocks(nets.resnet_v2.resnet_v2_block, depth, base_depths)
        logits, _ = nets.resnet_v2.resnet_v2(images, blocks, num_classes, is_training=False,
                                             scope=f"resnet_v2_{depth}")
    return _squeezed(logits)


def inception_v3(images, num_classes: int = 1001, depth_multiplier: float = 1.0, min_depth: int = 16):
    """slim ``inception_v3`` (scope ``InceptionV3``): logits ``[batch, num_classes]``.

    The auxiliary head is built too (its variables are in every checkpoint)
    but only the main logits are returned.
    """
    nets = slim().nets
    with slim().arg_scope(inference_scope(nets.inception_v3.inception_v3_arg_scope())):
        logits, _ = nets.inception_v3.inception_v3(images, num_classes, is_training=False, min_depth=min_depth,
                                                   depth_multiplier=depth_multiplier)
    return logits
