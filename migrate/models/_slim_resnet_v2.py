"""TF-slim's ResNet v2 (``tf_slim.nets.resnet_v2``) as a tf_keras functional model.

Keras' ``ResNet50V2`` has the same units, strides and tensors (the stride in
each block's last unit, pre-activation BatchNorm, biased shortcut and
``conv3``) but a different stem: it zero-pads ``pool1`` by one pixel on every
side before a VALID 3x3/2 max-pool.  Slim's ``pool1`` is a SAME max-pool (one
pixel after, none before, padding never wins) and ResNet v2 has no ReLU
before it, so the root block's output holds negative values: the zeros Keras
pads with win the max along the top and left edges, and every window is one
pixel off.  Slim weights in Keras' ResNet50V2 therefore diverge from the
first unit on.  Slim further differs from Keras in BatchNorm epsilon (1e-5,
Keras 1.001e-5; negligible).

This model reproduces slim exactly:

* ``conv1`` is a 7x7/2 ``conv2d_same`` (zero padding 3 on each side, VALID)
  with biases and no BatchNorm or ReLU; ``pool1`` a 3x3/2 SAME max-pool;
* each bottleneck unit: ``preact`` BatchNorm + ReLU; a shortcut that is a
  biased 1x1 conv of the pre-activation where the depth changes, else the
  input itself (1x1/stride max-pool where strided); ``conv1`` 1x1 and
  ``conv2`` 3x3 (strided ``conv2d_same``) with BatchNorm + ReLU, no biases;
  ``conv3`` 1x1 with biases; output ``shortcut + conv3``;
* ``postnorm`` BatchNorm + ReLU, ``pool5`` keep-dims global mean, ``logits``
  a 1x1 conv with biases, squeezed to ``[batch, num_classes]``.

Layer names are the slim variable scopes with "/" written as "." (as in
:mod:`migrate.models._slim_resnet_v1`): ``resnet_v2_50/block1/unit_1/
bottleneck_v2/preact/gamma`` is the gamma of layer ``resnet_v2_50.block1.
unit_1.bottleneck_v2.preact``.  Layers without variables get suffixes
(``.pad``, ``.relu``, ``.add``) that no scope uses.

Not reproduced: ``output_stride`` (atrous), ``include_root_block=False`` and
the L2 weight decay of ``resnet_arg_scope`` (a training-time loss term).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._slim_resnet_v1 import BLOCK_STRIDES, BN_DECAY, BN_EPSILON, ROOT_DEPTH, UNITS, _conv_bn

if TYPE_CHECKING:
    import tf_keras


def slim_resnet_v2(depth: int = 50, num_classes: int | None = 1001, input_shape=(224, 224, 3),
                   base_depths=(64, 128, 256, 512), units=None, global_pool=True,
                   name=None) -> tf_keras.Model:
    """Build slim's ``resnet_v2_<depth>`` (inference semantics of ``is_training=False``).

    ``units`` (units per block) overrides the counts ``depth`` selects and
    ``base_depths`` the bottleneck depths (a unit outputs 4x its base depth).
    Returns logits ``[batch, num_classes]``; with ``num_classes=None`` the
    pooled features ``[batch, 4 * base_depths[-1]]``, or the post-norm
    feature map when ``global_pool=False`` (logits then stay spatial too).
    """
    units, base_depths = _units(depth, units, base_depths)
    from migrate._tf import tf_keras  # noqa: PLC0415 - importing migrate.models stays TF-free

    layers = tf_keras().layers
    scope = name or f"resnet_v2_{depth}"
    images = layers.Input(shape=input_shape, name="images")
    net = layers.ZeroPadding2D(((3, 3), (3, 3)), name=f"{scope}.conv1.pad")(images)
    net = layers.Conv2D(ROOT_DEPTH, 7, strides=2, padding="valid", use_bias=True,
                        kernel_initializer="he_normal", name=f"{scope}.conv1")(net)
    net = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{scope}.pool1")(net)
    for i, (base, count, stride) in enumerate(zip(base_depths, units, BLOCK_STRIDES), start=1):
        for u in range(1, count + 1):
            net = _bottleneck(layers, net, f"{scope}.block{i}.unit_{u}.bottleneck_v2",
                              4 * base, base, stride if u == count else 1)
    net = layers.BatchNormalization(momentum=BN_DECAY, epsilon=BN_EPSILON, name=f"{scope}.postnorm")(net)
    net = layers.ReLU(name=f"{scope}.postnorm.relu")(net)
    if global_pool:
        net = layers.GlobalAveragePooling2D(keepdims=True, name=f"{scope}.pool5")(net)
    if num_classes is not None:
        net = layers.Conv2D(num_classes, 1, use_bias=True, kernel_initializer="he_normal",
                            name=f"{scope}.logits")(net)
    if global_pool:
        net = layers.Flatten(name=f"{scope}.SpatialSqueeze")(net)
    return tf_keras().Model(images, net, name=scope)


def _units(depth: int, units, base_depths) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Units and base depths per block, checked against the four blocks slim always builds."""
    if units is None:
        if depth not in UNITS:
            raise ValueError(f"slim_resnet_v2: expected depth in {sorted(UNITS)}, got depth={depth!r}; "
                             f"pass units=(n1, n2, n3, n4) to build another depth")
        units = UNITS[depth]
    units, base_depths = tuple(units), tuple(int(d) for d in base_depths)
    if len(units) != len(BLOCK_STRIDES) or len(base_depths) != len(BLOCK_STRIDES) or min(units) < 1:
        raise ValueError(f"slim_resnet_v2: expected {len(BLOCK_STRIDES)} blocks with at least one unit each, "
                         f"got units={units}, base_depths={base_depths}; give four of each")
    return units, base_depths


def _bottleneck(layers, net, scope: str, depth: int, depth_bottleneck: int, stride: int):
    """slim ``resnet_v2.bottleneck``: shortcut + conv3(conv2(conv1(relu(preact(x))))), stride on conv2."""
    preact = layers.BatchNormalization(momentum=BN_DECAY, epsilon=BN_EPSILON, name=f"{scope}.preact")(net)
    preact = layers.ReLU(name=f"{scope}.preact.relu")(preact)
    if net.shape[-1] == depth:
        shortcut = net if stride == 1 else layers.MaxPooling2D(
            1, strides=stride, padding="same", name=f"{scope}.shortcut")(net)
    else:
        shortcut = layers.Conv2D(depth, 1, strides=stride, use_bias=True, kernel_initializer="he_normal",
                                 name=f"{scope}.shortcut")(preact)
    residual = _conv_bn(layers, preact, f"{scope}.conv1", depth_bottleneck, 1)
    residual = _conv_bn(layers, residual, f"{scope}.conv2", depth_bottleneck, 3, stride)
    residual = layers.Conv2D(depth, 1, use_bias=True, kernel_initializer="he_normal",
                             name=f"{scope}.conv3")(residual)
    return layers.Add(name=f"{scope}.add")([shortcut, residual])
