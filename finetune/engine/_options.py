"""Everything ``train`` can be told besides the task, the data and the step count, as one frozen value."""
from __future__ import annotations

from dataclasses import dataclass, fields

from ._errors import EngineConfigError
from ._freeze import Stage, compile_patterns
from ._monitor import EarlyStopping
from ._optim import OptimizerConfig
from ._strategy import check_precision


@dataclass(frozen=True)
class TrainOptions:
    """How to train.

    ``schedule``: a learning rate (float) or a tf_keras LearningRateSchedule
    (``finetune.engine.build_schedule``); ``stages`` scale it.  ``eval_every``
    and ``checkpoint_every`` count steps (0: only at the end).  ``jit_compile``
    None means on when a GPU is present.  ``fine_tune_checkpoint`` is restored
    only when ``checkpoint_dir`` holds no checkpoint to resume from.
    ``text_summaries`` (name -> Markdown) are written to TensorBoard's text
    dashboard once, at the step training starts from.
    """

    schedule: object = None
    optimizer: OptimizerConfig = OptimizerConfig()
    eval_every: int = 0
    early_stopping: EarlyStopping | None = None
    grad_clip_norm: float | None = None
    weight_decay: float = 0.0
    stages: tuple[Stage, ...] = ()
    update_trainable_variables: tuple[str, ...] = ()
    freeze_variables: tuple[str, ...] = ()
    mixed_precision: str | None = None
    jit_compile: bool | None = None
    tensorboard_dir: str | None = None
    log_every: int = 100
    checkpoint_every: int = 1000
    max_to_keep: int = 3
    fine_tune_checkpoint: str | None = None
    fine_tune_checkpoint_type: str = "classification"
    strict_restore: bool = True
    overfit_window: int = 3
    sample_images: int = 3
    text_summaries: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "text_summaries", tuple(dict(self.text_summaries).items()))
        for name in ("stages", "update_trainable_variables", "freeze_variables"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, (str, Stage)) else tuple(value))
        if isinstance(self.schedule, bool) or not (isinstance(self.schedule, (int, float)) or callable(self.schedule)):
            raise EngineConfigError(f"schedule {self.schedule!r}: give a learning rate (e.g. schedule=0.01) or a "
                                    "schedule (finetune.engine.build_schedule('cosine_decay', ...))")
        check_precision(self.mixed_precision)
        compile_patterns(self.update_trainable_variables, "update_trainable_variables")
        compile_patterns(self.freeze_variables, "freeze_variables")
        for name in ("eval_every", "checkpoint_every", "log_every", "max_to_keep"):
            if getattr(self, name) < 0:
                raise EngineConfigError(f"{name} {getattr(self, name)}: expected a count >= 0")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise EngineConfigError(f"grad_clip_norm {self.grad_clip_norm}: expected a positive norm, or None")

    @classmethod
    def of(cls, options: "TrainOptions | None", overrides: dict) -> "TrainOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise EngineConfigError(f"train(): unknown option {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if options is None:
            return cls(**overrides)
        from dataclasses import replace  # noqa: PLC0415

        return replace(options, **overrides)
