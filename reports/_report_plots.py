"""Which plots each report's HTML page shows (the data comes from the typed report; matplotlib draws it)."""
from __future__ import annotations

from ._finetune import per_class_ap
from ._plots import bar_chart, grouped_bars, labelled_scatter, line_chart


def figures(report) -> list[str]:
    """The ``<svg>`` plots for ``report``'s page, in order; none for kinds without plots."""
    plots = {"finetune": _finetune, "transfer": _transfer, "quantize": _quantize}.get(report.kind)
    return plots(report) if plots else []


def _metric(report) -> str:
    return "mAP@0.5" if report.task == "detection" else "accuracy"


def _finetune(r) -> list[str]:
    out = []
    losses = {name.removeprefix("loss/"): points for name, points in r.curves.items() if name.startswith("loss/")}
    if losses:
        out.append(line_chart(losses, "Training losses", "step", "loss"))
    if r.curves.get("learning_rate"):
        out.append(line_chart({"learning rate": r.curves["learning_rate"]}, "Learning rate", "step", "learning rate"))
    metric = _metric(r)
    history = [(m.step, m.metrics.get(metric)) for m in r.metrics_history]
    if history:
        out.append(line_chart({metric: history}, f"Validation {metric}", "step", metric))
    per_class = per_class_ap(r.test_metrics)
    if per_class:
        out.append(bar_chart(per_class, f"AP@0.5 per class ({r.test_split})", "AP@0.5"))
    return out


def _transfer(r) -> list[str]:
    names = {"fine-tuned (converted checkpoint)": r.finetuned, "random initialisation": r.random}
    out = []
    if any(run.training_loss for run in names.values()):
        out.append(line_chart({k: list(run.training_loss) for k, run in names.items()}, "Training loss (total)",
                              "step", "loss"))
    if any(run.validation for run in names.values()):
        out.append(line_chart({k: list(run.validation) for k, run in names.items()}, f"Validation {r.metric}",
                              "step", r.metric))
    out.append(bar_chart({"fine-tuned": r.finetuned.test_metric, "random": r.random.test_metric},
                         f"Test {r.metric} ({r.test_split})", r.metric))
    if r.finetuned.per_class or r.random.per_class:
        out.append(grouped_bars({k: run.per_class for k, run in names.items()}, f"AP@0.5 per class ({r.test_split})",
                                "AP@0.5"))
    return out


def _quantize(r) -> list[str]:
    sizes = [(v.name, v.gzip_bytes / 1024, v.metrics.get(r.metric)) for v in r.variants]
    out = [labelled_scatter(sizes, f"Gzipped size vs {r.metric}", "gzipped size (KB)", r.metric)]
    latency = [(v.name, stat.median_ms, v.metrics.get(r.metric)) for v in r.variants for stat in v.latency[:1]]
    if latency:
        threads = r.variants[0].latency[0].threads
        out.append(labelled_scatter(latency, f"Latency vs {r.metric}", f"median latency, {threads} thread(s) (ms)",
                                    r.metric))
    return out
