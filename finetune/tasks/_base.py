"""The interface between a fine-tuning task and the training engine.

The engine owns the loop (optimiser, schedules, freezing, checkpoints,
logging); a task owns the model and everything specific to the problem: how
outputs are scored against a batch, and how a split is evaluated.  One
training step is::

    with tf.GradientTape() as tape:
        outputs = task.forward(batch["image"], training=True)
        losses = task.loss(batch, outputs, training=True)
    grads = tape.gradient(losses["total"], variables)

``backbone_variables()`` and ``head_variables()`` split
``task.model.trainable_variables`` (order kept, nothing left out): the engine
restores a converted backbone checkpoint into the first list (BatchNorm
moving statistics follow their layer) and may freeze or slow down either.
The engine's own view of this protocol is ``finetune.engine.Task``.

Optional extras a task may define:

``draw_predictions(batch, outputs) -> images``
    images with predictions drawn, for TensorBoard (the engine calls it).
``prepare(dataset, training) -> dataset``
    rewrites a split once before the loop (feature extraction caches the
    frozen backbone's embeddings here); without the call the task still
    trains correctly, only slower.
``on_step(step, total_steps) -> None``
    sets where training is for schedules inside the loss (the gradient
    reversal weight); tasks also advance them themselves on every training loss.
"""
from __future__ import annotations

import functools
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Task(Protocol):
    """What the engine needs from a fine-tuning task (see the module docstring)."""

    model: Any  # tf_keras.Model, built and trainable

    def forward(self, images, training: bool):
        """The model's outputs for a batch of images (float32 [B, H, W, 3] in [-1, 1])."""

    def loss(self, batch: dict, outputs, training: bool) -> dict:
        """Scalar losses ``{"total": ..., <part>: ...}``; ``total`` is what is minimised."""

    def evaluate(self, dataset) -> dict[str, float]:
        """Metrics over every batch of a validation or test split."""

    def backbone_variables(self) -> list:
        """Trainable variables of the converted backbone."""

    def head_variables(self) -> list:
        """Trainable variables added for the task (heads, extra layers, discriminators)."""


def split_variables(model, backbone_layers) -> tuple[list, list]:
    """``model.trainable_variables`` split into (backbone, head) by owning layer.

    ``backbone_layers`` are the layers (or a model) whose variables count as
    backbone; the order of ``model.trainable_variables`` is kept in both lists.
    """
    if hasattr(backbone_layers, "trainable_variables"):
        owned = backbone_layers.trainable_variables
    else:
        owned = [v for layer in backbone_layers for v in layer.trainable_variables]
    backbone_refs = {v.ref() for v in owned}
    backbone, head = [], []
    for variable in model.trainable_variables:
        (backbone if variable.ref() in backbone_refs else head).append(variable)
    return backbone, head



@functools.lru_cache(maxsize=None)
def _moving_statistics_batchnorm():
    from migrate.tf import tf_keras  # noqa: PLC0415 - importing finetune.tasks stays TF-free

    class MovingStatisticsBatchNormalization(tf_keras().layers.BatchNormalization):
        """BatchNorm that normalises with its moving statistics in training too; gamma and beta still train."""

        def call(self, inputs, *args, **kwargs):  # Keras' SavedModel tracing passes training (and mask) by position
            kwargs.pop("training", None)
            return super().call(inputs, training=False)

    return MovingStatisticsBatchNormalization


def freeze_batchnorm(model) -> int:
    """The OD API's ``freeze_batchnorm``: every BatchNorm of ``model`` keeps its moving statistics.

    Unlike ``layer.trainable = False`` (which also freezes gamma and beta),
    gamma and beta stay trainable, as in the OD API, where ``freeze_batchnorm``
    only sets ``is_training=False`` for batch norm.  Variables and checkpoint
    keys are unchanged.  Returns how many layers were switched.
    """
    from migrate.tf import tf_keras  # noqa: PLC0415

    frozen = _moving_statistics_batchnorm()
    count = 0
    for layer in model.submodules:
        if isinstance(layer, tf_keras().layers.BatchNormalization) and not isinstance(layer, frozen):
            layer.__class__ = frozen
            count += 1
    return count
