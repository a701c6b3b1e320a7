"""A tiny classification task and seeded in-memory data, for the engine's tests, benchmark and multi-worker runs.

Independent of finetune.tasks and finetune.data: the engine is tested on its own.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from migrate.tf import tensorflow, tf_keras


class TinyClassifier:
    """conv-bn-relu x2, global pooling, a dense head: ``conv1``/``conv2`` are the backbone, ``head`` the head.

    Without ``batchnorm`` a step depends only on the whole batch, not on how it is split across replicas.
    """

    def __init__(self, classes: int = 3, size: int = 16, width: int = 8, seed: int = 0, batchnorm: bool = True):
        keras = tf_keras()
        keras.utils.set_random_seed(seed)
        keras.backend.reset_uids()
        inputs = keras.Input((size, size, 3), name="images")
        x = inputs
        for i, (filters, stride) in enumerate([(width, 1), (2 * width, 2)], start=1):
            x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=not batchnorm,
                                    name=f"conv{i}")(x)
            if batchnorm:
                x = keras.layers.BatchNormalization(name=f"conv{i}_bn")(x)
            x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        x = keras.layers.Dense(classes, name="head")(x)
        outputs = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
        self.model = keras.Model(inputs, outputs, name="tiny")
        self.classes = classes

    def forward(self, images, training: bool):
        return self.model(images, training=training)

    def loss(self, batch, outputs, training: bool) -> dict:
        tf = tensorflow()
        losses = tf_keras().losses.sparse_categorical_crossentropy(batch["labels"], outputs, from_logits=True)
        ce = tf.reduce_mean(losses)
        return {"total": ce, "classification": ce}

    def evaluate(self, dataset) -> dict[str, float]:
        tf = tensorflow()
        right = seen = 0
        for batch in dataset:
            predicted = tf.argmax(self.model(batch["images"], training=False), axis=-1)
            right += int(tf.reduce_sum(tf.cast(predicted == tf.cast(batch["labels"], predicted.dtype), tf.int32)))
            seen += int(tf.shape(predicted)[0])
        return {"accuracy": right / max(seen, 1)}

    def backbone_variables(self) -> list:
        return [v for v in self.model.variables if not v.name.startswith("head/")]

    def head_variables(self) -> list:
        return [v for v in self.model.variables if v.name.startswith("head/")]


def synthetic(n: int = 64, size: int = 16, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class shows in one colour channel's brightness, so a tiny net can learn it."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n).astype(np.int64)
    images = rng.random((n, size, size, 3), dtype=np.float32) * 0.5
    images[np.arange(n), :, :, labels % 3] += 0.5
    return images, labels


def epoch_datasets(images, labels, batch_size: int = 8, seed: int = 0, passes: int = 1):
    """``dataset_for_epoch(epoch)``: the same seeded shuffle for the same epoch, every time.

    An epoch is ``passes`` passes over the examples (long epochs from little memory, for benchmarks).
    """
    tf = tensorflow()
    examples = tf.data.Dataset.from_tensor_slices({"images": images, "labels": labels})  # copied into TF once

    def dataset_for_epoch(epoch: int):
        ds = examples.shuffle(len(labels), seed=seed * 1000 + epoch, reshuffle_each_iteration=False).repeat(passes)
        options = tf.data.Options()  # in-memory data: workers take every n-th example
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        # The graph rewrites would serialise the in-memory arrays at every epoch's iterator (~50 ms for 12 MB);
        # a file-based pipeline has a small graph and keeps them.
        options.experimental_optimization.apply_default_optimizations = False
        return ds.batch(batch_size, drop_remainder=True).prefetch(2).with_options(options)

    return dataset_for_epoch


def epoch_stream(images, labels, batch_size: int = 8, seed: int = 0, epochs: int = 32):
    """The batches of :func:`epoch_datasets` as an ``EpochStream`` (``epochs`` epochs from the first asked)."""
    from ._data import EpochStream

    per_epoch = epoch_datasets(images, labels, batch_size, seed)

    def stream(epoch: int, start_step: int):
        dataset = per_epoch(epoch)
        for later in range(epoch + 1, epoch + epochs):
            dataset = dataset.concatenate(per_epoch(later))
        return dataset.skip(start_step)

    return EpochStream(stream, len(labels) // batch_size)


def eval_dataset(images, labels, batch_size: int = 16):
    tf = tensorflow()
    return lambda: tf.data.Dataset.from_tensor_slices({"images": images, "labels": labels}).batch(batch_size)


def weights_bytes(model) -> dict[str, bytes]:
    """Every variable's value as bytes, by name: what 'bit-identical' compares."""
    return {v.name: v.numpy().tobytes() for v in model.variables}


def multiworker_smoke(out_dir, steps: int = 6) -> None:
    """One worker of a local multi-worker job (TF_CONFIG set): train, then write weights and report.

    The model has no BatchNorm, so the job computes what one process computes on the whole batch.
    """
    from reports import to_data  # noqa: PLC0415

    from ._loop import train  # noqa: PLC0415
    from ._strategy import choose_strategy  # noqa: PLC0415

    strategy = choose_strategy()  # MultiWorkerMirroredStrategy must come before any other TensorFlow op
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    out, tasks = Path(out_dir), []

    def factory():
        tasks.append(TinyClassifier(batchnorm=False))
        return tasks[-1]

    images, labels = synthetic(64)
    report = train(factory, epoch_datasets(images, labels, batch_size=8), steps=steps, checkpoint_dir=out / "ckpt",
                   strategy=strategy, schedule=0.05, log_every=0, checkpoint_every=3)
    np.savez(out / f"worker-{index}.npz", **{v.name: v.numpy() for v in tasks[0].model.variables})
    (out / f"worker-{index}.json").write_text(json.dumps(to_data(report)))


if __name__ == "__main__":
    multiworker_smoke(*sys.argv[1:2], *map(int, sys.argv[2:3]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # results are written; TensorFlow's gRPC server otherwise takes seconds to shut down at exit
