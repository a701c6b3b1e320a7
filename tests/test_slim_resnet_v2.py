"""slim_resnet_v2 against slim's own resnet_v2 graph, weight for weight.

The reference is ``tf_slim.nets.resnet_v2`` in a TF1 graph with
``resnet_arg_scope`` and ``is_training=False``; every variable (BatchNorm
statistics included) gets seeded random values, is copied into the Keras
model by name, and both run the same seeded two-image batch.  Keras' own
ResNet50V2 holds the same tensors but fails parity right after ``pool1``.
"""
from __future__ import annotations

import numpy as np
import pytest

from fixtures import _classifiers, _tf1
from fixtures._compat import slim, tf
from migrate import open_checkpoint
from migrate._convert import convert
from migrate._parity import ParityError
from migrate._rulesets import get
from migrate._targets import TargetSpec
from migrate.models import slim_resnet_v2

pytestmark = pytest.mark.filterwarnings("ignore:`layer.apply` is deprecated:UserWarning")  # slim BatchNorm

SMALL = (4, 8, 16, 32)  # the fixture zoo's resnet_v2_50_small
FULL = (64, 128, 256, 512)
SIZE = 64
CLASSES = 1001
TOLERANCE = 1e-4
# Keras weight attribute -> slim variable name, within one layer / scope.
SLIM_WEIGHT = {"kernel": "weights", "bias": "biases", "gamma": "gamma", "beta": "beta",
               "moving_mean": "moving_mean", "moving_variance": "moving_variance"}
DRAWS = {  # distinct seeded values per kind; BatchNorm statistics far from 0/1
    "weights": lambda rng, s: rng.standard_normal(s) * np.sqrt(2.0 / np.prod(s[:-1])),
    "biases": lambda rng, s: rng.normal(0.0, 0.1, s),
    "gamma": lambda rng, s: rng.uniform(0.5, 1.5, s),
    "beta": lambda rng, s: rng.normal(0.0, 0.2, s),
    "moving_mean": lambda rng, s: rng.normal(0.0, 0.5, s),
    "moving_variance": lambda rng, s: rng.uniform(0.5, 2.0, s),
}


def slim_reference(base_depths, seed: int = 0):
    """Run slim's ResNet-50 v2 on seeded images with seeded random variables.

    Returns ``(images, {variable name: value}, logits [2, CLASSES])``.
    """
    v1, nets = tf().compat.v1, slim().nets
    images = np.random.default_rng(seed).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    with _tf1.graph():
        inputs = v1.placeholder(tf().float32, images.shape)
        with slim().arg_scope(_tf1.in_place_batch_norm(nets.resnet_utils.resnet_arg_scope())):
            if base_depths == FULL:
                logits, _ = nets.resnet_v2.resnet_v2_50(inputs, CLASSES, is_training=False)
            else:  # the builder of fixtures' resnet_v2_50_small, in inference mode
                blocks = _classifiers.resnet50_blocks(nets.resnet_v2.resnet_v2_block, base_depths)
                logits, _ = nets.resnet_v2.resnet_v2(inputs, blocks, CLASSES, is_training=False,
                                                     scope="resnet_v2_50")
        variables = v1.global_variables()
        with _tf1.session() as sess:
            sess.run(v1.global_variables_initializer())
            _randomise(sess, variables, seed)
            values = dict(zip((v.op.name for v in variables), sess.run(variables)))
            out = sess.run(logits, {inputs: images})
    return images, values, out.reshape(len(images), -1)


def _randomise(sess, variables, seed: int) -> None:
    rng = np.random.default_rng(seed + 1)
    feeds = {}
    for var in variables:
        kind = var.op.name.rsplit("/", 1)[-1]
        if kind in DRAWS:
            value = DRAWS[kind](rng, tuple(var.shape.as_list()))
            feeds[var.initializer.inputs[1]] = value.astype(var.dtype.base_dtype.as_numpy_dtype)
    sess.run([v.initializer for v in variables if v.initializer.inputs[1] in feeds], feeds)


def slim_name(layer_name: str, weight) -> str:
    """The slim variable a Keras weight stands for: ``a.b.preact`` + gamma -> ``a/b/preact/gamma``."""
    attribute = weight.name.rsplit("/", 1)[-1].split(":")[0]
    return f"{layer_name.replace('.', '/')}/{SLIM_WEIGHT[attribute]}"


def model_weights(model) -> dict[str, tuple[int, ...]]:
    return {slim_name(layer.name, w): tuple(w.shape) for layer in model.layers for w in layer.weights}


def load_by_name(model, values: dict) -> None:
    """Assign every Keras weight from ``values``; every slim variable must be used."""
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
    assert not set(values) - used, f"slim variables not used: {sorted(set(values) - used)[:5]}"


def relative_error(actual, expected) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def check_against_slim(base_depths) -> None:
    """Logits and their image-to-image difference (what a wrong stride or padding scrambles) agree."""
    images, values, expected = slim_reference(base_depths)
    model = slim_resnet_v2(50, CLASSES, (SIZE, SIZE, 3), base_depths=base_depths)
    load_by_name(model, values)
    actual = model(images, training=False).numpy()
    assert actual.shape == expected.shape == (2, CLASSES)
    error = relative_error(actual, expected)
    input_error = relative_error(actual[0] - actual[1], expected[0] - expected[1])
    assert error < TOLERANCE and input_error < TOLERANCE, f"max relative errors {error:.3g}, {input_error:.3g}"


def test_small_matches_slim():
    check_against_slim(SMALL)


@pytest.mark.slow
def test_full_size_matches_slim():
    check_against_slim(FULL)


def test_weights_are_the_fixture_checkpoint(zoo):
    """Names and shapes of resnet_v2_50_small's weights (not its Momentum slots) are the model's."""
    model = slim_resnet_v2(50, CLASSES, (SIZE, SIZE, 3), base_depths=SMALL)
    with open_checkpoint(zoo["resnet_v2_50_small"]) as ckpt:
        stored = {name: tuple(ckpt.spec(name).shape) for name in ckpt.keys()
                  if name != "global_step" and not name.endswith("/Momentum")}
    assert model_weights(model) == stored


@pytest.mark.parametrize("depth", [101, *(pytest.param(d, marks=pytest.mark.slow) for d in (152, 200))])
def test_deeper_variants_have_slim_names(depth):
    """resnet_v2_{101,152,200}: the variables slim creates (built, not run) are the model's weights."""
    v1, nets = tf().compat.v1, slim().nets
    with _tf1.graph():
        inputs = v1.placeholder(tf().float32, (1, SIZE, SIZE, 3))
        with slim().arg_scope(_tf1.in_place_batch_norm(nets.resnet_utils.resnet_arg_scope())):
            getattr(nets.resnet_v2, f"resnet_v2_{depth}")(inputs, 10, is_training=False)
        expected = {v.op.name: tuple(v.shape.as_list()) for v in v1.global_variables()}
    assert model_weights(slim_resnet_v2(depth, 10, (SIZE, SIZE, 3))) == expected


def test_parity_builder_creates_the_fixture_variables(zoo):
    """migrate.tf1_nets.slim_nets.resnet_v2 (the parity reference) rebuilds resnet_v2_50_small."""
    from migrate.tf1_nets.slim_nets import resnet_v2

    v1 = tf().compat.v1
    with _tf1.graph():
        logits = resnet_v2(v1.placeholder(tf().float32, (2, SIZE, SIZE, 3)), 50, CLASSES, base_depths=SMALL)
        built = {v.op.name: tuple(v.shape.as_list()) for v in v1.global_variables()}
    assert logits.shape.as_list() == [2, CLASSES]
    assert built == model_weights(slim_resnet_v2(50, CLASSES, (SIZE, SIZE, 3), base_depths=SMALL))


def test_outputs_without_classes():
    pooled = slim_resnet_v2(num_classes=None, input_shape=(SIZE, SIZE, 3), base_depths=SMALL)
    spatial = slim_resnet_v2(num_classes=None, input_shape=(SIZE, SIZE, 3), base_depths=SMALL, global_pool=False)
    assert pooled.output_shape == (None, 128) and spatial.output_shape == (None, 2, 2, 128)


def test_rejects_unknown_depth():
    with pytest.raises(ValueError, match=r"expected depth in \[50, 101, 152, 200\], got depth=34; pass units"):
        slim_resnet_v2(depth=34)


@pytest.mark.slow
def test_keras_resnet50v2_fails_parity_after_pool1_with_the_note(full_zoo, tmp_path):
    """Every tensor maps onto Keras' ResNet50V2 and conv1 agrees exactly, but the first
    convolution after pool1 diverges; the error carries the rule set's note."""
    out = tmp_path / "out"
    with pytest.raises(ParityError) as raised:
        convert(full_zoo["resnet_v2_50"], out, target=TargetSpec("keras:ResNet50V2"), parity=True, parity_layers=True)
    report, note = raised.value.report, get("slim_resnet_v2").notes["keras:ResNet50V2"]
    assert report.mapping.complete and report.verified == len(report.mapping.mapped) == 272
    first, second = report.parity.layers[:2]
    assert (first.name, first.max_abs) == ("conv1_conv", 0.0)  # before pool1: identical
    assert second.name == report.parity.first_divergence == "conv2_block1_1_conv" and second.max_rel > 0.1
    assert report.parity.explanation == note and note in str(raised.value) and "pool1" in note
    assert not out.exists()
