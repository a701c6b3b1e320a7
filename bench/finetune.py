"""Training-engine throughput against plain ``model.fit``: same model, data, batch, optimizer, in one process.

Both train a small classification model (tf_keras MobileNet, alpha 0.25, by
default) on seeded in-memory data with SGD+momentum.  Steps per second are
taken the same way for both: step-end timestamps after a warm-up (tracing
excluded), (n - 1) / (last - first).  Runs alternate; medians are reported
with the ratio (target: engine >= 0.9x fit) and the engine's input pipeline
idle fraction (time waiting in next(iterator) / step time).

``--model ssd``: the demo's SSD (MobileNet v1 0.5, 128x128, the TF2 OD API
layout) on the ``detection_shapes`` TFRecords through ckptkit's real input
pipeline (decoding, the config's data augmentation, resizing, box
padding), with the SSD loss (target assignment, focal or softmax loss, hard
example mining) in both loops: ``model.fit`` gets it through a ``train_step``.

On a shared machine wall time swings with other load, so the process CPU
time per step (all threads) is reported too: the work each loop costs,
which other processes do not inflate.

Usage: python bench/finetune.py [--model mobilenet|tiny|ssd] [--steps 150] [--batch 32] [--size 64] [--passes 8]
                              [--repeat 4]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from migrate.tf import tensorflow, tf_keras  # noqa: E402

from finetune.engine import Callback, OptimizerConfig, train  # noqa: E402
from finetune.engine.testing import TinyClassifier, epoch_datasets, synthetic  # noqa: E402

CLASSES = 10


class MobileNetTask(TinyClassifier):
    def __init__(self, size: int):
        keras = tf_keras()
        keras.utils.set_random_seed(0)
        keras.backend.reset_uids()
        self.model = keras.applications.MobileNet(input_shape=(size, size, 3), alpha=0.25, weights=None,
                                                  classes=CLASSES, classifier_activation=None)
        self.classes = CLASSES


def build(args):
    if args.model == "ssd":
        return ssd_task()
    return MobileNetTask(args.size) if args.model == "mobilenet" else TinyClassifier(CLASSES, args.size)


def _shapes() -> Path:
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    return fixtures.build(out, names=["detection_shapes"])["detection_shapes"]


def ssd_config():
    from finetune import configure
    from finetune import ssd_config as settings

    return settings(configure(_shapes() / "pipeline.config", from_scratch=True), [])


def ssd_task():
    from finetune.tasks import SSDTask

    keras = tf_keras()
    keras.utils.set_random_seed(0)
    keras.backend.reset_uids()
    return SSDTask(ssd_config())


def ssd_data(batch: int):
    """The demo's training batches as ``ckpt-finetune train`` reads them (the config's data augmentation
    included): one stream over the epochs."""
    from finetune import backbone_of, build_inputs, configure
    from finetune.engine import EpochStream

    config = configure(_shapes() / "pipeline.config", from_scratch=True, batch_size=batch)
    return EpochStream.of(build_inputs(config, "detection", backbone_of(config), warnings=[]).train)


def fit_model(task):
    """A tf_keras model whose ``fit`` runs the task's own forward pass and loss (the SSD's target assignment)."""
    keras = tf_keras()

    class Fitted(keras.Model):
        def __init__(self):
            super().__init__()
            self.task = task
            self.net = task.model

        def train_step(self, batch):
            with tensorflow().GradientTape() as tape:
                losses = task.loss(batch, task.forward(batch["image"], training=True), training=True)
            variables = self.net.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(losses["total"], variables), variables))
            return {"loss": losses["total"]}

    return Fitted()


class StepTimes(Callback):
    def __init__(self):
        self.times = []

    def on_step_end(self, step, logs):
        self.times.append((time.perf_counter(), time.process_time()))


def rate(times: list[tuple[float, float]], warmup: int) -> tuple[float, float]:
    """(steps per wall second, CPU milliseconds per step) after the warm-up."""
    times = times[warmup:]
    steps = len(times) - 1
    return steps / (times[-1][0] - times[0][0]), 1000 * (times[-1][1] - times[0][1]) / steps


def engine_run(args, data) -> tuple[tuple[float, float], float]:
    clock = StepTimes()
    with tempfile.TemporaryDirectory() as tmp:
        report = train(lambda: build(args), data, steps=args.steps + args.warmup, checkpoint_dir=tmp, schedule=0.01,
                       optimizer=OptimizerConfig("momentum", momentum=0.9), log_every=0, checkpoint_every=0,
                       callbacks=[clock])
    return rate(clock.times, args.warmup), report.input_idle_fraction


def fit_run(args, data) -> tuple[float, float]:
    keras = tf_keras()
    times = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append((time.perf_counter(), time.process_time()))

    task = build(args)
    steps = args.steps + args.warmup
    if args.model == "ssd":  # the same batches the engine reads, epoch after epoch
        model = fit_model(task)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9))
        batches = data.stream(0, 0)
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[Clock()])
        return rate(times, args.warmup)
    task.model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    per_epoch = args.examples * args.passes // args.batch
    epochs = -(-steps // per_epoch)
    pairs = tensorflow().data.Dataset.range(epochs).flat_map(
        lambda e: data(0).map(lambda b: (b["images"], b["labels"])))  # same batches; fit iterates inside its graph
    task.model.fit(pairs, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[Clock()])
    return rate(times, args.warmup)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mobilenet", "tiny", "ssd"), default="mobilenet")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--passes", type=int, default=8, help="passes over the examples per epoch (epoch length)")
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args(argv)
    if args.model == "ssd":
        data = ssd_data(args.batch)
    else:
        images, labels = synthetic(args.examples, args.size, CLASSES)
        data = epoch_datasets(images, labels, batch_size=args.batch, passes=args.passes)
    engine, fit, idle = [], [], []
    for i in range(args.repeat):  # alternate, and swap who goes first: other load on the machine hits both
        for which in (("engine", "fit") if i % 2 == 0 else ("fit", "engine")):
            if which == "engine":
                speed, idle_fraction = engine_run(args, data)
                engine.append(speed)
                idle.append(idle_fraction)
            else:
                fit.append(fit_run(args, data))
    wall = {name: statistics.median(r[0] for r in runs) for name, runs in (("engine", engine), ("fit", fit))}
    cpu = {name: statistics.median(r[1] for r in runs) for name, runs in (("engine", engine), ("fit", fit))}
    result = {
        "model": args.model, "batch": args.batch, "steps": args.steps, "repeat": args.repeat,
        "input": [*ssd_config().image_size, 3] if args.model == "ssd" else [args.size, args.size, 3],
        "steps_per_epoch": None if args.model == "ssd" else args.examples * args.passes // args.batch,
        "engine_steps_per_sec": round(wall["engine"], 2),
        "fit_steps_per_sec": round(wall["fit"], 2),
        "ratio_engine_over_fit": round(wall["engine"] / wall["fit"], 3),
        "target_ratio": 0.9,
        "engine_cpu_ms_per_step": round(cpu["engine"], 2),
        "fit_cpu_ms_per_step": round(cpu["fit"], 2),
        "cpu_ratio_fit_over_engine": round(cpu["fit"] / cpu["engine"], 3),
        "engine_input_idle_fraction": round(statistics.median(idle), 4),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "runs_steps_per_sec": {"engine": [round(r[0], 2) for r in engine], "fit": [round(r[0], 2) for r in fit]},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
