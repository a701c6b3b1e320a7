"""A run killed at any point resumes from its last checkpoint and ends exactly where an unbroken run ends:
same step count, schedule position, data order, loss history and bit-identical weights (CPU, oneDNN off)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetune.engine import Callback, OptimizerConfig, train
from finetune.engine._testing import TinyClassifier, epoch_datasets, epoch_stream, synthetic, weights_bytes

REPO = Path(__file__).resolve().parent.parent
STEPS = 20  # 8 batches per epoch: the kill and the resume fall mid-epoch


class Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, step, logs):
        if step == self.step:
            raise Crash(f"killed after step {step}")


def _run(directory, steps, optimizer, callbacks=(), tasks=None, streamed=False):
    from finetune.engine import build_schedule

    images, labels = synthetic(64)
    data = (epoch_stream if streamed else epoch_datasets)(images, labels, batch_size=8)

    def factory():
        task = TinyClassifier()
        if tasks is not None:
            tasks.append(task)
        return task

    schedule = build_schedule("cosine_decay", learning_rate_base=0.05, total_steps=STEPS, warmup_learning_rate=0.01,
                              warmup_steps=4)
    return train(factory, data, steps=steps, checkpoint_dir=directory,
                 schedule=schedule, optimizer=optimizer, checkpoint_every=3, log_every=0, grad_clip_norm=1.0,
                 weight_decay=1e-3, callbacks=callbacks)


class Keep(Callback):
    """Keeps the run's optimizer to compare its slots afterwards."""

    def on_train_begin(self, run):
        self.optimizer = run.optimizer

    def state(self):
        return [v.numpy().tobytes() for v in self.optimizer.variables]


@pytest.mark.parametrize("kind, streamed", [("momentum", False), ("adam", False), ("momentum", True)])
def test_killed_run_resumes_to_identical_weights_and_history(tmp_path, kind, streamed):
    optimizer = OptimizerConfig(kind=kind)
    straight_tasks, resumed_tasks, keep_straight, keep_resumed = [], [], Keep(), Keep()
    straight = _run(tmp_path / "straight", STEPS, optimizer, callbacks=[keep_straight], tasks=straight_tasks,
                    streamed=streamed)

    with pytest.raises(Crash):
        _run(tmp_path / "broken", STEPS, optimizer, callbacks=[CrashAt(11)], streamed=streamed)
    resumed = _run(tmp_path / "broken", STEPS, optimizer, callbacks=[keep_resumed], tasks=resumed_tasks,
                   streamed=streamed)

    assert resumed.resumed_from.endswith("ckpt-9")  # the last checkpoint before the crash
    assert resumed.start_step == 9 and resumed.steps == straight.steps == STEPS
    assert resumed.loss_history == straight.loss_history  # floats compared exactly
    assert resumed.learning_rates == straight.learning_rates
    assert weights_bytes(resumed_tasks[-1].model) == weights_bytes(straight_tasks[-1].model)
    assert keep_resumed.state() == keep_straight.state()  # momentum / Adam slots and iteration count


@pytest.mark.parametrize("streamed", [False, True])
def test_resume_restores_data_position(tmp_path, streamed):
    with pytest.raises(Crash):
        _run(tmp_path, STEPS, OptimizerConfig(), callbacks=[CrashAt(10)], streamed=streamed)
    from migrate._tf import tensorflow

    reader = tensorflow().train.load_checkpoint(str(tmp_path / "ckpt-9"))
    position = {k.split("/")[0]: int(reader.get_tensor(k)) for k in reader.get_variable_to_shape_map()
                if k.split("/")[0] in ("step", "epoch", "step_in_epoch")}
    assert position == {"step": 9, "epoch": 1, "step_in_epoch": 1}
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["learning_rates"]) == 9


def test_finished_run_is_not_trained_again(tmp_path):
    first = _run(tmp_path, 6, OptimizerConfig())
    again = _run(tmp_path, 6, OptimizerConfig())
    assert again.start_step == again.steps == 6 and again.loss_history == first.loss_history


WORKER = """
import sys, time
from finetune.engine import Callback, OptimizerConfig, train, build_schedule
from finetune.engine._testing import TinyClassifier, epoch_datasets, synthetic
class Slow(Callback):
    def on_step_end(self, step, logs):
        time.sleep(0.03)
images, labels = synthetic(64)
schedule = build_schedule("cosine_decay", learning_rate_base=0.05, total_steps=40, warmup_learning_rate=0.01,
                          warmup_steps=4)
train(TinyClassifier, epoch_datasets(images, labels, batch_size=8), steps=40, checkpoint_dir=sys.argv[1],
      schedule=schedule, checkpoint_every=2, log_every=0, callbacks=[Slow()])
"""


def test_sigkill_mid_run_then_resume(tmp_path):
    """A real kill -9 while training: the resumed run matches an unbroken one."""
    broken = tmp_path / "broken"
    child = subprocess.Popen([sys.executable, "-c", WORKER, str(broken)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(broken.glob("ckpt-*.index"))) < 2:
            time.sleep(0.05)
        time.sleep(0.07)  # land anywhere: mid-step, mid-save
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert list(broken.glob("ckpt-*.index")), "the child never wrote a checkpoint"

    from finetune.engine import build_schedule
    images, labels = synthetic(64)
    schedule = build_schedule("cosine_decay", learning_rate_base=0.05, total_steps=40, warmup_learning_rate=0.01,
                              warmup_steps=4)
    tasks = []

    def factory():
        tasks.append(TinyClassifier())
        return tasks[-1]

    common = dict(steps=24, schedule=schedule, checkpoint_every=2, log_every=0)
    straight = train(factory, epoch_datasets(images, labels, batch_size=8), checkpoint_dir=tmp_path / "s", **common)
    resumed = train(factory, epoch_datasets(images, labels, batch_size=8), checkpoint_dir=broken, **common)
    assert 0 < resumed.start_step < 24
    assert resumed.loss_history == straight.loss_history
    assert weights_bytes(tasks[1].model) == weights_bytes(tasks[0].model)


def test_resuming_into_another_model_says_what_to_do(tmp_path):
    from finetune.engine import EngineError

    _run(tmp_path, 3, OptimizerConfig())
    images, labels = synthetic(64)
    with pytest.raises(EngineError, match="the checkpoint to resume from was written for another model or optimizer "
                                          r".*train into a new checkpoint_dir, or delete .* to start over"):
        train(lambda: TinyClassifier(width=4), epoch_datasets(images, labels), steps=6, checkpoint_dir=tmp_path,
              schedule=0.05, log_every=0)
