"""What the engine needs from a task (finetune.tasks implements it; this is the engine's view).

Optional extras the engine uses when present:

* ``draw_predictions(batch, outputs) -> images``: sample images with predicted
  boxes drawn on, ``[N, H, W, 3]`` in [0, 1] or uint8, written to TensorBoard
  at every evaluation;
* ``images_key``: the batch key holding the images (default ``"images"``,
  then ``"image"``);
* ``tensorboard_tag(name) -> str``: the TensorBoard tag of a loss
  (``loss/<part>``) or metric name (the SSD uses the OD API's tags);
* ``on_train_step(step)``: called before every training step with the
  engine's step (restored on resume), for tasks that draw random samples
  inside the loss (Faster R-CNN's balanced samplers): seeded by it, a resumed
  run draws what the uninterrupted one drew;
* ``checkpoint_model``: the object checkpoints hold under ``model`` when it
  is not ``model`` itself (the SSD trains a functional graph but is saved in
  the TF2 OD API's structure over the same variables).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._errors import EngineConfigError

REQUIRED = ("model", "loss", "forward", "evaluate", "backbone_variables", "head_variables")


@runtime_checkable
class Task(Protocol):
    model: object  # tf_keras.Model

    def loss(self, batch: dict, outputs, training: bool) -> dict:  # {"total": ..., parts...}
        ...

    def forward(self, images, training: bool):
        ...

    def evaluate(self, dataset) -> dict[str, float]:
        ...

    def backbone_variables(self) -> list:
        ...

    def head_variables(self) -> list:
        ...


def check_task(task) -> None:
    missing = [name for name in REQUIRED if not hasattr(task, name)]
    if missing:
        raise EngineConfigError(f"{type(task).__name__} is not a task: it has no {', '.join(missing)}; a task needs "
                                f"{', '.join(REQUIRED)} (see finetune.engine.Task)")


def as_dict(batch) -> dict:
    """Batches are dicts; an ``(images, labels)`` pair becomes ``{"images": ..., "labels": ...}``."""
    if isinstance(batch, dict):
        return batch
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return {"images": batch[0], "labels": batch[1]}
    raise EngineConfigError(f"a training batch is a {type(batch).__name__}; expected a dict of tensors "
                            "(with an 'images' entry) or an (images, labels) pair")


def images_of(task, batch: dict):
    keys = (getattr(task, "images_key", None) or "images", "image")
    for key in keys:
        if key in batch:
            return batch[key]
    raise EngineConfigError(f"a batch has no images: expected one of the keys {', '.join(keys)}, "
                            f"found {', '.join(sorted(batch)) or 'none'}; set the task's images_key")


def checkpointed(task):
    """What the task's checkpoints hold under ``model``: ``task.checkpoint_model``, else ``task.model``."""
    found = getattr(task, "checkpoint_model", None)
    return task.model if found is None else found
