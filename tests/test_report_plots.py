"""The HTML pages of the fine-tuning, transfer and quantization reports: matplotlib plots inline, real tables."""
from __future__ import annotations

import dataclasses
import re

import pytest

from reports import render
from test_reports_html import _chromium, chromium_path


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


def _transfer():
    from reports import TransferReport, TransferRun

    runs = [TransferRun(name, f"runs/{name}", test, best, 600, 200.0, 2.5, ((150, a), (300, b), (600, test)), 0,
                        ((100, 9.0 - a * 10), (300, 6.0), (600, 4.0 - a)), {"circle": a, "square": b, "triangle": test})
            for name, test, best, a, b in (("finetuned", 0.16, 0.17, 0.05, 0.12), ("random", 0.11, 0.12, 0.01, 0.07))]
    return TransferReport("pipeline.config", "legacy/model.ckpt", "detection", "mAP@0.5", "test", 600, 16, *runs)


def _quantize():
    from reports import LatencyStat, QuantizeReport, VariantResult

    def variant(name, value, kb, ms):
        return VariantResult(name, name, f"{name}.tflite", {"mAP@0.5": value}, None, kb * 1024, kb * 1024, None,
                             None, 0.0, (LatencyStat(1, 50, ms, ms * 1.1, ms),))

    return QuantizeReport("detection", "mAP@0.5", "out/quantize", "test", 100, "litert",
                          (variant("float32", 0.1091, 5200, 1.5), variant("int8", 0.1055, 1400, 0.78),
                           variant("float16", 0.1089, 2500, 1.46), variant("dynamic", 0.1049, 1400, 1.6)))


def test_the_transfer_page_puts_both_runs_on_one_validation_plot():
    svgs = _svgs(render(_transfer(), "html"))
    assert len(svgs) == 4  # training loss, validation, test metric, per-class AP of both runs
    validation = next(svg for svg in svgs if "Validation mAP@0.5" in svg)
    assert "fine-tuned (converted checkpoint)" in validation and "random initialisation" in validation


def test_the_quantize_chart_fits_its_y_axis_to_the_values_and_names_every_variant():
    page = render(_quantize(), "html")
    svg, latency = _svgs(page)
    assert "Latency vs mAP@0.5" in latency
    ticks = [float(t) for t in re.findall(r">(0\.\d+)<", svg)]
    assert ticks and max(ticks) < 0.2  # fitted to 0.10-0.11, not fixed at 0 to 1
    for label in ("float32: 0.1091", "int8: 0.1055", "float16: 0.1089", "dynamic: 0.1049"):
        assert label in svg  # a legend entry each: labels of near points cannot overlap
    assert '<table class="data">' in page and "<pre>" not in page


# In a browser: what a reader sees.  The script measures the laid-out page: no horizontal overflow, every
# plot's text inside its figure, and no two text boxes of a plot on top of each other.
CHECK = """<script>
(function () {
  const problems = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1) problems.push("page overflows");
  document.querySelectorAll("figure").forEach(function (fig, i) {
    const box = fig.getBoundingClientRect();
    const texts = Array.from(fig.querySelectorAll("svg text")).map(function (t) { return t.getBoundingClientRect(); })
      .filter(function (r) { return r.width > 0; });
    texts.forEach(function (r) { if (r.left < box.left - 1 || r.right > box.right + 1) problems.push("figure " + i + ": text outside"); });
    for (let a = 0; a < texts.length; a++) for (let b = a + 1; b < texts.length; b++) {
      const p = texts[a], q = texts[b];
      if (p.left < q.right - 1 && q.left < p.right - 1 && p.top < q.bottom - 1 && q.top < p.bottom - 1)
        problems.push("figure " + i + ": text overlaps");
    }
  });
  document.body.setAttribute("data-check", problems.length ? problems.join("; ") : "ok");
})();
</script>"""


@pytest.mark.parametrize("kind", ["finetune", "transfer", "quantize"])
def test_each_page_in_chromium_has_no_overflow_and_no_overlapping_labels(kind, tmp_path):
    chromium = chromium_path()
    report = {"finetune": _finetune, "transfer": _transfer, "quantize": _quantize}[kind]()
    page = tmp_path / f"{kind}-report.html"
    page.write_text(render(report, "html").replace("</body>", CHECK + "</body>"), encoding="utf-8")
    dom = _chromium(chromium, tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()).stdout.decode()
    assert "<svg" in dom and 'data-check="ok"' in dom, re.search(r'data-check="([^"]*)"', dom)


def test_the_browser_check_catches_overlapping_labels(tmp_path):
    chromium = chromium_path()
    page = tmp_path / "overlap.html"
    page.write_text('<!DOCTYPE html><html><body><figure><svg width="200" height="80"><text x="10" y="20">label one'
                    '</text><text x="14" y="24">label two</text></svg></figure>' + CHECK + "</body></html>")
    dom = _chromium(chromium, tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()).stdout.decode()
    assert 'data-check="figure 0: text overlaps"' in dom
