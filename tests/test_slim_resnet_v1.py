"""slim_resnet_v1 against slim's own resnet_v1 graph, weight for weight.

The reference is ``tf_slim.nets.resnet_v1`` in a TF1 graph with
``resnet_arg_scope`` and ``is_training=False``; every variable (BatchNorm
statistics included) gets seeded random values, is copied into the Keras
model by name, and both run the same seeded two-image batch.
"""
from __future__ import annotations

import numpy as np
import pytest

from fixtures import _classifiers, _tf1
from fixtures._compat import slim, tf
from migrate import open_checkpoint
from migrate.models import slim_resnet_v1

pytestmark = pytest.mark.filterwarnings("ignore:`layer.apply` is deprecated:UserWarning")  # slim BatchNorm

SMALL = (4, 8, 16, 32)  # the fixture zoo's resnet_v1_50_small
FULL = (64, 128, 256, 512)
SIZE = 64
TOLERANCE = 1e-4
# Keras weight attribute -> slim variable name, within one layer / scope.
SLIM_WEIGHT = {"kernel": "weights", "bias": "biases", "gamma": "gamma", "beta": "beta",
               "moving_mean": "moving_mean", "moving_variance": "moving_variance"}
NOT_IN_NET = {"global_step", "resnet_v1_50/mean_rgb"}  # in every zoo checkpoint, unused by the net


def slim_reference(base_depths, seed: int = 0):
    """Run slim's ResNet-50 v1 on seeded images with seeded random variables.

    Returns ``(images, {variable name: value}, logits [2, 1000])``.
    """
    v1, nets = tf().compat.v1, slim().nets
    images = np.random.default_rng(seed).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    with _tf1.graph():
        _tf1.global_step()
        inputs = v1.placeholder(tf().float32, images.shape)
        with slim().arg_scope(_tf1.in_place_batch_norm(nets.resnet_utils.resnet_arg_scope())):
            if base_depths == FULL:
                logits, _ = nets.resnet_v1.resnet_v1_50(inputs, 1000, is_training=False)
            else:  # the builder of fixtures' resnet_v1_50_small, in inference mode
                blocks = _classifiers.resnet50_blocks(nets.resnet_v1.resnet_v1_block, base_depths)
                logits, _ = nets.resnet_v1.resnet_v1(inputs, blocks, 1000, is_training=False,
                                                     scope="resnet_v1_50")
        variables = v1.global_variables()
        with _tf1.session() as sess:
            sess.run(v1.global_variables_initializer())
            randomise(sess, variables, seed)
            values = dict(zip((v.op.name for v in variables), sess.run(variables)))
            out = sess.run(logits, {inputs: images})
    return images, values, out.reshape(len(images), -1)


def randomise(sess, variables, seed: int) -> None:
    """Give every float variable a distinct seeded value, BatchNorm statistics far from 0/1."""
    rng = np.random.default_rng(seed + 1)
    draws = {
        "weights": lambda s: rng.standard_normal(s) * np.sqrt(2.0 / np.prod(s[:-1])),
        "biases": lambda s: rng.normal(0.0, 0.1, s),
        "gamma": lambda s: rng.uniform(0.5, 1.5, s),
        "beta": lambda s: rng.normal(0.0, 0.2, s),
        "moving_mean": lambda s: rng.normal(0.0, 0.5, s),
        "moving_variance": lambda s: rng.uniform(0.5, 2.0, s),
    }
    feeds = {}
    for var in variables:
        kind = var.op.name.rsplit("/", 1)[-1]
        if kind in draws:
            value = draws[kind](tuple(var.shape.as_list()))
            feeds[var.initializer.inputs[1]] = value.astype(var.dtype.base_dtype.as_numpy_dtype)
    sess.run([v.initializer for v in variables if v.initializer.inputs[1] in feeds], feeds)


def slim_name(layer_name: str, weight) -> str:
    """The slim variable a Keras weight stands for: ``a.b.BatchNorm`` + gamma -> ``a/b/BatchNorm/gamma``."""
    attribute = weight.name.rsplit("/", 1)[-1].split(":")[0]
    return f"{layer_name.replace('.', '/')}/{SLIM_WEIGHT[attribute]}"


def load_by_name(model, values: dict) -> None:
    """Assign every Keras weight from ``values``; every value but NOT_IN_NET must be used."""
    used, missing = set(), []
    for layer in model.layers:
        for weight in layer.weights:
            name = slim_name(layer.name, weight)
            if name not in values:
                missing.append(name)
                continue
            assert tuple(weight.shape) == values[name].shape, name
            weight.assign(values[name])
            used.add(name)
    assert not missing, f"Keras weights without a slim variable: {missing[:5]}"
    unused = set(values) - used - NOT_IN_NET
    assert not unused, f"slim variables not used: {sorted(unused)[:5]}"


def relative_error(actual, expected) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def errors(actual, expected) -> tuple[float, float]:
    """Relative error of the logits, and of their image-to-image difference.

    With random weights most of each logit is the same for every image (the
    BatchNorm offsets of the last block); the second number measures only
    what depends on the input, which a wrong stride or padding scrambles.
    """
    return relative_error(actual, expected), relative_error(actual[0] - actual[1], expected[0] - expected[1])


def check_against_slim(base_depths) -> None:
    images, values, expected = slim_reference(base_depths)
    model = slim_resnet_v1(50, 1000, (SIZE, SIZE, 3), base_depths=base_depths)
    load_by_name(model, values)
    actual = model(images, training=False).numpy()
    assert actual.shape == expected.shape == (2, 1000)
    error, input_error = errors(actual, expected)
    assert error < TOLERANCE and input_error < TOLERANCE, f"max relative errors {error:.3g}, {input_error:.3g}"


def test_small_matches_slim():
    check_against_slim(SMALL)


@pytest.mark.slow
def test_full_size_matches_slim():
    check_against_slim(FULL)


def test_weights_are_the_fixture_checkpoint(zoo):
    """Names and shapes of resnet_v1_50_small are exactly the model's weights."""
    model = slim_resnet_v1(50, 1000, (SIZE, SIZE, 3), base_depths=SMALL)
    weights = {slim_name(layer.name, w): tuple(w.shape) for layer in model.layers for w in layer.weights}
    with open_checkpoint(zoo["resnet_v1_50_small"]) as ckpt:
        stored = {name: tuple(ckpt.spec(name).shape) for name in ckpt.keys() if name not in NOT_IN_NET}
    assert weights == stored


@pytest.mark.parametrize("depth", [101, *(pytest.param(d, marks=pytest.mark.slow) for d in (152, 200))])
def test_deeper_variants_have_slim_names(depth):
    """resnet_v1_{101,152,200}: the variables slim creates (built, not run) are the model's weights."""
    v1, nets = tf().compat.v1, slim().nets
    build = getattr(nets.resnet_v1, f"resnet_v1_{depth}")
    with _tf1.graph():
        inputs = v1.placeholder(tf().float32, (1, SIZE, SIZE, 3))
        with slim().arg_scope(_tf1.in_place_batch_norm(nets.resnet_utils.resnet_arg_scope())):
            build(inputs, 10, is_training=False)
        expected = {v.op.name: tuple(v.shape.as_list()) for v in v1.global_variables()}
    model = slim_resnet_v1(depth, 10, (SIZE, SIZE, 3))
    assert {slim_name(layer.name, w): tuple(w.shape) for layer in model.layers for w in layer.weights} == expected


def test_outputs_without_classes():
    pooled = slim_resnet_v1(num_classes=None, input_shape=(SIZE, SIZE, 3), base_depths=SMALL)
    spatial = slim_resnet_v1(num_classes=None, input_shape=(SIZE, SIZE, 3), base_depths=SMALL, global_pool=False)
    assert pooled.output_shape == (None, 128) and spatial.output_shape == (None, 2, 2, 128)


def test_rejects_unknown_depth():
    with pytest.raises(ValueError, match=r"expected depth in \[50, 101, 152, 200\], got depth=34; pass units"):
        slim_resnet_v1(depth=34)


# Keras' ResNet50 holds the same tensors: slim block k / unit u / {shortcut, conv1..3}
# is Keras conv{k+1}_block{u}_{0..3}; logits (1x1 conv) is the Dense "predictions".
KERAS_PART = {"shortcut": 0, "conv1": 1, "conv2": 2, "conv3": 3}


def keras_layer_for(scope: str) -> str:
    """Keras ResNet50 layer name of a slim scope such as ``resnet_v1_50/block2/unit_1/bottleneck_v1/conv1``."""
    parts = scope.split("/")[1:]
    if parts == ["conv1"]:
        return "conv1_conv"
    if parts == ["logits"]:
        return "predictions"
    block, unit, _, conv = parts
    return f"conv{int(block[5:]) + 1}_block{unit[5:]}_{KERAS_PART[conv]}_conv"


def load_into_keras_resnet50(model, values: dict) -> None:
    """Copy slim's variables into Keras' ResNet50 by that correspondence (shapes checked); conv biases 0."""
    keras_weights = {f"{layer.name}/{w.name.rsplit('/', 1)[-1].split(':')[0]}": w
                     for layer in model.layers for w in layer.weights}
    filled = set()
    for name, value in values.items():
        if name in NOT_IN_NET:
            continue
        scope, attribute = name.rsplit("/", 1)
        if scope.endswith("/BatchNorm"):
            key = f"{keras_layer_for(scope[:-len('/BatchNorm')])[:-5]}_bn/{attribute}"
        else:
            key = f"{keras_layer_for(scope)}/{'kernel' if attribute == 'weights' else 'bias'}"
        weight = keras_weights[key]
        if key == "predictions/kernel":  # slim's 1x1 logits conv is Keras' Dense
            value = value.reshape(value.shape[-2:])
        assert value.shape == tuple(weight.shape), key
        weight.assign(value)
        filled.add(key)
    for key in set(keras_weights) - filled:
        assert key.endswith("_conv/bias"), f"Keras weight without a slim variable: {key}"
        keras_weights[key].assign(np.zeros(keras_weights[key].shape, np.float32))


@pytest.mark.slow
def test_keras_resnet50_is_not_function_compatible():
    """Same tensors, different function: loading slim weights into Keras' ResNet50 is wrong."""
    from migrate._tf import tf_keras

    images, values, expected = slim_reference(FULL)
    model = tf_keras().applications.ResNet50(weights=None, input_shape=(SIZE, SIZE, 3),
                                             classifier_activation=None)
    load_into_keras_resnet50(model, values)
    error, input_error = errors(model(images, training=False).numpy(), expected)
    assert error > 1e-2 and input_error > 0.5, f"Keras ResNet50 comes close to slim: {error:.3g}, {input_error:.3g}"
