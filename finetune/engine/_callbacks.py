"""Hooks into a training run: the engine's own callbacks and tf_keras callbacks (tfmot's pruning step)."""
from __future__ import annotations

HOOKS = ("on_train_begin", "on_step_begin", "on_step_end", "on_epoch_end", "on_eval_end", "on_train_end")


class StopTraining(Exception):
    """Raise from a callback to end training cleanly: a checkpoint is saved and the report returned."""


class Callback:
    """Override any of the hooks; each is called on every worker."""

    def on_train_begin(self, run) -> None:
        """``run`` exposes ``task``, ``optimizer``, ``strategy``, ``step`` and ``steps``."""

    def on_step_begin(self, step: int) -> None:
        """Before the step that takes ``step`` steps done to ``step + 1``."""

    def on_step_end(self, step: int, logs: dict) -> None:
        """``step`` steps are done; ``logs`` holds the losses and ``learning_rate``."""

    def on_epoch_end(self, epoch: int) -> None:
        """The data epoch ``epoch`` ran out, or training ends during it (then before the last checkpoint)."""

    def on_eval_end(self, step: int, metrics: dict) -> None:
        """After an evaluation at ``step``."""

    def on_train_end(self, report) -> None:
        """With the TrainReport."""


class KerasCallback(Callback):
    """Drive a tf_keras callback (e.g. tfmot's UpdatePruningStep) from the custom loop."""

    def __init__(self, callback):
        self.callback = callback
        self.model = None

    def on_train_begin(self, run) -> None:
        self.model = run.task.model
        if getattr(self.model, "optimizer", None) is None:
            self.model.optimizer = run.optimizer  # keras callbacks read model.optimizer.iterations
        self.callback.set_model(self.model)
        self.callback.on_train_begin()

    def on_step_begin(self, step: int) -> None:
        self.callback.on_train_batch_begin(step)

    def on_step_end(self, step: int, logs: dict) -> None:
        self.callback.on_train_batch_end(step - 1, logs)
        if getattr(self.model, "stop_training", False):
            raise StopTraining(f"{type(self.callback).__name__} set model.stop_training")

    def on_epoch_end(self, epoch: int) -> None:
        self.callback.on_epoch_end(epoch)  # tfmot applies the pruning masks to the weights here

    def on_train_end(self, report) -> None:
        self.callback.on_train_end()


class Hooks:
    """The callbacks' bound methods per hook, so a step calls only the hooks someone defined."""

    def __init__(self, callbacks):
        from migrate.tf import tf_keras  # noqa: PLC0415

        keras_base = tf_keras().callbacks.Callback
        wrapped = [KerasCallback(c) if isinstance(c, keras_base) else c for c in callbacks]
        self.methods = {hook: [getattr(c, hook) for c in wrapped if _overrides(c, hook)] for hook in HOOKS}

    def __call__(self, hook: str, *args) -> None:
        for method in self.methods[hook]:
            method(*args)


def _overrides(callback, hook: str) -> bool:
    method = getattr(callback, hook, None)
    if method is None:
        return False
    base = getattr(Callback, hook)
    return getattr(method, "__func__", method) is not base
