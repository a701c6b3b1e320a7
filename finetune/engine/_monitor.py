"""Watching a run: the best metric, early stopping, overfitting, TensorBoard scalars and images."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ._errors import EngineConfigError
from ._report import BestMetric, EvalRecord


@dataclass(frozen=True)
class EarlyStopping:
    """Stop after ``patience`` evaluations without ``metric`` improving by more than ``min_delta``."""

    patience: int
    metric: str = "val_loss"
    mode: str = "min"
    min_delta: float = 0.0

    def __post_init__(self):
        if self.mode not in ("min", "max"):
            raise EngineConfigError(f"early_stopping mode {self.mode!r}: choose 'min' (losses) or 'max' "
                                    "(accuracy, mAP)")
        if self.patience < 1:
            raise EngineConfigError(f"early_stopping patience {self.patience}: expected at least 1 evaluation")


class Monitor:
    """Replays evaluation records: best value, evaluations since it, whether to stop, overfit warning."""

    def __init__(self, early_stopping: EarlyStopping | None, overfit_window: int = 3):
        self.rule = early_stopping or EarlyStopping(patience=10 ** 9)
        self.watched = early_stopping is not None
        self.window = overfit_window
        self.best: BestMetric | None = None
        self.since_best = 0
        self.points: list[tuple[int, float, float]] = []  # (step, mean training loss since last eval, val_loss)
        self.overfit_warned = False

    def update(self, record: EvalRecord, train_loss: float | None) -> bool:
        """Take one evaluation; True when early stopping says stop."""
        value = record.metrics.get(self.rule.metric)
        if value is None:
            if self.watched:
                raise EngineConfigError(f"early_stopping metric {self.rule.metric!r} is not among the evaluation "
                                        f"metrics: {', '.join(sorted(record.metrics))}")
        elif self.best is None or self._better(value, self.best.value):
            self.best, self.since_best = BestMetric(self.rule.metric, value, record.step), 0
        else:
            self.since_best += 1
        if train_loss is not None and "val_loss" in record.metrics:
            self.points.append((record.step, train_loss, record.metrics["val_loss"]))
        return self.watched and self.since_best >= self.rule.patience

    def _better(self, value: float, best: float) -> bool:
        delta = self.rule.min_delta
        return value < best - delta if self.rule.mode == "min" else value > best + delta

    def overfit_warning(self) -> str | None:
        """Once: validation loss rose at each of the last evaluations while training loss fell."""
        if self.overfit_warned or len(self.points) < self.window + 1:
            return None
        last = self.points[-(self.window + 1):]
        rising = all(b[2] > a[2] for a, b in zip(last, last[1:]))
        falling = all(b[1] < a[1] for a, b in zip(last, last[1:]))
        if not (rising and falling):
            return None
        self.overfit_warned = True
        (s0, t0, v0), (s1, t1, v1) = last[0], last[-1]
        return (f"overfitting: validation loss rose from {v0:.4g} to {v1:.4g} over the last {self.window} evaluations "
                f"(steps {s0}-{s1}) while training loss fell from {t0:.4g} to {t1:.4g}; consider early_stopping, "
                "more data or augmentation, fewer steps or a lower learning rate")


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class Summaries:
    """TensorBoard event files under ``directory/train`` and ``directory/eval`` (chief only; else no-ops).

    Written with TensorFlow's own ``tf.summary.write`` and the scalars/images
    plugin metadata, so they need no ``tensorboard`` package at training time.
    """

    def __init__(self, directory, enabled: bool, tag=None, kinds=("train", "eval")):
        self.tag = tag or (lambda name: name)  # a task's own names for its tags (the OD API's for SSD)
        self.writers = {}
        if directory and enabled:
            from migrate.tf import tensorflow  # noqa: PLC0415

            tf = tensorflow()
            self.writers = {kind: tf.summary.create_file_writer(f"{directory}/{kind}") for kind in kinds}

    def scalars(self, kind: str, step: int, values: dict[str, float]) -> None:
        writer = self.writers.get(kind)
        if writer is None:
            return
        from migrate.tf import tensorflow  # noqa: PLC0415

        tf = tensorflow()
        metadata = _metadata("scalars", 1)
        with writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.write(self.tag(name), tf.constant(value, tf.float32), metadata=metadata)

    def images(self, step: int, name: str, images, max_outputs: int) -> None:
        """``images``: [N, H, W, C] uint8, or floats in [0, 1]; the first ``max_outputs`` become PNGs."""
        writer = self.writers.get("eval")
        if writer is None:
            return
        from migrate.tf import tensorflow  # noqa: PLC0415

        tf = tensorflow()
        images = tf.convert_to_tensor(images)[:max_outputs]
        if images.dtype != tf.uint8:
            images = tf.image.convert_image_dtype(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0), tf.uint8)
        height, width = int(images.shape[1]), int(images.shape[2])
        pngs = [tf.io.encode_png(image) for image in images]
        blob = tf.stack([tf.constant(str(width)), tf.constant(str(height)), *pngs])  # the images plugin's layout
        with writer.as_default(step=step):
            tf.summary.write(name, blob, metadata=_metadata("images", 3))

    def text(self, step: int, name: str, markdown: str) -> None:
        """One text summary (TensorBoard's text dashboard renders Markdown) in the ``train`` events."""
        writer = self.writers.get("train")
        if writer is None:
            return
        from migrate.tf import tensorflow  # noqa: PLC0415

        tf = tensorflow()
        with writer.as_default(step=step):
            tf.summary.write(name, tf.constant(markdown), metadata=_metadata("text", 2))

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _metadata(plugin: str, data_class: int):
    from tensorflow.core.framework import summary_pb2  # noqa: PLC0415 - imported after migrate._tf set it up

    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
                                       data_class=data_class)
