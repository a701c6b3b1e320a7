"""The shared training engine: restore a converted checkpoint, freeze, schedule, train, resume.

    >>> from finetune.engine import EarlyStopping, Stage, build_schedule, train
    >>> report = train(make_task, dataset_for_epoch, steps=2000, checkpoint_dir="runs/a",   # doctest: +SKIP
    ...                schedule=build_schedule("cosine_decay", learning_rate_base=0.04, total_steps=2000,
    ...                                        warmup_learning_rate=0.01, warmup_steps=100),
    ...                fine_tune_checkpoint="converted/", fine_tune_checkpoint_type="classification",
    ...                freeze_variables=["^conv1"], stages=[Stage(500, freeze="^conv"), Stage(1500)],
    ...                eval_dataset_fn=val_batches, eval_every=200, early_stopping=EarlyStopping(5),
    ...                tensorboard_dir="runs/a/tb")
    >>> report.restore.grouped("initialised"), report.best_metric, report.input_idle_fraction  # doctest: +SKIP

``make_task`` is a task or a no-argument factory (built inside the strategy's
scope and the mixed-precision policy); ``dataset_for_epoch(epoch)`` returns
that epoch's batches, the same ones every time, so a killed run resumes where
its last checkpoint was with the same weights, schedule position and data
order; an :class:`EpochStream` gives them as one pipeline over all epochs.  Options are :class:`TrainOptions` fields.

Importing this package does not import TensorFlow; the names that need it
(``train``, the schedules, ``restore``, strategies) load it on first use.
"""
from __future__ import annotations

from migrate.lazy import lazy_exports

from ._batches import with_progress
from ._callbacks import Callback, StopTraining
from ._data import EpochStream
from ._errors import EngineConfigError, EngineError, RestoreError, TrainingDivergedError
from ._freeze import Selection, Stage, select_trainable
from ._monitor import EarlyStopping, Summaries
from ._optim import OptimizerConfig
from ._options import TrainOptions
from ._report import BestMetric, EvalRecord, Mismatch, RestoreReport, TrainReport
from ._task import Task, checkpointed

_LAZY = {
    "train": "._loop",
    "restore": "._restore",
    "CHECKPOINT_TYPES": "._restore",
    "build_schedule": "._schedules",
    "Constant": "._schedules",
    "ExponentialDecay": "._schedules",
    "CosineDecayWithWarmup": "._schedules",
    "ManualStep": "._schedules",
    "StageMultiplier": "._schedules",
    "choose_strategy": "._strategy",
    "precision_policy": "._strategy",
    "build_optimizer": "._optim",
}

__all__ = [
    "BestMetric", "Callback", "EarlyStopping", "EngineConfigError", "EngineError", "EpochStream", "EvalRecord",
    "Mismatch", "OptimizerConfig", "RestoreError", "RestoreReport", "Selection", "Stage", "StopTraining", "Summaries",
    "Task", "TrainOptions", "TrainReport", "TrainingDivergedError", "checkpointed", "select_trainable", "with_progress",
    *_LAZY,
]


__getattr__ = lazy_exports(__name__, _LAZY)
