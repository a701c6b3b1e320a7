"""Pruning and QAT are training runs: the shared ``finetune.engine.train`` loop, checkpoints, resume, TensorBoard."""
from __future__ import annotations

from pathlib import Path

from ._errors import QuantizeError


def fresh_copy(model):
    """A clone of ``model`` with its weights, sharing no layer with it (wrapping must not touch the float model)."""
    from migrate.tf import tf_keras  # noqa: PLC0415

    copy = tf_keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def train_wrapped(task, model, work_dir: Path, *, steps: int, learning_rate: float, callbacks=(),
                  tensorboard: bool = False, checkpoint_every: int = 0, eval_every: int = 0, log_every: int = 100):
    """Fine-tune the wrapped ``model`` with ``task``'s loss for ``steps`` steps (resuming from ``work_dir``)."""
    from finetune.engine import EngineError, OptimizerConfig, TrainOptions, train  # noqa: PLC0415

    if steps < 1:
        raise QuantizeError(f"steps {steps}: pruning and QAT fine-tune; expected at least 1 step")
    if learning_rate <= 0:
        raise QuantizeError(f"learning rate {learning_rate}: expected a positive rate")
    engine_task = task.engine_task(model)
    evaluation = task.eval_batches() is not None and eval_every
    options = TrainOptions(schedule=float(learning_rate), optimizer=OptimizerConfig(kind="adam"),
                           checkpoint_every=checkpoint_every, log_every=log_every,
                           eval_every=eval_every if evaluation else 0,
                           tensorboard_dir=str(work_dir / "tensorboard") if tensorboard else None)
    try:
        return train(engine_task, task.train_data(), steps=steps, checkpoint_dir=work_dir,
                     eval_dataset_fn=task.eval_batches if evaluation else None, callbacks=list(callbacks),
                     options=options)
    except EngineError as e:
        raise QuantizeError(f"{work_dir}: {e}") from e
