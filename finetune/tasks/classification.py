"""``ClassificationTask``: image classification on any converted backbone.

Three ways to train, chosen by :class:`ClassificationConfig`:

``mode="finetune"``
    global average pooling + dropout (+ optional hidden layer) + dense logits on
    the backbone's feature map, trained end to end.
``mode="features"``
    feature extraction: the backbone runs in inference mode behind a stop
    gradient, so only the small classifier trains.  :meth:`ClassificationTask.prepare`
    computes the embeddings once per image and returns batches whose ``image``
    is the embedding ``[B, D]`` (no augmentation reaches them); ``forward``
    takes images or embeddings.  ``model`` is still the whole image classifier
    (so the converted checkpoint restores into it and it exports as one model);
    its backbone variables get no gradient: freeze them in the engine.
``domain_adversarial=DomainAdversarialConfig(...)`` (with ``finetune``)
    DANN (Ganin et al., 2016): a domain discriminator on the pooled features
    behind a gradient reversal layer.  Training batches carry an unlabeled
    ``target_image``; the loss adds ``weight * BCE(domain)`` over source
    (domain 0) and target (domain 1) images.  The reversal weight follows
    ``lambda_p = max_lambda * (2 / (1 + exp(-gamma * p)) - 1)`` with ``p`` the
    training progress, advanced by every training loss and set by ``on_step``.

Batches: ``image`` float32 [B, H, W, 3] in [-1, 1], ``label`` int32 [B] (0-based).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from migrate.tf import tensorflow, tf_keras

from ._base import freeze_batchnorm, split_variables

MODES = ("finetune", "features")


@dataclass(frozen=True)
class DomainAdversarialConfig:
    total_steps: int  # length of the lambda schedule (progress = step / total_steps)
    gamma: float = 10.0
    max_lambda: float = 1.0
    weight: float = 1.0  # weight of the domain loss in the total
    hidden_units: int = 64  # discriminator width (one hidden layer)

    def __post_init__(self):
        if self.total_steps < 1:
            raise ValueError(f"domain_adversarial: expected total_steps >= 1, got {self.total_steps}")


@dataclass(frozen=True)
class ClassificationConfig:
    num_classes: int
    mode: str = "finetune"
    dropout: float = 0.2
    hidden_units: int = 0  # 0: logits directly on the pooled features
    label_smoothing: float = 0.0
    feature_layer: str | None = None  # backbone layer giving features; default its output
    freeze_batchnorm: bool = False
    domain_adversarial: DomainAdversarialConfig | None = None

    def __post_init__(self):
        if self.num_classes < 2:
            raise ValueError(f"classification: expected num_classes >= 2, got {self.num_classes}")
        if self.mode not in MODES:
            raise ValueError(f"classification: expected mode in {MODES}, got {self.mode!r}")
        if self.mode == "features" and self.domain_adversarial is not None:
            raise ValueError("classification: domain_adversarial needs mode='finetune' (the reversed gradient "
                             "must reach the backbone); drop domain_adversarial or train the backbone")


def grl_lambda(progress: float, gamma: float = 10.0, max_lambda: float = 1.0) -> float:
    """DANN's reversal weight at training progress ``p`` in [0, 1]: 0 at the start, -> max_lambda."""
    p = min(max(float(progress), 0.0), 1.0)
    return max_lambda * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


@functools.lru_cache(maxsize=None)
def _gradient_reversal_class():
    tf, keras = tensorflow(), tf_keras()

    class GradientReversal(keras.layers.Layer):
        """Identity forward; multiplies the gradient by ``-lambda`` backward."""

        def __init__(self, initial_lambda: float = 0.0, **kwargs):
            super().__init__(**kwargs)
            self.initial_lambda = float(initial_lambda)

        def build(self, input_shape):
            self.grl_lambda = self.add_weight(
                name="lambda", shape=(), trainable=False,
                initializer=keras.initializers.Constant(self.initial_lambda))
            super().build(input_shape)

        def call(self, inputs):
            scale = tf.convert_to_tensor(self.grl_lambda)

            @tf.custom_gradient
            def reverse(x):
                return tf.identity(x), lambda dy: -scale * dy

            return reverse(inputs)

        def get_config(self):
            return {**super().get_config(), "initial_lambda": self.initial_lambda}

    return GradientReversal


def gradient_reversal(initial_lambda: float = 0.0, name: str = "gradient_reversal"):
    """A gradient reversal layer; set its weight with ``layer.grl_lambda.assign(value)``."""
    return _gradient_reversal_class()(initial_lambda, name=name)


class ClassificationTask:
    """Classification head on a converted backbone (see the module docstring)."""

    def __init__(self, backbone, config: ClassificationConfig):
        keras = tf_keras()
        self.config = config
        self.backbone = backbone
        features = backbone.get_layer(config.feature_layer).output if config.feature_layer else backbone.output
        if len(features.shape) == 4:
            features = keras.layers.GlobalAveragePooling2D(name="global_pool")(features)
        elif len(features.shape) != 2:
            raise ValueError(f"classification: expected backbone features [B, H, W, C] or [B, C], got shape "
                             f"{tuple(features.shape)}; pass feature_layer= naming a feature map layer")
        self.extractor = keras.Model(backbone.input, features, name="feature_extractor")
        self._step = tensorflow().Variable(0, dtype="int64", trainable=False, name="dann_step")
        self.grl = None
        head = self._head_layers()
        self.model = keras.Model(backbone.input, head(features), name="classifier")
        embeddings = keras.layers.Input(shape=(features.shape[-1],), name="embedding")
        self.classifier = keras.Model(embeddings, head(embeddings), name="embedding_classifier")
        if config.freeze_batchnorm:
            freeze_batchnorm(self.model)

    def _head_layers(self):
        """The head as a function of the features (its layers are shared by ``model`` and ``classifier``)."""
        layers = tf_keras().layers
        cfg = self.config
        stack = [layers.Dropout(cfg.dropout, name="dropout")]
        if cfg.hidden_units:
            stack.append(layers.Dense(cfg.hidden_units, activation="relu", name="hidden"))
        stack.append(layers.Dense(cfg.num_classes, name="logits"))
        dann = cfg.domain_adversarial
        if dann is not None:
            self.grl = gradient_reversal(grl_lambda(0.0, dann.gamma, dann.max_lambda))
            discriminator = [self.grl,
                             layers.Dense(dann.hidden_units, activation="relu", name="domain_discriminator.hidden"),
                             layers.Dense(1, name="domain_discriminator.logits")]

        def head(features) -> dict:
            net = features
            for layer in stack:
                net = layer(net)
            outputs = {"logits": net, "features": features}
            if dann is not None:
                net = features
                for layer in discriminator:
                    net = layer(net)
                outputs["domain_logits"] = net
            return outputs

        return head

    # -- the Task interface -------------------------------------------------------------------------
    def forward(self, images, training: bool):
        """Outputs ``{"logits", "features"[, "domain_logits"]}`` for images, or for embeddings
        ``[B, D]`` (feature mode after :meth:`prepare`)."""
        if self.config.mode == "finetune":
            return self.model(images, training=training)
        if len(images.shape) == 4:
            images = tensorflow().stop_gradient(self.extractor(images, training=False))
        return self.classifier(images, training=training)

    def loss(self, batch: dict, outputs, training: bool) -> dict:
        """``{"total", "classification"[, "domain"]}``; the domain part only when training with a
        ``target_image`` batch and domain_adversarial set."""
        tf = tensorflow()
        losses = {"classification": self._cross_entropy(batch["label"], outputs["logits"])}
        dann = self.config.domain_adversarial
        if training and dann is not None and "target_image" in batch:
            target = self.model(batch["target_image"], training=True)
            logits = tf.concat([outputs["domain_logits"], target["domain_logits"]], axis=0)[:, 0]
            domains = tf.concat([tf.zeros_like(outputs["domain_logits"]),
                                 tf.ones_like(target["domain_logits"])], axis=0)[:, 0]
            losses["domain"] = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=domains, logits=logits))
            self._advance(dann)
        losses["total"] = losses["classification"] + (
            dann.weight * losses["domain"] if "domain" in losses else 0.0)
        return losses

    def evaluate(self, dataset) -> dict[str, float]:
        """``accuracy``, ``top5_accuracy`` (more than 5 classes) and the mean ``loss`` over a split."""
        tf = tensorflow()
        correct = top5 = seen = 0
        loss_sum = 0.0
        for batch in dataset:
            logits = self.forward(batch["image"], training=False)["logits"]
            labels = tf.cast(batch["label"], tf.int32)
            correct += int(tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == labels, tf.int32)))
            top5 += int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, 5), tf.int32)))
            loss_sum += float(self._cross_entropy(labels, logits)) * int(labels.shape[0])
            seen += int(labels.shape[0])
        if not seen:
            raise ValueError("classification evaluation: the split has no examples")
        metrics = {"accuracy": correct / seen, "loss": loss_sum / seen}
        if self.config.num_classes > 5:
            metrics["top5_accuracy"] = top5 / seen
        return metrics

    def backbone_variables(self) -> list:
        return split_variables(self.model, self.backbone)[0]

    def head_variables(self) -> list:
        return split_variables(self.model, self.backbone)[1]

    # -- optional engine hooks ----------------------------------------------------------------------
    def prepare(self, dataset, training: bool):
        """Feature mode: embeddings computed once (``image`` becomes ``[B, D]``); otherwise ``dataset``."""
        if self.config.mode != "features":
            return dataset
        tf = tensorflow()
        embeddings, labels, batch_size = self.extract_features(dataset)
        cached = tf.data.Dataset.from_tensor_slices({"image": embeddings, "label": labels})
        if training:
            cached = cached.shuffle(len(labels), seed=0, reshuffle_each_iteration=True)
        return cached.batch(batch_size)

    def extract_features(self, dataset) -> tuple[np.ndarray, np.ndarray, int]:
        """Frozen-backbone embeddings ``[N, D]``, labels ``[N]`` and the batch size of ``dataset``."""
        embeddings, labels, batch_size = [], [], 1
        for batch in dataset:
            embeddings.append(np.asarray(self.extractor(batch["image"], training=False)))
            labels.append(np.asarray(batch["label"], np.int32))
            batch_size = max(batch_size, len(labels[-1]))
        if not embeddings:
            raise ValueError("feature extraction: the dataset has no batches")
        return np.concatenate(embeddings), np.concatenate(labels), batch_size

    def on_step(self, step: int, total_steps: int | None = None) -> None:
        """Set the schedule position (domain-adversarial reversal weight) to ``step``."""
        dann = self.config.domain_adversarial
        self._step.assign(int(step))
        if dann is not None:
            total = total_steps or dann.total_steps
            self.grl.grl_lambda.assign(grl_lambda(step / total, dann.gamma, dann.max_lambda))

    # -- internals ----------------------------------------------------------------------------------
    def _cross_entropy(self, labels, logits):
        tf = tensorflow()
        targets = tf.one_hot(tf.cast(labels, tf.int32), self.config.num_classes)
        if self.config.label_smoothing:
            smoothing = self.config.label_smoothing
            targets = targets * (1.0 - smoothing) + smoothing / self.config.num_classes
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits))

    def _advance(self, dann: DomainAdversarialConfig) -> None:
        """After a training loss: one step further on the lambda schedule (used from the next step)."""
        tf = tensorflow()
        step = self._step.assign_add(1)
        progress = tf.minimum(tf.cast(step, tf.float32) / dann.total_steps, 1.0)
        value = dann.max_lambda * (2.0 / (1.0 + tf.exp(-dann.gamma * progress)) - 1.0)
        self.grl.grl_lambda.assign(value)
