"""Typed results of ``ckpt-migrate inspect``."""
from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True)
class TensorStats:
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    nan: int
    inf: int
    zero_fraction: float


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    role: str
    bytes: int
    optimizer: str | None = None
    stats: TensorStats | None = None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class Finding:
    severity: str  # info | warning | error
    code: str
    message: str
    tensor: str | None = None


@dataclass(frozen=True)
class ArchitectureGuess:
    name: str
    confidence: float
    evidence: tuple[str, ...] = ()
    params: dict[str, int] = field(default_factory=dict)


UNKNOWN = ArchitectureGuess("unknown", 0.0, ("no known architecture signature matched",))


@dataclass(frozen=True)
class RoleTotal:
    tensors: int
    elements: int
    bytes: int


@dataclass(frozen=True)
class Totals:
    tensors: int
    parameters: int  # elements of model weights: parameters + normalisation statistics
    bytes: int
    by_role: dict[str, RoleTotal]


@dataclass(frozen=True)
class InspectReport:
    path: str
    format: str
    files: tuple[str, ...]
    tensors: tuple[TensorInfo, ...]
    totals: Totals
    architecture: ArchitectureGuess
    findings: tuple[Finding, ...] = ()

    kind = "inspect"

    @property
    def worst_severity(self) -> str | None:
        levels = [SEVERITIES.index(f.severity) for f in self.findings]
        return SEVERITIES[max(levels)] if levels else None


def totals_of(tensors) -> Totals:
    """Totals and per-role breakdown of a list of TensorInfo."""
    by_role: dict[str, list[int]] = {}
    for t in tensors:
        acc = by_role.setdefault(t.role, [0, 0, 0])
        acc[0] += 1
        acc[1] += t.size
        acc[2] += t.bytes
    roles = {role: RoleTotal(*acc) for role, acc in sorted(by_role.items())}
    weights = sum(roles[r].elements for r in ("parameter", "normalization_statistic") if r in roles)
    return Totals(len(tensors), weights, sum(t.bytes for t in tensors), roles)
