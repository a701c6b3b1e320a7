"""TF-slim's ResNet v1 (``tf_slim.nets.resnet_v1``) as a tf_keras functional model.

Keras' ``ResNet50`` holds tensors of the same shapes but computes something
else, so slim weights loaded into it give wrong predictions.  Slim differs in:

* each block subsamples in its LAST unit, with the stride on the 3x3 conv
  (``conv2``); Keras strides the FIRST unit's 1x1 conv and its shortcut;
* a unit whose depth does not change keeps an identity shortcut, subsampled
  by a 1x1 max-pool when strided; only depth changes get a 1x1 conv shortcut;
* strided 3x3/7x7 convs use ``conv2d_same``: symmetric explicit zero padding
  of ``(k - 1) // 2`` before / the rest after, then a VALID conv;
* ``pool1`` is a 3x3/2 max-pool with SAME padding (Keras pads 1 on both sides);
* convs followed by BatchNorm have no bias; BatchNorm has epsilon 1e-5,
  ``scale=True`` (gamma), decay 0.997;
* the classifier is a 1x1 conv with biases (``logits``) over the keep-dims
  global mean (``pool5``), then squeezed to ``[batch, num_classes]``.

Layer names are the slim variable scopes with "/" written as "." (Keras layer
names cannot hold "/"): the checkpoint tensor ``resnet_v1_50/conv1/weights``
is the kernel of layer ``resnet_v1_50.conv1``, ``.../conv1/BatchNorm/gamma``
the gamma of layer ``resnet_v1_50.conv1.BatchNorm``.  Layers without
variables get suffixes (``.pad``, ``.relu``, ``.add``) that no scope uses.

Not reproduced: ``output_stride`` (atrous), ``include_root_block=False`` and
the L2 weight decay of ``resnet_arg_scope`` (a training-time loss term).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tf_keras

# Units per block of slim's resnet_v1_{50,101,152,200}.
UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
BLOCK_STRIDES = (2, 2, 2, 1)  # applied in the last unit of each block
ROOT_DEPTH = 64  # conv1 of the root block, whatever the bottleneck depths
BN_EPSILON = 1e-5
BN_DECAY = 0.997


def slim_resnet_v1(depth: int = 50, num_classes: int | None = 1000, input_shape=(224, 224, 3),
                   base_depths=(64, 128, 256, 512), units=None, global_pool=True,
                   name=None) -> tf_keras.Model:
    """Build slim's ``resnet_v1_<depth>`` (inference semantics of ``is_training=False``).

    ``units`` (units per block) overrides the counts ``depth`` selects and
    ``base_depths`` the bottleneck depths (a unit outputs 4x its base depth).
    Returns logits ``[batch, num_classes]``; with ``num_classes=None`` the
    pooled features ``[batch, 4 * base_depths[-1]]``, or the last block's
    feature map when ``global_pool=False`` (logits then stay spatial too).
    """
    units = units_per_block(depth, units, base_depths)
    from migrate._tf import tf_keras  # noqa: PLC0415 - importing migrate.models stays TF-free

    layers = tf_keras().layers
    scope = name or f"resnet_v1_{depth}"
    images = layers.Input(shape=input_shape, name="images")
    net = stack_blocks(root_block(images, scope), scope, zip(base_depths, units, BLOCK_STRIDES))
    if global_pool:
        net = layers.GlobalAveragePooling2D(keepdims=True, name=f"{scope}.pool5")(net)
    if num_classes is not None:
        net = layers.Conv2D(num_classes, 1, use_bias=True, kernel_initializer="he_normal",
                            name=f"{scope}.logits")(net)
    if global_pool:
        net = layers.Flatten(name=f"{scope}.SpatialSqueeze")(net)
    return tf_keras().Model(images, net, name=scope)


def root_block(images, scope: str):
    """slim's root: ``conv1`` (7x7/2, ``conv2d_same``) with BatchNorm and ReLU, then ``pool1`` (3x3/2, SAME)."""
    from migrate._tf import tf_keras  # noqa: PLC0415

    layers = tf_keras().layers
    net = _conv_bn(layers, images, f"{scope}.conv1", ROOT_DEPTH, 7, stride=2)
    return layers.MaxPooling2D(3, strides=2, padding="same", name=f"{scope}.pool1")(net)


def stack_blocks(net, scope: str, blocks, first: int = 1):
    """Apply slim blocks ``first``, ``first + 1``, ... to ``net``: each ``(base_depth, units, stride)``
    stacks ``units`` bottlenecks of output depth ``4 * base_depth``, the last one strided."""
    from migrate._tf import tf_keras  # noqa: PLC0415

    layers = tf_keras().layers
    for i, (base, count, stride) in enumerate(blocks, start=first):
        for u in range(1, count + 1):
            net = _bottleneck(layers, net, f"{scope}.block{i}.unit_{u}.bottleneck_v1",
                              4 * base, base, stride if u == count else 1)
    return net


def units_per_block(depth: int, units=None, base_depths=(64, 128, 256, 512)) -> tuple[int, ...]:
    """Units per block of ``resnet_v1_<depth>`` (or ``units``), checked against the four blocks slim builds."""
    if units is None:
        if depth not in UNITS:
            raise ValueError(f"slim_resnet_v1: expected depth in {sorted(UNITS)}, got depth={depth!r}; "
                             f"pass units=(n1, n2, n3, n4) to build another depth")
        units = UNITS[depth]
    units, base_depths = tuple(units), tuple(base_depths)
    if len(units) != len(BLOCK_STRIDES) or len(base_depths) != len(BLOCK_STRIDES) or min(units) < 1:
        raise ValueError(f"slim_resnet_v1: expected {len(BLOCK_STRIDES)} blocks with at least one unit each, "
                         f"got units={units}, base_depths={base_depths}; give four of each")
    return units


def _conv_bn(layers, net, name: str, filters: int, kernel: int, stride: int = 1, relu: bool = True):
    """slim ``conv2d`` (no bias) + ``BatchNorm`` [+ ReLU]; strided k>1 convs as ``conv2d_same``."""
    padding = "same"
    if stride > 1 and kernel > 1:
        before = (kernel - 1) // 2
        net = layers.ZeroPadding2D(((before, kernel - 1 - before),) * 2, name=f"{name}.pad")(net)
        padding = "valid"
    net = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False,
                        kernel_initializer="he_normal", name=name)(net)
    net = layers.BatchNormalization(momentum=BN_DECAY, epsilon=BN_EPSILON, name=f"{name}.BatchNorm")(net)
    return layers.ReLU(name=f"{name}.relu")(net) if relu else net


def _bottleneck(layers, net, scope: str, depth: int, depth_bottleneck: int, stride: int):
    """slim ``resnet_v1.bottleneck``: relu(shortcut + conv3(conv2(conv1(x)))), stride on conv2."""
    if net.shape[-1] == depth:
        shortcut = net if stride == 1 else layers.MaxPooling2D(
            1, strides=stride, padding="same", name=f"{scope}.shortcut")(net)
    else:
        shortcut = _conv_bn(layers, net, f"{scope}.shortcut", depth, 1, stride, relu=False)
    residual = _conv_bn(layers, net, f"{scope}.conv1", depth_bottleneck, 1)
    residual = _conv_bn(layers, residual, f"{scope}.conv2", depth_bottleneck, 3, stride)
    residual = _conv_bn(layers, residual, f"{scope}.conv3", depth, 1, relu=False)
    net = layers.Add(name=f"{scope}.add")([shortcut, residual])
    return layers.ReLU(name=f"{scope}.relu")(net)
