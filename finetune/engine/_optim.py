"""Optimizers (tf_keras, the ones tensorflow-model-optimization trains with) from a small config."""
from __future__ import annotations

from dataclasses import dataclass

from ._errors import EngineConfigError

KINDS = ("momentum", "sgd", "adam", "rmsprop")


@dataclass(frozen=True)
class OptimizerConfig:
    """The OD API's optimizer choices: momentum_optimizer, adam_optimizer, rms_prop_optimizer.

    ``rho`` is RMSProp's ``decay``; ``use_ema`` keeps an exponential moving
    average of the weights (the OD API's ``use_moving_average``).  Decoupled
    weight decay (``train(weight_decay=...)``) skips variables whose name
    matches one of ``weight_decay_exclude``.
    """

    kind: str = "momentum"
    momentum: float = 0.9
    nesterov: bool = False
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    rho: float = 0.9
    centered: bool = False
    use_ema: bool = False
    ema_momentum: float = 0.99
    weight_decay_exclude: tuple[str, ...] = (r"/(bias|beta|gamma):\d+$",)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise EngineConfigError(f"optimizer {self.kind!r}: not known; choose one of {', '.join(KINDS)}")


def build_optimizer(config: OptimizerConfig, *, weight_decay: float = 0.0, mixed_precision=None):
    """The optimizer, its learning rate a variable the train step sets every step.

    Call inside ``strategy.scope()``.  float16 wraps it in a LossScaleOptimizer.
    """
    from migrate.tf import tf_keras  # noqa: PLC0415

    keras = tf_keras()
    if weight_decay < 0:
        raise EngineConfigError(f"weight_decay {weight_decay}: expected a value >= 0")
    common = {"learning_rate": 0.0, "weight_decay": weight_decay or None, "use_ema": config.use_ema,
              "ema_momentum": config.ema_momentum}
    if config.kind in ("momentum", "sgd"):
        optimizer = keras.optimizers.SGD(momentum=config.momentum if config.kind == "momentum" else 0.0,
                                         nesterov=config.nesterov, **common)
    elif config.kind == "adam":
        optimizer = keras.optimizers.Adam(beta_1=config.beta_1, beta_2=config.beta_2, epsilon=config.epsilon, **common)
    else:
        optimizer = keras.optimizers.RMSprop(rho=config.rho, momentum=config.momentum, epsilon=config.epsilon,
                                             centered=config.centered, **common)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(config.weight_decay_exclude))
    if mixed_precision == "float16":
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer
