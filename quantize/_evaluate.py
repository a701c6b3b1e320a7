"""``evaluate``: every exported ``.tflite`` on the test split, sizes, sparsity and latency, as a QuantizeReport.

The reference is the float32 ``.tflite`` (drops and ratios are against it); each drop is also given against
the float model scored by TensorFlow before export (``drop_vs_tensorflow``), which shows what export costs.
Latency: median and p90 per image over ``runs`` (>= 50) timed invocations
after warm-up, once per thread count (default 1 and 2), each in a fresh
interpreter.  The report is written as ``quantize-report.json`` / ``.md`` /
``.html`` (with the size-vs-accuracy chart) into the export directory.
"""
from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np

from reports import render
from reports.console import progress
from reports import LatencyStat, LayerSparsityRow, QuantizeReport, VariantResult

from . import _latency
from ._errors import QuantizeError
from ._export import read_manifest
from ._interpreter import Runner, interpreter_class

REPORT = "quantize-report"


def gzipped_size(path: Path) -> int:
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))


def evaluate(task, export_dir, *, split: str = "test", runs: int = _latency.MIN_RUNS, threads=(1, 2),
             backend: str | None = None, write: bool = True) -> QuantizeReport:
    """Score, size and time every variant in ``export_dir``; write the report there unless ``write=False``."""
    started = time.perf_counter()
    export_dir = Path(export_dir)
    if runs < _latency.MIN_RUNS:
        raise QuantizeError(f"latency runs {runs}: the report needs at least {_latency.MIN_RUNS} per variant")
    manifest = read_manifest(export_dir)
    if manifest.get("task") != task.kind:
        raise QuantizeError(f"{export_dir}: exported for task {manifest.get('task')!r}, evaluated as {task.kind!r}")
    sample = np.zeros((1, *task.image_size, 3), np.float32)
    for image in task.representative_images(1):
        sample = np.asarray(image, np.float32)
    rows, examples = [], 0
    for entry in progress(len(manifest["variants"]), "evaluate", "variant", iterable=manifest["variants"]):
        path = export_dir / entry["file"]
        metrics = task.evaluate_variant(Runner(path, num_threads=max(threads), backend=backend), split)
        examples = int(metrics.get("examples", examples))
        latency = tuple(_latency.measure(path, sample, threads=t, runs=runs, backend=backend) for t in threads)
        rows.append((entry, path, metrics, latency))
    in_tensorflow = task.evaluate_keras(task.float_model(), split)
    reference = next((r for r in rows if r[0]["name"] == "float32"), None)
    variants = tuple(_result(task.metric, entry, path, metrics, latency, reference, in_tensorflow.get(task.metric))
                     for entry, path, metrics, latency in rows)
    report = QuantizeReport(task.kind, task.metric, str(export_dir), split, examples, interpreter_class(backend)[1],
                            variants, "float32" if reference else "", manifest.get("saved_model", ""),
                            round(time.perf_counter() - started, 2),
                            () if reference else ("no float32 variant: drops and ratios are not available",),
                            {k: (None if v is None else float(v)) for k, v in in_tensorflow.items()})
    if write:
        write_report(report, export_dir / REPORT)
    return report


def _result(metric, entry, path, metrics, latency, reference, in_tensorflow) -> VariantResult:
    size, packed = path.stat().st_size, gzipped_size(path)
    value = metrics.get(metric)
    against_tf = None if value is None or in_tensorflow is None else round(100.0 * (in_tensorflow - value), 4)
    stats = tuple(LatencyStat(s.threads, s.runs, s.median_ms, s.p90_ms, s.mean_ms) for s in latency)
    drop = size_ratio = gzip_ratio = None
    latency_ratio = {}
    if reference is not None:
        ref_entry, ref_path, ref_metrics, ref_latency = reference
        if metrics.get(metric) is not None and ref_metrics.get(metric) is not None:
            drop = round(100.0 * (ref_metrics[metric] - metrics[metric]), 4)
        size_ratio = round(size / ref_path.stat().st_size, 4)
        gzip_ratio = round(packed / gzipped_size(ref_path), 4)
        latency_ratio = {str(s.threads): round(s.median_ms / r.median_ms, 4) if r.median_ms else None
                         for s, r in zip(latency, ref_latency)}
    layers = tuple(LayerSparsityRow(**row) for row in entry.get("layers", ()))
    return VariantResult(entry["name"], entry["method"], entry["file"],
                         {k: (None if v is None else float(v)) for k, v in metrics.items()}, drop, size, packed,
                         size_ratio, gzip_ratio, float(entry.get("sparsity", 0.0)), stats, latency_ratio,
                         entry.get("input_type", "float32"), entry.get("output_type", "float32"), layers,
                         tuple(tuple(x) for x in entry.get("unsupported_layers", ())), against_tf)


def write_report(report: QuantizeReport, stem: Path) -> None:
    """JSON, Markdown and HTML side by side, each written to a temporary name and renamed."""
    for suffix, fmt in ((".json", "json"), (".md", "markdown"), (".html", "html")):
        target = stem.with_suffix(suffix)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(render(report, fmt) + "\n", errors="backslashreplace")
        tmp.replace(target)
