"""finetune.tasks.classification on a tiny backbone: head, feature extraction, domain-adversarial."""
from __future__ import annotations

import math

import numpy as np
import pytest

from finetune.tasks import ClassificationConfig, ClassificationTask, DomainAdversarialConfig, Task
from finetune.tasks.classification import gradient_reversal, grl_lambda


@pytest.fixture(scope="module")
def keras():
    from migrate._tf import tf_keras

    return tf_keras()


def tiny_backbone(keras, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.layers.Input((16, 16, 3))
    net = keras.layers.Conv2D(8, 3, strides=2, use_bias=False, name="conv")(inputs)
    net = keras.layers.BatchNormalization(name="bn")(net)
    return keras.Model(inputs, keras.layers.ReLU(name="relu")(net), name="tiny")


def batch(tf, n=6, num_classes=3, seed=0, target=False):
    rng = np.random.default_rng(seed)
    out = {"image": tf.constant(rng.uniform(-1, 1, (n, 16, 16, 3)), tf.float32),
           "label": tf.constant(rng.integers(0, num_classes, n), tf.int32)}
    if target:
        out["target_image"] = tf.constant(rng.uniform(-1, 1, (n, 16, 16, 3)) * 0.5 + 0.3, tf.float32)
    return out


def test_gradient_reversal_flips_gradients(tf):
    layer = gradient_reversal(initial_lambda=0.5)
    x = tf.Variable([[1.0, -2.0, 3.0]])
    w = tf.constant([[2.0, 3.0, -1.0]])
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_sum(y * w)
    np.testing.assert_allclose(y.numpy(), x.numpy())  # identity forward
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), -0.5 * w.numpy())
    layer.grl_lambda.assign(2.0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) * w)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), -2.0 * w.numpy())


def test_lambda_schedule():
    assert grl_lambda(0.0) == 0.0
    assert grl_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert grl_lambda(0.1) < grl_lambda(0.5) < grl_lambda(2.0) == grl_lambda(1.0)
    assert grl_lambda(1.0, max_lambda=0.1) == pytest.approx(0.1 * grl_lambda(1.0))


def test_finetune_loss_gradients_and_evaluate(keras, tf):
    task = ClassificationTask(tiny_backbone(keras), ClassificationConfig(num_classes=3, label_smoothing=0.1))
    assert isinstance(task, Task)
    data = batch(tf)
    with tf.GradientTape() as tape:
        outputs = task.forward(data["image"], training=True)
        losses = task.loss(data, outputs, training=True)
    assert set(losses) == {"total", "classification"} and math.isfinite(float(losses["total"]))
    backbone, head = task.backbone_variables(), task.head_variables()
    assert [v.name for v in backbone] == ["conv/kernel:0", "bn/gamma:0", "bn/beta:0"]
    assert [v.name for v in head] == ["logits/kernel:0", "logits/bias:0"]
    assert all(g is not None for g in tape.gradient(losses["total"], backbone + head))
    metrics = task.evaluate([data, batch(tf, n=4, seed=1)])
    logits = np.concatenate([task.forward(b["image"], training=False)["logits"].numpy()
                             for b in (data, batch(tf, n=4, seed=1))])
    labels = np.concatenate([data["label"].numpy(), batch(tf, n=4, seed=1)["label"].numpy()])
    assert metrics["accuracy"] == pytest.approx((logits.argmax(-1) == labels).mean())
    assert set(metrics) == {"accuracy", "loss"} and math.isfinite(metrics["loss"])


def test_top5_with_more_classes(keras, tf):
    task = ClassificationTask(tiny_backbone(keras), ClassificationConfig(num_classes=7, hidden_units=4))
    metrics = task.evaluate([batch(tf, num_classes=7)])
    assert metrics["accuracy"] <= metrics["top5_accuracy"] <= 1.0


def test_feature_extraction_trains_a_small_classifier(keras, tf):
    task = ClassificationTask(tiny_backbone(keras), ClassificationConfig(num_classes=2, mode="features", dropout=0))
    assert task.model.input_shape == (None, 16, 16, 3)  # the whole classifier: restores and exports as one
    assert task.classifier.input_shape == (None, 8)
    raw = [batch(tf, n=8, num_classes=2), batch(tf, n=8, num_classes=2, seed=1)]
    prepared = list(task.prepare(raw, training=True))
    assert sum(len(b["label"]) for b in prepared) == 16 and prepared[0]["image"].shape == (8, 8)
    images = raw[0]["image"]
    from_images = task.forward(images, training=False)["logits"]
    from_embeddings = task.forward(task.extractor(images, training=False), training=False)["logits"]
    np.testing.assert_allclose(from_images.numpy(), from_embeddings.numpy(), rtol=1e-5)
    np.testing.assert_allclose(task.model(images, training=False)["logits"].numpy(), from_images.numpy(), rtol=1e-5)
    with tf.GradientTape() as tape:  # on raw images too, the backbone gets no gradient and keeps its statistics
        loss = task.loss(raw[0], task.forward(images, training=True), training=True)["total"]
    grads = tape.gradient(loss, task.backbone_variables() + task.head_variables())
    assert [g is None for g in grads] == [True] * 3 + [False] * 2
    optimizer = keras.optimizers.SGD(0.5)
    first = task.evaluate(task.prepare(raw, training=False))["loss"]
    for _ in range(30):
        for data in prepared:
            with tf.GradientTape() as tape:
                loss = task.loss(data, task.forward(data["image"], training=True), training=True)["total"]
            optimizer.apply_gradients(zip(tape.gradient(loss, task.head_variables()), task.head_variables()))
    assert task.evaluate(raw)["loss"] < first


def test_freeze_batchnorm_keeps_moving_statistics_and_trains_gamma(keras, tf):
    task = ClassificationTask(tiny_backbone(keras), ClassificationConfig(num_classes=2, freeze_batchnorm=True))
    bn = task.model.get_layer("bn")
    before = bn.moving_mean.numpy().copy()
    data = batch(tf, num_classes=2)
    with tf.GradientTape() as tape:
        loss = task.loss(data, task.forward(data["image"], training=True), training=True)["total"]
    assert bn.gamma.ref() in {v.ref() for v in task.backbone_variables()}
    assert tape.gradient(loss, bn.gamma) is not None
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)


def test_domain_adversarial_reverses_the_backbone_gradient(keras, tf):
    dann = DomainAdversarialConfig(total_steps=10, hidden_units=4)
    task = ClassificationTask(tiny_backbone(keras), ClassificationConfig(num_classes=3, dropout=0.0,
                                                                         domain_adversarial=dann))
    data = batch(tf, target=True)
    assert float(task.grl.grl_lambda) == 0.0

    def domain_grads(lam):
        task.grl.grl_lambda.assign(lam)
        with tf.GradientTape() as tape:
            losses = task.loss(data, task.forward(data["image"], training=True), training=True)
        return losses, tape.gradient(losses["domain"], task.backbone_variables() + task.head_variables())

    losses, reversed_ = domain_grads(1.0)
    _, plain = domain_grads(-1.0)
    assert set(losses) == {"total", "classification", "domain"}
    assert float(losses["total"]) == pytest.approx(float(losses["classification"]) + float(losses["domain"]))
    np.testing.assert_allclose(reversed_[0].numpy(), -plain[0].numpy(), rtol=1e-4, atol=1e-7)  # conv kernel
    names = [v.name for v in task.backbone_variables() + task.head_variables()]
    disc = names.index("domain_discriminator.logits/kernel:0")
    np.testing.assert_allclose(reversed_[disc].numpy(), plain[disc].numpy(), rtol=1e-5)  # not reversed
    head_only = names.index("logits/kernel:0")
    assert reversed_[head_only] is None  # the label classifier gets no domain gradient


def test_domain_adversarial_schedule_advances(keras, tf):
    dann = DomainAdversarialConfig(total_steps=4)
    task = ClassificationTask(tiny_backbone(keras), ClassificationConfig(num_classes=3, domain_adversarial=dann))
    data = batch(tf, target=True)
    task.loss(data, task.forward(data["image"], training=True), training=True)
    assert float(task.grl.grl_lambda) == pytest.approx(grl_lambda(0.25), rel=1e-5)
    evaluation = task.loss(data, task.forward(data["image"], training=False), training=False)
    assert "domain" not in evaluation and float(task.grl.grl_lambda) == pytest.approx(grl_lambda(0.25), rel=1e-5)
    task.on_step(2)
    assert float(task.grl.grl_lambda) == pytest.approx(grl_lambda(0.5), rel=1e-5)


def test_configuration_errors(keras):
    with pytest.raises(ValueError, match="domain_adversarial needs mode='finetune'"):
        ClassificationConfig(num_classes=3, mode="features", domain_adversarial=DomainAdversarialConfig(10))
    with pytest.raises(ValueError, match="expected mode in"):
        ClassificationConfig(num_classes=3, mode="linear")
    with pytest.raises(ValueError, match="pass feature_layer="):
        inputs = keras.layers.Input((4, 4, 3, 2))
        ClassificationTask(keras.Model(inputs, inputs), ClassificationConfig(num_classes=2))
