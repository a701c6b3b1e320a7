"""Learning-rate schedules as tf_keras ``LearningRateSchedule``s, with the OD API's formulas.

``exponential_decay`` is ``exponential_decay_with_burnin``, ``cosine_decay`` is
``cosine_decay_with_warmup`` and ``manual_step`` is ``manual_stepping`` from
``object_detection/utils/learning_schedules.py``, computed in float32 like the
originals.  ``StageMultiplier`` scales any of them per gradual-unfreezing stage.
"""
from __future__ import annotations

import math

from migrate.tf import tensorflow, tf_keras

from ._errors import EngineConfigError

tf = tensorflow()
_Base = tf_keras().optimizers.schedules.LearningRateSchedule


def _step(step):
    return tf.cast(step, tf.float32)


class Constant(_Base):
    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)

    def __call__(self, step):
        return tf.fill([], tf.constant(self.learning_rate, tf.float32))

    def get_config(self):
        return {"learning_rate": self.learning_rate}


class ExponentialDecay(_Base):
    """``initial * factor ** ((step - burnin_steps) / decay_steps)`` (floored when staircase).

    During ``burnin_steps`` the rate is ``initial`` (``burnin_learning_rate`` 0)
    or rises linearly from ``burnin_learning_rate``; never below ``min_learning_rate``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_factor: float, staircase: bool = True,
                 burnin_learning_rate: float = 0.0, burnin_steps: int = 0, min_learning_rate: float = 0.0):
        if decay_steps <= 0:
            raise EngineConfigError(f"exponential_decay: decay_steps {decay_steps}: expected a positive step count")
        if burnin_learning_rate and burnin_steps <= 0:
            raise EngineConfigError("exponential_decay: burnin_learning_rate needs burnin_steps > 0")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_factor = float(decay_factor)
        self.staircase = bool(staircase)
        self.burnin_learning_rate = float(burnin_learning_rate)
        self.burnin_steps = int(burnin_steps)
        self.min_learning_rate = float(min_learning_rate)

    def __call__(self, step):
        step = _step(step)
        power = (step - self.burnin_steps) / self.decay_steps
        if self.staircase:
            power = tf.floor(power)
        decayed = self.initial_learning_rate * tf.pow(tf.constant(self.decay_factor, tf.float32), power)
        if self.burnin_learning_rate == 0:
            burnin = tf.constant(self.initial_learning_rate, tf.float32)
        else:
            slope = (self.initial_learning_rate - self.burnin_learning_rate) / self.burnin_steps
            burnin = slope * step + self.burnin_learning_rate
        rate = tf.where(step < self.burnin_steps, burnin, decayed)
        return tf.maximum(rate, self.min_learning_rate)

    def get_config(self):
        return dict(vars(self))


class CosineDecayWithWarmup(_Base):
    """Linear warm-up, optional hold at the base rate, cosine decay to 0 at ``total_steps``, then 0."""

    def __init__(self, learning_rate_base: float, total_steps: int, warmup_learning_rate: float = 0.0,
                 warmup_steps: int = 0, hold_base_rate_steps: int = 0):
        if learning_rate_base < warmup_learning_rate:
            raise EngineConfigError(f"cosine_decay: learning_rate_base {learning_rate_base} is below "
                                    f"warmup_learning_rate {warmup_learning_rate}; the warm-up must rise to the base")
        if total_steps < warmup_steps + hold_base_rate_steps or total_steps <= 0:
            raise EngineConfigError(f"cosine_decay: total_steps {total_steps} must be at least warmup_steps "
                                    f"{warmup_steps} + hold_base_rate_steps {hold_base_rate_steps}")
        self.learning_rate_base = float(learning_rate_base)
        self.total_steps = int(total_steps)
        self.warmup_learning_rate = float(warmup_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.hold_base_rate_steps = int(hold_base_rate_steps)

    def __call__(self, step):
        step = _step(step)
        flat = self.warmup_steps + self.hold_base_rate_steps
        span = float(max(self.total_steps - flat, 1))
        rate = 0.5 * self.learning_rate_base * (1 + tf.cos(math.pi * (step - flat) / span))
        if self.hold_base_rate_steps > 0:
            rate = tf.where(step > flat, rate, self.learning_rate_base)
        if self.warmup_steps > 0:
            slope = (self.learning_rate_base - self.warmup_learning_rate) / self.warmup_steps
            rate = tf.where(step < self.warmup_steps, slope * step + self.warmup_learning_rate, rate)
        return tf.where(step > self.total_steps, 0.0, rate)

    def get_config(self):
        return dict(vars(self))


class ManualStep(_Base):
    """``rates[i]`` from ``boundaries[i-1]`` on (``rates[0]`` before the first boundary).

    With ``warmup`` the rate moves linearly from ``rates[0]`` to ``rates[1]``
    over the steps before the first boundary.
    """

    def __init__(self, boundaries, rates, warmup: bool = False):
        boundaries, rates = [int(b) for b in boundaries], [float(r) for r in rates]
        if any(b <= 0 for b in boundaries):
            raise EngineConfigError(f"manual_step: boundaries {boundaries}: expected positive step numbers")
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise EngineConfigError(f"manual_step: boundaries {boundaries} must be strictly increasing")
        if len(rates) != len(boundaries) + 1:
            raise EngineConfigError(f"manual_step: {len(rates)} rates for {len(boundaries)} boundaries; "
                                    "give one rate more than boundaries (the first is the initial rate)")
        self.boundaries, self.rates, self.warmup = boundaries, rates, bool(warmup)
        if warmup and boundaries:
            slope = (rates[1] - rates[0]) / boundaries[0]
            steps = list(range(boundaries[0]))
            self._starts, self._values = steps + boundaries, [rates[0] + slope * s for s in steps] + rates[1:]
        else:
            self._starts, self._values = [0] + boundaries, rates

    def __call__(self, step):
        step = tf.cast(step, tf.int64)
        index = tf.reduce_sum(tf.cast(step >= tf.constant(self._starts[1:], tf.int64), tf.int32))
        return tf.gather(tf.constant(self._values, tf.float32), index)

    def get_config(self):
        return {"boundaries": self.boundaries, "rates": self.rates, "warmup": self.warmup}


class StageMultiplier(_Base):
    """``schedule(step) * multipliers[i]`` while stage ``i`` runs (stages end at ``ends``)."""

    def __init__(self, schedule, ends, multipliers):
        if len(ends) != len(multipliers) or not ends:
            raise EngineConfigError(f"stage multipliers: {len(multipliers)} multipliers for {len(ends)} stages")
        self.schedule, self.ends, self.multipliers = schedule, [int(e) for e in ends], [float(m) for m in multipliers]

    def __call__(self, step):
        index = tf.reduce_sum(tf.cast(tf.cast(step, tf.int64) >= tf.constant(self.ends[:-1], tf.int64), tf.int32))
        return self.schedule(step) * tf.gather(tf.constant(self.multipliers, tf.float32), index)

    def get_config(self):
        return {"schedule": self.schedule.get_config(), "ends": self.ends, "multipliers": self.multipliers}


SCHEDULES = {
    "constant": Constant,
    "exponential_decay": ExponentialDecay,
    "cosine_decay": CosineDecayWithWarmup,
    "manual_step": ManualStep,
}


def build_schedule(kind: str, **params) -> _Base:
    """A schedule by its OD API name (``cosine_decay`` for ``cosine_decay_learning_rate``, ...)."""
    cls = SCHEDULES.get(kind.removesuffix("_learning_rate"))
    if cls is None:
        raise EngineConfigError(f"learning-rate schedule {kind!r}: not known; known: {', '.join(SCHEDULES)}")
    try:
        return cls(**params)
    except TypeError as e:
        raise EngineConfigError(f"learning-rate schedule {kind!r}: {e}") from e


def with_stages(schedule, stages) -> _Base:
    """``schedule`` scaled by each stage's ``lr_multiplier``; unchanged without stages."""
    if not stages:
        return schedule
    from ._freeze import stage_ends  # noqa: PLC0415

    return StageMultiplier(schedule, stage_ends(stages), [s.lr_multiplier for s in stages])
