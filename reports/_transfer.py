"""Typed result of ``ckpt-finetune transfer``: the same training from the converted checkpoint and from
random initialisation, side by side, and its text and Markdown rendering.

The question it answers is the one the migration exists for: does the old
checkpoint still carry knowledge the new model can use?  ``gain`` is the
fine-tuned run's test metric minus the random run's, in metric units.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tabulate import tabulate

from ._finetune import FinetuneReport, per_class_ap


@dataclass(frozen=True)
class TransferRun:
    """One side of the comparison: a summary, and the full report of the run."""

    name: str  # "finetuned" | "random"
    model_dir: str
    test_metric: float | None
    best_validation: float | None
    best_validation_step: int | None
    train_seconds: float
    steps_per_sec: float
    validation: tuple[tuple[int, float | None], ...] = ()
    restored: int = 0
    training_loss: tuple[tuple[int, float | None], ...] = ()  # total loss by step (the run's curve)
    per_class: dict[str, float | None] = field(default_factory=dict)  # test AP@0.5 by class (detection)

    @classmethod
    def of(cls, name: str, report: FinetuneReport, metric: str) -> TransferRun:
        best = report.best_metric
        curve = tuple((m.step, m.metrics.get(metric)) for m in report.metrics_history)
        return cls(name, report.model_dir, report.test_metrics.get(metric),
                   best.value if best else None, best.step if best else None, report.train_seconds,
                   report.steps_per_sec, curve, report.restore.restored if report.restore else 0,
                   tuple(report.curves.get("loss/total", ())), per_class_ap(report.test_metrics))


@dataclass(frozen=True)
class TransferReport:
    """Fine-tuned from ``source`` against random initialisation, same config, steps, batch and seed."""

    config: str
    source: str
    task: str
    metric: str  # "mAP@0.5" for detection, "accuracy" for classification
    test_split: str
    steps: int
    batch_size: int
    finetuned: TransferRun
    random: TransferRun
    budget_seconds: float | None = None  # a training-time budget to report against: shown, never a failure
    target: float | None = None  # the test metric the fine-tuned run must reach, when one was set
    notes: tuple[str, ...] = field(default_factory=tuple)

    # Derived, in the JSON for scripts (recomputed on load): the gain and the checks.
    gain: float | None = field(init=False)
    beats_random: bool = field(init=False)
    within_budget: bool | None = field(init=False)
    reaches_target: bool | None = field(init=False)
    passed: bool = field(init=False)

    kind = "transfer"

    def __post_init__(self):
        a, b = self.finetuned.test_metric, self.random.test_metric
        gain = None if a is None or b is None else a - b
        budget = None if self.budget_seconds is None else self.finetuned.train_seconds <= self.budget_seconds
        target = None if self.target is None else a is not None and a >= self.target
        beats = gain is not None and gain > 0
        # Wall-clock time depends on the machine's load, not on the result: reported beside the checks only.
        passed = beats and target is not False
        derived = {"gain": gain, "beats_random": beats, "within_budget": budget, "reaches_target": target,
                   "passed": passed}
        for name, value in derived.items():
            object.__setattr__(self, name, value)


def _value(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _verdict(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def transfer_text(r: TransferReport, markdown: bool) -> str:
    head, style = ("## ", "github") if markdown else ("", "simple")
    title = f"{'# ' if markdown else ''}Transfer: {r.task} fine-tuned from {r.source} vs random initialisation"
    lines = [title, f"config: {r.config or '(flags)'}   steps: {r.steps}   batch: {r.batch_size}   "
                    f"metric: {r.metric} on {r.test_split or 'the validation split'}", ""]
    rows = [[run.name, _value(run.test_metric), _value(run.best_validation), run.best_validation_step,
             f"{run.train_seconds:.0f}", f"{run.steps_per_sec:.2f}", run.restored]
            for run in (r.finetuned, r.random)]
    headers = ["run", f"test {r.metric}", f"best val {r.metric}", "at step", "train s", "steps/s", "restored"]
    lines += [tabulate(rows, headers, tablefmt=style), ""]
    checks = [["fine-tuned beats random", f"gain {_value(r.gain)}", _verdict(r.beats_random)]]
    if r.budget_seconds is not None:
        checks.append([f"trained within {r.budget_seconds:.0f} s (reported, not a check)",
                       f"{r.finetuned.train_seconds:.0f} s", _verdict(r.within_budget)])
    if r.target is not None:
        checks.append([f"test {r.metric} >= {r.target:g}", _value(r.finetuned.test_metric),
                       _verdict(r.reaches_target)])
    lines += [f"{head}Checks", tabulate(checks, ["check", "measured", "met"], tablefmt=style), ""]
    curve = _curves(r)
    if curve:
        lines += [f"{head}Validation {r.metric}", tabulate(curve, ["step", "fine-tuned", "random"], tablefmt=style),
                  ""]
    lines += [f"- {note}" for note in r.notes]
    return "\n".join(lines).rstrip() + "\n"


def _curves(r: TransferReport) -> list[list]:
    random = dict(r.random.validation)
    return [[step, _value(value), _value(random.get(step))] for step, value in r.finetuned.validation]
