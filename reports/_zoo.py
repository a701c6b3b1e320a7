"""Typed result of ``ckpt-migrate zoo``: one row per checkpoint, totals and breakdowns."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

STATUSES = ("converted", "failed")
REUSED = "reused"  # ZooRow.this_run of an entry finished by an earlier run and not redone


@dataclass(frozen=True)
class ZooRow:
    source: str  # path relative to the zoo directory
    output: str | None  # path relative to the output directory
    status: str  # converted | failed: the entry's result, whichever run reached it
    format: str | None = None
    architecture: str | None = None
    parameters: int | None = None
    bytes: int | None = None
    target: str | None = None  # "generic", keras:..., module:...
    mapped: int | None = None
    unmapped: int | None = None  # unmapped source + unmapped target
    mismatched: int | None = None  # shape mismatches + ambiguous
    parity_max_rel: float | None = None  # None: parity not run
    parity_passed: bool | None = None
    seconds: float = 0.0
    reason: str | None = None  # why it failed (one line)
    reason_kind: str | None = None  # the error class, for the breakdown
    finished: str | None = None  # ISO-8601 UTC time the status was reached; None: not recorded (older runs)
    this_run: str | None = None  # converted | failed: done by this run; "reused": kept from an earlier run
    parity_verdict: str | None = None  # passed | failed | inconclusive (ParityReport.verdict); None: not run
    fallback: str | None = None  # converted generically: why the architecture's model target was not used
    cpu_seconds: float | None = None  # the worker's CPU time for this entry, all its threads; None: not recorded

    def __post_init__(self):
        if self.parity_verdict is None and self.parity_passed is not None:  # reports before the verdict existed
            object.__setattr__(self, "parity_verdict", "passed" if self.parity_passed else "failed")
        # Reports before ``this_run`` existed wrote "skipped" for an entry converted by an earlier run
        # (only converted entries were ever reused): read it as what it was.
        if self.status == "skipped":
            object.__setattr__(self, "status", "converted")
            object.__setattr__(self, "this_run", REUSED)

    def target_text(self) -> str:
        """The target column: what it was converted into, and why not the model target when it fell back."""
        return f"{self.target} ({self.fallback})" if self.fallback and self.target else self.target or ""

    def parity_text(self) -> str:
        """The parity column: the worst relative error and, unless it passed, the verdict."""
        text = "" if self.parity_max_rel is None else f"{self.parity_max_rel:.3g}"
        if self.parity_verdict in ("failed", "inconclusive"):
            text += " FAIL" if self.parity_verdict == "failed" else " INCONCLUSIVE"
        return text.strip()

    def reused(self) -> ZooRow:
        """This row as a later run reports it: the same status and finish time, marked as not redone."""
        return replace(self, this_run=REUSED)


@dataclass(frozen=True)
class ZooReport:
    source: str
    output: str
    rows: tuple[ZooRow, ...]
    jobs: int
    seconds: float
    totals: dict[str, int] = field(default_factory=dict)
    by_architecture: dict[str, dict[str, int]] = field(default_factory=dict)
    by_failure: dict[str, int] = field(default_factory=dict)
    reused: int = 0  # entries finished by earlier runs and kept as they were (counted in totals by status)
    engine: str = "local"  # what ran the conversions: local (a process pool) or ray (Ray tasks)

    kind = "zoo"

    def __post_init__(self):
        statuses = Counter(r.status for r in self.rows)
        totals = {"checkpoints": len(self.rows), **{s: statuses.get(s, 0) for s in STATUSES},
                  "bytes": sum(r.bytes or 0 for r in self.rows),
                  "parameters": sum(r.parameters or 0 for r in self.rows)}
        by_arch: dict[str, Counter] = {}
        for r in self.rows:
            by_arch.setdefault(r.architecture or "unknown", Counter())[r.status] += 1
        object.__setattr__(self, "totals", totals)
        object.__setattr__(self, "reused", sum(r.this_run == REUSED for r in self.rows))
        object.__setattr__(self, "by_architecture", {a: dict(c) for a, c in sorted(by_arch.items())})
        object.__setattr__(self, "by_failure", dict(Counter(r.reason_kind or "error" for r in self.rows
                                                            if r.status == "failed").most_common()))
