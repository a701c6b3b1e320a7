"""The compiled train step and the validation-loss pass.

Per replica: forward and loss under a GradientTape (XLA-compiled on request),
loss scaled for float16, gradients summed across replicas, clipped by their
global norm, applied.  The learning rate is set from the schedule at the
step counter, so a resumed run continues the schedule where it stopped.
"""
from __future__ import annotations

from migrate.tf import tensorflow

from ._errors import EngineConfigError, EngineError
from ._task import as_dict, images_of


def losses_of(task, batch, outputs, training: bool) -> dict:
    tf = tensorflow()
    losses = task.loss(batch, outputs, training=training)
    if "total" not in losses:
        raise EngineConfigError(f"{type(task).__name__}.loss returned {', '.join(losses)}; it must return a "
                                "'total' entry")
    return {name: tf.cast(value, tf.float32) for name, value in losses.items()}


def make_train_step(task, optimizer, strategy, variables, schedule, step, *, grad_clip_norm=None,
                    loss_scale: bool = False, jit_compile: bool = False, no_gradient: list | None = None):
    """A tf.function ``batch -> (losses, learning_rate)`` that trains ``variables`` one step.

    Names of variables the loss does not reach are appended to ``no_gradient`` when it traces.
    """
    tf = tensorflow()
    variables = list(variables)
    replicas = strategy.num_replicas_in_sync

    def gradients(batch):
        batch = as_dict(batch)
        with tf.GradientTape() as tape:
            outputs = task.forward(images_of(task, batch), training=True)
            losses = losses_of(task, batch, outputs, training=True)
            scaled = losses["total"] / replicas
            if loss_scale:
                scaled = optimizer.get_scaled_loss(scaled)
        grads = tape.gradient(scaled, variables)
        if loss_scale:
            grads = optimizer.get_unscaled_gradients(grads)
        return losses, grads

    if jit_compile:
        gradients = tf.function(gradients, jit_compile=True)

    def replica_step(batch):
        losses, grads = gradients(batch)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if no_gradient is not None:
            no_gradient.extend(v.name for g, v in zip(grads, variables) if g is None)
        grads = [g for g, _ in pairs]
        if replicas > 1:
            grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if grad_clip_norm:
            grads, _ = tf.clip_by_global_norm(grads, grad_clip_norm)
        optimizer.apply_gradients(zip(grads, [v for _, v in pairs]), skip_gradients_aggregation=True)
        return losses

    @tf.function
    def train_step(batch):
        learning_rate = tf.cast(schedule(step), tf.float32)
        optimizer.learning_rate.assign(learning_rate)
        per_replica = strategy.run(replica_step, args=(batch,))
        losses = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}
        step.assign_add(1)
        return losses, learning_rate

    return _surfacing(train_step)


def make_eval_step(task):
    """A tf.function ``batch -> (losses, outputs)`` in inference mode."""
    tf = tensorflow()

    @tf.function
    def eval_step(batch):
        batch = as_dict(batch)
        outputs = task.forward(images_of(task, batch), training=False)
        return losses_of(task, batch, outputs, training=False), outputs

    return _surfacing(eval_step)


def _surfacing(function):
    """``function``, raising the engine's own errors from tracing as they are, not wrapped by AutoGraph."""

    def call(*args):
        try:
            return function(*args)
        except Exception as error:
            original = _engine_error(error)
            if original is None or original is error:
                raise
            raise original from None

    return call


def _engine_error(error):
    for _ in range(8):
        if error is None or isinstance(error, EngineError):
            return error
        error = error.__cause__ or error.__context__
    return None

