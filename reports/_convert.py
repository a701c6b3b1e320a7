"""Typed results of ``ckpt-migrate map`` and ``convert``."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MappedTensor:
    source: str
    target: str
    rule: str
    transform: str = ""


@dataclass(frozen=True)
class ShapeMismatch:
    source: str
    target: str
    source_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    rule: str


@dataclass(frozen=True)
class Ambiguity:
    sources: tuple[str, ...]
    candidates: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class MappingReport:
    source: str
    target: str
    rule_set: str
    mapped: tuple[MappedTensor, ...]
    unmapped_source: tuple[str, ...]
    unmapped_target: tuple[str, ...]
    shape_mismatches: tuple[ShapeMismatch, ...]
    ambiguous: tuple[Ambiguity, ...]
    dropped: dict[str, str] = field(default_factory=dict)  # source name -> why it was left out
    warnings: tuple[str, ...] = ()
    left_out_target: tuple[str, ...] = ()  # target weights --restore keeps freshly initialised
    initialised: dict[str, str] = field(default_factory=dict)  # target -> why it is set to a constant
    summary: dict[str, int] = field(default_factory=dict)

    kind = "map"

    def __post_init__(self):
        counts = {
            "mapped": len(self.mapped), "unmapped_source": len(self.unmapped_source),
            "unmapped_target": len(self.unmapped_target), "shape_mismatches": len(self.shape_mismatches),
            "ambiguous": len(self.ambiguous), "dropped": len(self.dropped), "left_out_target": len(self.left_out_target), "initialised": len(self.initialised),
        }
        object.__setattr__(self, "summary", counts)

    @property
    def complete(self) -> bool:
        """Every target tensor has exactly one source of the right shape."""
        return not (self.unmapped_target or self.shape_mismatches or self.ambiguous)


@dataclass(frozen=True)
class LayerError:
    name: str
    max_abs: float
    max_rel: float
    # What makes the comparison worth something: how far the reference moves across the test inputs (relative
    # to its largest value; ~0: it does not depend on its input) and its share of exact zeros (dead units).
    spread: float | None = None
    zero_fraction: float | None = None


PARITY_VERDICTS = ("passed", "failed", "inconclusive")


@dataclass(frozen=True)
class ParityReport:
    reference: str  # what ran the TF1 side: "meta graph" or "slim builder"
    inputs: str
    outputs: tuple[LayerError, ...]
    layers: tuple[LayerError, ...] = ()
    threshold: float = 1e-4
    passed: bool = True
    first_divergence: str | None = None
    explanation: str | None = None
    # passed | failed | inconclusive (the outputs do not depend on the inputs: agreement proves nothing);
    # None in reports written before it existed: read from ``passed``.
    verdict: str | None = None

    def __post_init__(self):
        if self.verdict is None:
            object.__setattr__(self, "verdict", "passed" if self.passed else "failed")


@dataclass(frozen=True)
class TranslatedConfig:
    """The TF2 ``pipeline.config`` written beside a converted OD API detector, and how it was made."""

    path: str
    source: str  # the TF1 config it was translated from ("" when none was beside the checkpoint)
    changes: tuple[str, ...]  # "field: before -> after (why)"
    errors: tuple[str, ...]  # where the config and the checkpoint describe different models


@dataclass(frozen=True)
class ConvertReport:
    source: str
    output: str
    mode: str  # "generic" or the target's name
    layout: str
    mapping: MappingReport
    verified: int
    shards: dict[str, str]  # output shard file -> "linked" | "copied" | "written"
    bytes_reused: int
    bytes_written: int
    seconds: float
    parity: ParityReport | None = None
    pipeline_config: TranslatedConfig | None = None

    kind = "convert"
