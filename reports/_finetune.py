"""Typed result of ``ckpt-finetune train`` / ``eval`` and its text and Markdown rendering.

Metric values that are undefined (COCO's -1, NaN) are stored as ``None`` so
the JSON stays strict.  Long name lists arrive grouped by prefix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from tabulate import tabulate

# Metrics shown in the history table, in this order, when present (the JSON has every one).
HEADLINE = ("val_loss", "mAP", "mAP@0.5", "mAP@0.75", "accuracy", "top5_accuracy", "loss")


@dataclass(frozen=True)
class ConfigNote:
    """A finding of the pipeline.config reader (``where`` is ``file:line:col``)."""

    severity: str
    code: str
    path: str
    message: str
    where: str = ""


@dataclass(frozen=True)
class RestoreSummary:
    """Where the starting weights came from and what they covered.

    ``source`` is the fine_tune_checkpoint as configured; ``checkpoint`` what
    was restored (the conversion's output when ``converted``).  Name lists are
    grouped by prefix (``conv_dw_{1..13}/depthwise_kernel``).
    """

    source: str
    source_format: str
    checkpoint: str
    checkpoint_type: str
    converted: bool
    restored: int
    initialised: int
    unused: int = 0
    restored_names: tuple[str, ...] = ()
    initialised_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class SplitRecords:
    """What the record check found in one split (``skipped`` maps a reason to a count)."""

    split: str
    files: tuple[str, ...]
    records: int
    used: int
    skipped: dict[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    objects: int = 0
    truncated_boxes: int = 0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


@dataclass(frozen=True)
class MetricsAt:
    step: int
    metrics: dict[str, float | None]


@dataclass(frozen=True)
class BestValue:
    name: str
    value: float | None
    step: int


@dataclass(frozen=True)
class FinetuneReport:
    """One fine-tuning (or evaluation) run.  ``steps`` counts every step the model has had, resumed ones
    included; ``start_step`` is where this run began.  ``train_seconds`` is the engine's loop;
    ``seconds`` the whole run (checks, conversion, evaluation)."""

    config: str  # the pipeline.config read; "" when every setting came from flags
    model_dir: str
    task: str  # detection | classification
    mode: str  # finetune | features | domain_adversarial | eval
    backbone: str
    num_classes: int
    start_step: int
    steps: int
    seconds: float
    train_seconds: float = 0.0
    steps_per_sec: float = 0.0
    restore: RestoreSummary | None = None
    resumed_from: str | None = None
    final_losses: dict[str, float | None] = field(default_factory=dict)
    metrics_history: tuple[MetricsAt, ...] = ()
    best_metric: BestValue | None = None
    stopped_early: bool = False
    stop_reason: str | None = None
    test_split: str = ""
    test_metrics: dict[str, float | None] = field(default_factory=dict)
    records: tuple[SplitRecords, ...] = ()
    findings: tuple[ConfigNote, ...] = ()
    warnings: tuple[str, ...] = ()
    checkpoint: str | None = None
    substitutions: tuple[str, ...] = ()  # settings replaced by ckptkit's defaults on request (--substitute)
    # training curves by step (window means, at most CURVE_POINTS each): "loss/<part>" and "learning_rate"
    curves: dict[str, tuple[tuple[int, float | None], ...]] = field(default_factory=dict)

    kind = "finetune"

    @property
    def skipped_records(self) -> int:
        return sum(s.skipped_total for s in self.records)


def per_class_ap(metrics: dict) -> dict[str, float | None]:
    """``AP@0.5/<class>`` entries of a detection run's metrics, by class name."""
    return {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("AP@0.5/")}


def defined(metrics: dict) -> dict[str, float | None]:
    """``metrics`` with NaN/inf as None and numbers as floats (strict JSON)."""
    return {str(k): (float(v) if v is not None and math.isfinite(float(v)) else None) for k, v in metrics.items()}


# ----------------------------------------------------------------- rendering
def _value(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def finetune_text(r: FinetuneReport, markdown: bool) -> str:
    head, style = ("## ", "github") if markdown else ("", "simple")
    title = "Evaluation" if r.mode == "eval" else "Fine-tuning"
    out = [f"{'# ' if markdown else ''}{title}: {r.task} ({r.mode}) in {r.model_dir}",
           f"config: {r.config or '(flags only)'}   backbone: {r.backbone}   classes: {r.num_classes}"]
    if r.substitutions:
        out.append(f"substituted on request (--substitute; see the config findings): {', '.join(r.substitutions)}")
    if r.mode == "eval":
        out.append(f"checkpoint: {r.checkpoint} (step {r.steps})   time: {r.seconds:.1f} s")
    else:
        out.append(f"steps: {r.start_step} -> {r.steps}   time: {r.seconds:.1f} s (training {r.train_seconds:.1f} s, "
                   f"{r.steps_per_sec:.2f} steps/s)")
        if r.stop_reason or r.stopped_early:
            out.append(f"stopped: {r.stop_reason or 'early'}")
        if r.resumed_from:
            out.append(f"resumed from: {r.resumed_from}")
        if r.checkpoint:
            out.append(f"checkpoint: {r.checkpoint}")
        out += _restore_lines(r.restore, head, r.resumed_from)
    if r.final_losses:
        out += ["", f"{head}Final losses",
                tabulate([[k, _value(v)] for k, v in r.final_losses.items()], ["loss", "value"], tablefmt=style)]
    out += _history_lines(r, head, style)
    if r.test_metrics:
        rows = [[k, _value(v)] for k, v in r.test_metrics.items()]
        out += ["", f"{head}Test metrics ({r.test_split})", tabulate(rows, ["metric", "value"], tablefmt=style)]
    out += _records_lines(r, head, style)
    if r.findings:
        rows = [[f.severity, f.where, f.path, f.message] for f in r.findings]
        out += ["", f"{head}Config findings ({len(r.findings)})",
                tabulate(rows, ["severity", "where", "setting", "message"], tablefmt=style)]
    if r.warnings:
        out += ["", f"{head}Warnings ({len(r.warnings)})"] + [f"- {w}" for w in r.warnings]
    return "\n".join(out)


def _restore_lines(restore: RestoreSummary | None, head: str, resumed_from: str | None) -> list[str]:
    if restore is None:
        origin = "unknown (resumed; the first run's report says)" if resumed_from \
            else "random initialisation (no fine_tune_checkpoint)"
        return ["", f"{head}Starting weights", origin]
    how = f"converted ({restore.source_format}) into {restore.checkpoint}" if restore.converted \
        else f"{restore.source_format}, used as it is"
    out = ["", f"{head}Starting weights",
           f"{restore.source}: {how}; fine_tune_checkpoint_type {restore.checkpoint_type}",
           f"restored {restore.restored} variables, initialised {restore.initialised}"
           + (f", {restore.unused} checkpoint variables unused" if restore.unused else "")]
    for label, names in (("restored", restore.restored_names), ("initialised", restore.initialised_names)):
        if names:
            out.append(f"- {label}: " + "; ".join(names))
    return out


def _history_lines(r: FinetuneReport, head: str, style: str) -> list[str]:
    if not r.metrics_history:
        return []
    present = {k for m in r.metrics_history for k in m.metrics}
    columns = [k for k in HEADLINE if k in present]
    rows = [[m.step] + [_value(m.metrics.get(k)) for k in columns] for m in r.metrics_history]
    out = ["", f"{head}Validation ({len(r.metrics_history)} evaluations; the JSON holds every metric)",
           tabulate(rows, ["step", *columns], tablefmt=style, disable_numparse=True)]
    if r.best_metric is not None:
        b = r.best_metric
        out.append(f"best {b.name}: {_value(b.value)} at step {b.step}")
    return out


def _records_lines(r: FinetuneReport, head: str, style: str) -> list[str]:
    if not r.records:
        return []
    rows = [[s.split, s.records, s.used, s.skipped_total,
             ", ".join(f"{n} {code}" for code, n in sorted(s.skipped.items())), s.objects, s.truncated_boxes]
            for s in r.records]
    out = ["", f"{head}Records", tabulate(rows, ["split", "records", "used", "skipped", "why", "objects",
                                                 "boxes cut"], tablefmt=style)]
    problems = [p for s in r.records for p in s.problems]
    out += [f"- {p}" for p in problems[:10]]
    if len(problems) > 10:
        out.append(f"- ... and {len(problems) - 10} more (see the JSON)")
    return out
