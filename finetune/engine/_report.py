"""Typed results of the engine: what a restore did and what a training run did.

Frozen dataclasses without TensorFlow, serialisable with ``reports.to_data``;
long name lists render grouped by prefix through ``reports.group_names``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from reports import group_names, register_kind


@dataclass(frozen=True)
class Mismatch:
    """A model variable whose checkpoint counterpart has another shape or dtype."""

    name: str
    key: str
    model_shape: tuple[int, ...]
    checkpoint_shape: tuple[int, ...]
    model_dtype: str
    checkpoint_dtype: str


@dataclass(frozen=True)
class RestoreReport:
    """Which model variables a fine-tune checkpoint set, and which kept their fresh initial values.

    Names are the model's variable names (``conv1/kernel``); ``unused`` names
    the checkpoint's variables (by the name they were saved under) that went
    into no model variable.
    """

    checkpoint: str
    checkpoint_type: str
    restored: tuple[str, ...]
    initialised: tuple[str, ...]
    matched_by_name: tuple[str, ...] = ()  # restored, but found by variable name, not object path
    missing: tuple[str, ...] = ()  # wanted, not in the checkpoint (only with strict=False)
    mismatched: tuple[Mismatch, ...] = ()  # wanted, wrong shape/dtype (only with strict=False)
    unused: tuple[str, ...] = ()
    verified: int = 0
    summary: dict[str, int] = field(default_factory=dict)

    kind = "engine-restore"

    def __post_init__(self):
        counts = {name: len(getattr(self, name)) for name in
                  ("restored", "initialised", "matched_by_name", "missing", "mismatched", "unused")}
        object.__setattr__(self, "summary", counts)

    def grouped(self, name: str, max_items: int = 0) -> list[str]:
        """One of the name lists, grouped by prefix: ``conv_dw_{1..13}/depthwise_kernel``."""
        values = getattr(self, name)
        return group_names([v.name if isinstance(v, Mismatch) else v for v in values], max_items)

    def describe(self) -> str:
        """A few lines for logs and the command line."""
        lines = [f"restored {len(self.restored)} variables from {self.checkpoint} ({self.checkpoint_type}), "
                 f"initialised {len(self.initialised)}"]
        for label in ("restored", "initialised", "missing", "mismatched", "matched_by_name"):
            if getattr(self, label):
                lines.append(f"  {label}: " + "; ".join(self.grouped(label, max_items=6)))
        return "\n".join(lines)


@dataclass(frozen=True)
class EvalRecord:
    step: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class BestMetric:
    name: str
    value: float
    step: int


@dataclass(frozen=True)
class TrainReport:
    """What one ``train`` call did.  History lists start at step 1 (index i is step i + 1)."""

    steps: int
    start_step: int
    final_losses: dict[str, float]
    loss_history: dict[str, tuple[float, ...]]
    learning_rates: tuple[float, ...]
    metrics_history: tuple[EvalRecord, ...]
    best_metric: BestMetric | None
    stopped_early: bool
    stop_reason: str | None  # None: all steps done
    restore: RestoreReport | None
    resumed_from: str | None
    checkpoint: str | None
    input_idle_fraction: float
    steps_per_sec: float
    strategy: str
    replicas: int
    mixed_precision: str | None
    jit_compile: bool
    warnings: tuple[str, ...] = ()

    kind = "engine-train"


register_kind(RestoreReport)  # reports.load_report reads them back
register_kind(TrainReport)
