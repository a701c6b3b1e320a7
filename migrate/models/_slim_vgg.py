"""slim's VGG 16/19 at any widths, with tf_keras.applications.VGG16/VGG19's layer names.

Keras' VGG has fixed widths (64, 128, 256, 512, 512; fc 4096), so a narrower
checkpoint (a pruned, distilled or test net) does not fit it.  This builder
computes what Keras' VGG computes (3x3 SAME convolutions with biases and ReLU,
2x2/2 max-pools, flatten, two ReLU fully connected layers, the classifier) at
the widths a checkpoint's shapes give, so the same rules map onto it.
"""
from __future__ import annotations

from .._tf import tf_keras

CONVS_PER_BLOCK = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


def slim_vgg(depth: int = 16, widths=WIDTHS, fc_width: int = 4096, num_classes: int = 1000, include_top=None,
             input_shape=None, classifier_activation: str = "linear"):
    """VGG ``depth`` (16 or 19) with ``widths`` per block and ``fc_width`` units in fc1/fc2."""
    if depth not in CONVS_PER_BLOCK:
        raise ValueError(f"slim_vgg: depth must be 16 or 19, got {depth}")
    if len(widths) != 5:
        raise ValueError(f"slim_vgg: expected 5 block widths, got {list(widths)}")
    layers = tf_keras().layers
    include_top = True if include_top is None else include_top
    inputs = layers.Input(input_shape or ((224, 224, 3) if include_top else (None, None, 3)))
    net = inputs
    for block, (convs, width) in enumerate(zip(CONVS_PER_BLOCK[depth], widths), start=1):
        for conv in range(1, convs + 1):
            net = layers.Conv2D(int(width), 3, padding="same", activation="relu", name=f"block{block}_conv{conv}")(net)
        net = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(net)
    if include_top:
        net = layers.Flatten(name="flatten")(net)
        net = layers.Dense(int(fc_width), activation="relu", name="fc1")(net)
        net = layers.Dense(int(fc_width), activation="relu", name="fc2")(net)
        net = layers.Dense(int(num_classes), activation=classifier_activation, name="predictions")(net)
    return tf_keras().Model(inputs, net, name=f"vgg{depth}")
