"""The HTML pages of the fine-tuning, transfer and quantization reports: matplotlib plots inline, real tables."""
from __future__ import annotations

import dataclasses
import re

from reports import render


def _finetune():
    from test_report_cli import finetune_report

    report = finetune_report()
    history = (type(report.metrics_history[0])(20, {"mAP@0.5": 0.31}),
               type(report.metrics_history[0])(40, {"mAP@0.5": 0.52}))
    return dataclasses.replace(
        report, metrics_history=history,
        test_metrics={"mAP@0.5": 0.5, "AP@0.5/circle": 0.61, "AP@0.5/square": 0.42, "AP@0.5/triangle": 0.47},
        curves={"loss/total": ((10, 4.1), (20, 3.0), (30, 2.5), (40, 2.2)),
                "loss/localization": ((10, 1.4), (20, 1.1), (30, 0.9), (40, 0.8)),
                "learning_rate": ((10, 0.004), (20, 0.008), (30, 0.006), (40, 0.002))})


def _svgs(page: str) -> list[str]:
    return re.findall(r"<figure><svg.*?</svg>\s*</figure>", page, flags=re.S)


def test_the_finetune_page_plots_losses_learning_rate_validation_and_per_class_ap():
    page = render(_finetune(), "html")
    svgs = _svgs(page)
    assert len(svgs) == 4
    for title in ("Training losses", "Learning rate", "Validation mAP@0.5", "AP@0.5 per class (test)"):
        assert sum(title in svg for svg in svgs) == 1, title  # text stays text in the SVG
    assert all(name in svgs[3] for name in ("circle", "square", "triangle"))
    assert "<pre>" not in page and '<table class="data">' in page  # tables as tables, not Markdown text
    assert "<script src" not in page and "http" not in page.split("<footer>")[0].replace("http://www.w3.org", "")


def test_the_same_report_renders_the_same_page():
    assert render(_finetune(), "html") == render(_finetune(), "html")


def test_the_transfer_page_puts_both_runs_on_one_validation_plot():
    from reports import TransferReport, TransferRun

    runs = [TransferRun(name, f"runs/{name}", test, best, 600, 200.0, 2.5, ((150, a), (300, b), (600, test)))
            for name, test, best, a, b in (("finetuned", 0.16, 0.17, 0.05, 0.12), ("random", 0.11, 0.12, 0.01, 0.07))]
    report = TransferReport("pipeline.config", "legacy/model.ckpt", "detection", "mAP@0.5", "test", 600, 16, *runs)
    svgs = _svgs(render(report, "html"))
    validation = next(svg for svg in svgs if "Validation mAP@0.5" in svg)
    assert "fine-tuned (converted checkpoint)" in validation and "random initialisation" in validation


def test_the_quantize_chart_fits_its_y_axis_to_the_values_and_names_every_variant():
    from reports import QuantizeReport, VariantResult

    def variant(name, value, kb):
        return VariantResult(name, name, f"{name}.tflite", {"mAP@0.5": value}, None, kb * 1024, kb * 1024, None,
                             None, 0.0)

    report = QuantizeReport("detection", "mAP@0.5", "out/quantize", "test", 100, "litert",
                            (variant("float32", 0.1091, 5200), variant("int8", 0.1055, 1400),
                             variant("float16", 0.1089, 2500), variant("dynamic", 0.1049, 1400)))
    page = render(report, "html")
    [svg] = _svgs(page)
    ticks = [float(t) for t in re.findall(r">(0\.\d+)<", svg)]
    assert ticks and max(ticks) < 0.2  # fitted to 0.10-0.11, not fixed at 0 to 1
    for label in ("float32: 0.1091", "int8: 0.1055", "float16: 0.1089", "dynamic: 0.1049"):
        assert label in svg  # a legend entry each: labels of near points cannot overlap
    assert '<table class="data">' in page and "<pre>" not in page
