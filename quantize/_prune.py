"""Magnitude pruning through the engine: wrap, fine-tune, ``strip_pruning``, measure the sparsity reached.

    >>> config = PruneConfig(0.5, schedule="polynomial", layer_sparsity=(("^conv_pw_13$", 0.7),))
    >>> result = prune(task, "runs/pruned", steps=200, learning_rate=1e-4, config=config)   # doctest: +SKIP
    >>> result.overall_sparsity, result.layers[0]                                           # doctest: +SKIP

Layers with a kernel (Conv2D, DepthwiseConv2D, Dense) are pruned to the
default target unless a ``layer_sparsity`` regex (first match wins) gives
another; target 0 leaves a layer dense.  ``m_by_n=(2, 4)``: 2:4 structured
sparsity, applied only to Conv2D/Dense kernels whose input channels divide
into groups of 4 (others stay dense and are listed as such).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._errors import QuantizeError
from ._sparsity import LayerSparsity, kernel_of, measure, overall
from ._training import fresh_copy, train_wrapped

SCHEDULES = ("polynomial", "constant")


@dataclass(frozen=True)
class PruneConfig:
    target_sparsity: float = 0.5
    schedule: str = "polynomial"  # PolynomialDecay from initial_sparsity, or ConstantSparsity
    initial_sparsity: float = 0.0
    begin_step: int = 0
    end_fraction: float = 0.7  # polynomial: reach the target after this fraction of the steps
    frequency: int | None = None  # mask update every N steps (default: steps // 20, at least 1)
    layer_sparsity: tuple = ()  # ((regex, target), ...): first match wins; 0 keeps a layer dense
    m_by_n: tuple | None = None  # (2, 4): structured sparsity

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise QuantizeError(f"pruning schedule {self.schedule!r}: expected one of {', '.join(SCHEDULES)}")
        for name, value in [("target sparsity", self.target_sparsity), ("initial sparsity", self.initial_sparsity),
                            *((f"sparsity for {p!r}", v) for p, v in self.layer_sparsity)]:
            if not 0.0 <= value < 1.0:
                raise QuantizeError(f"{name} {value}: expected a fraction in [0, 1)")
        for pattern, _ in self.layer_sparsity:
            try:
                re.compile(pattern)
            except re.error as e:
                raise QuantizeError(f"layer sparsity pattern {pattern!r}: not a regular expression ({e})") from None
        if self.m_by_n is not None:
            m, n = self.m_by_n
            if not 0 < m < n:
                raise QuantizeError(f"m_by_n {m}:{n}: expected m zeros out of n weights with 0 < m < n (e.g. 2:4)")

    def target_for(self, name: str) -> float:
        for pattern, value in self.layer_sparsity:
            if re.search(pattern, name):
                return float(value)
        return float(self.target_sparsity)


@dataclass(frozen=True)
class PruneResult:
    model: object  # the stripped tf_keras model (plain layers, zeros in the kernels)
    layers: tuple[LayerSparsity, ...]
    overall_sparsity: float  # over the pruned layers' kernels
    config: PruneConfig
    steps: int
    train_report: object = None
    skipped: tuple = field(default_factory=tuple)  # (layer, reason) kept dense


def schedule_for(config: PruneConfig, target: float, steps: int):
    import tensorflow_model_optimization as tfmot  # noqa: PLC0415

    frequency = config.frequency or max(1, steps // 20)
    if config.schedule == "constant" or config.m_by_n:
        return tfmot.sparsity.keras.ConstantSparsity(target, begin_step=config.begin_step, frequency=frequency)
    end = max(config.begin_step + 1, int(steps * config.end_fraction))
    return tfmot.sparsity.keras.PolynomialDecay(min(config.initial_sparsity, target), target,
                                                begin_step=config.begin_step, end_step=end, frequency=frequency)


def _not_prunable(layer) -> str | None:
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry  # noqa: PLC0415

    if not prune_registry.PruneRegistry.supports(layer):
        return f"{type(layer).__name__}: not in tfmot's prune registry"
    if not prune_registry.PruneRegistry._weight_names(layer):  # noqa: SLF001 - e.g. DepthwiseConv2D maps to []
        return f"{type(layer).__name__}: tfmot prunes none of its weights"
    return None


def _m_by_n_reason(layer, m_by_n) -> str | None:
    kernel = kernel_of(layer)
    if type(layer).__name__ not in ("Conv2D", "Dense"):
        return f"{type(layer).__name__}: {m_by_n[0]}:{m_by_n[1]} sparsity applies to Conv2D and Dense kernels only"
    channels = kernel.shape[-2]
    if channels % m_by_n[1]:
        return f"{channels} input channels do not divide into groups of {m_by_n[1]}"
    return None


def wrap(model, config: PruneConfig, steps: int):
    """``(pruning-wrapped copy of model, {layer: target}, skipped)``; the float model is left untouched."""
    import tensorflow_model_optimization as tfmot  # noqa: PLC0415
    from migrate.tf import tf_keras  # noqa: PLC0415

    targets, skipped = {}, []

    def clone(layer):
        if kernel_of(layer) is None:
            return layer
        target = config.target_for(layer.name)
        reason = "target sparsity 0" if target == 0 else _not_prunable(layer) or (
            _m_by_n_reason(layer, config.m_by_n) if config.m_by_n else None)
        if reason:
            skipped.append((layer.name, reason))
            return layer
        targets[layer.name] = target
        try:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule_for(config, target, steps),
                                                            sparsity_m_by_n=config.m_by_n)
        except ValueError as e:
            raise QuantizeError(f"layer {layer.name!r} ({type(layer).__name__}): tfmot cannot prune it "
                                f"({str(e).splitlines()[0]}); exclude it with a layer sparsity of 0") from None

    copy = fresh_copy(model)
    wrapped = tf_keras().models.clone_model(copy, clone_function=clone)
    if not targets:
        raise QuantizeError(f"model {model.name!r}: no layer to prune (no Conv2D/DepthwiseConv2D/Dense kernel, or "
                            "every target is 0)")
    return wrapped, targets, tuple(skipped)


def prune(task, work_dir, *, steps: int, learning_rate: float = 1e-4, config: PruneConfig = PruneConfig(),
          model=None, tensorboard: bool = False, checkpoint_every: int = 0) -> PruneResult:
    """Prune ``model`` (default: the task's float model) while fine-tuning ``steps`` steps through the engine."""
    import tensorflow_model_optimization as tfmot  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    work_dir = Path(work_dir)
    wrapped, targets, skipped = wrap(model if model is not None else task.float_model(), config, steps)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    if tensorboard:
        callbacks.append(tfmot.sparsity.keras.PruningSummaries(log_dir=str(work_dir / "tensorboard" / "pruning")))
    report = train_wrapped(task, wrapped, work_dir, steps=steps, learning_rate=learning_rate, callbacks=callbacks,
                           tensorboard=tensorboard, checkpoint_every=checkpoint_every)
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    layers = measure(stripped, targets, config.m_by_n)
    return PruneResult(stripped, layers, overall(layers), config, steps, report, skipped)
