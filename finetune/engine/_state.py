"""What a run saves so that a killed run resumes exactly: model, optimizer, step, data position, history.

Checkpoints go through tf.train.CheckpointManager in ``checkpoint_dir``; the
loss/learning-rate/metric history goes to ``history.json`` beside them,
written before each checkpoint and cut back to the restored step on resume.
In a multi-worker job every worker saves (saving is collective) but only the
chief writes into ``checkpoint_dir``; the others write to a temporary
directory they delete.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from migrate.tf import tensorflow

from ._errors import EngineError
from ._report import EvalRecord

HISTORY = "history.json"


@dataclass
class History:
    """Per-step losses and learning rates (index i is step i + 1), evaluation records, warnings."""

    losses: dict[str, list[float]] = field(default_factory=dict)
    learning_rates: list[float] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_step(self, losses: dict[str, float], learning_rate: float) -> None:
        done = len(self.learning_rates)
        for name, value in losses.items():
            self.losses.setdefault(name, [float("nan")] * done).append(value)
        self.learning_rates.append(learning_rate)

    def cut(self, steps: int) -> "History":
        return History({k: v[:steps] for k, v in self.losses.items()}, self.learning_rates[:steps],
                       [e for e in self.evals if e.step <= steps], list(self.warnings))

    def to_json(self) -> dict:
        return {"losses": self.losses, "learning_rates": self.learning_rates,
                "evals": [{"step": e.step, "metrics": e.metrics} for e in self.evals], "warnings": self.warnings}

    @classmethod
    def from_json(cls, data: dict) -> "History":
        return cls({k: list(v) for k, v in data.get("losses", {}).items()}, list(data.get("learning_rates", [])),
                   [EvalRecord(int(e["step"]), dict(e["metrics"])) for e in data.get("evals", [])],
                   list(data.get("warnings", [])))


class TrainState:
    """Step counter, data position and the CheckpointManager over them, the model and the optimizer."""

    def __init__(self, model, optimizer, directory, *, chief: bool, worker: int, max_to_keep: int):
        tf = tensorflow()
        int64, first = tf.int64, tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.step = tf.Variable(0, dtype=int64, trainable=False, name="global_step", aggregation=first)
        self.epoch = tf.Variable(0, dtype=int64, trainable=False, name="epoch", aggregation=first)
        self.step_in_epoch = tf.Variable(0, dtype=int64, trainable=False, name="step_in_epoch", aggregation=first)
        self.directory, self.chief = Path(directory), chief
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=self.step, epoch=self.epoch,
                                              step_in_epoch=self.step_in_epoch)
        self._scratch = None if chief else tempfile.mkdtemp(prefix=f"ckptkit-worker{worker}-")
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory if chief else self._scratch),
                                                  max_to_keep=max_to_keep, step_counter=self.step)

    def latest(self) -> str | None:
        return tensorflow().train.latest_checkpoint(str(self.directory))

    def resume(self, path: str) -> History:
        """Restore everything from ``path``; the history cut back to the restored step."""
        status = None
        try:
            status = self.checkpoint.restore(path)  # eager: a shape mismatch raises here already
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError) as e:
            if status is not None:
                status.expect_partial()  # else TensorFlow prints "unrestored values" at exit, after our one line
            first = str(e).strip().splitlines()[0][:300]
            raise EngineError(f"{path}: the checkpoint to resume from was written for another model or optimizer "
                              f"({first}); train into a new checkpoint_dir, or delete {self.directory} to start "
                              "over") from e
        history_file = self.directory / HISTORY
        history = History.from_json(json.loads(history_file.read_text())) if history_file.exists() else History()
        return history.cut(int(self.step.numpy()))

    def save(self, epoch: int, step_in_epoch: int, history: History) -> str:
        self.epoch.assign(epoch)
        self.step_in_epoch.assign(step_in_epoch)
        if self.chief:  # history first: it may run ahead of the checkpoint, never behind
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{HISTORY}.tmp"
            tmp.write_text(json.dumps(history.to_json()))
            os.replace(tmp, self.directory / HISTORY)
        path = self.manager.save(checkpoint_number=int(self.step.numpy()))
        if not self.chief:
            shutil.rmtree(self._scratch, ignore_errors=True)
            os.makedirs(self._scratch, exist_ok=True)
        return path

    def close(self) -> None:
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
