"""Typed result of ``ckpt-quantize eval``: every exported variant against the float32 ``.tflite``.

Drops are in points (100 x the metric fraction) against the float32 variant;
ratios are variant / float32 (size, gzipped size, median latency per thread
count).  The HTML page plots size against the headline metric (``_report_plots``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tabulate import tabulate

from ._format import human_bytes


@dataclass(frozen=True)
class LatencyStat:
    threads: int
    runs: int
    median_ms: float
    p90_ms: float
    mean_ms: float = 0.0


@dataclass(frozen=True)
class LayerSparsityRow:
    layer: str
    kind: str
    weights: int
    zeros: int
    sparsity: float
    target: float | None = None
    m_by_n: bool | None = None


@dataclass(frozen=True)
class VariantResult:
    name: str  # float32, dynamic, int8, float16, pruned, pruned_int8, qat_int8, prune_qat_int8
    method: str  # one line: how it was made
    file: str
    metrics: dict[str, float | None]
    drop_points: float | None  # headline metric, float32 minus this variant, in points
    size_bytes: int
    gzip_bytes: int
    size_ratio: float | None  # / float32
    gzip_ratio: float | None
    sparsity: float  # measured zero fraction of the prunable kernels of the model it came from
    latency: tuple[LatencyStat, ...] = ()
    latency_ratio: dict[str, float | None] = field(default_factory=dict)  # threads -> median / float32 median
    input_type: str = "float32"
    output_type: str = "float32"
    layers: tuple[LayerSparsityRow, ...] = ()  # pruned variants: measured per layer
    unsupported_layers: tuple[tuple[str, str], ...] = ()  # QAT: (layer, reason) left float
    drop_vs_tensorflow: float | None = None  # headline metric, the float model in TensorFlow minus this, in points


@dataclass(frozen=True)
class QuantizeReport:
    task: str
    metric: str
    export_dir: str
    split: str
    examples: int
    interpreter: str  # litert | tf.lite
    variants: tuple[VariantResult, ...]
    reference: str = "float32"
    saved_model: str = ""
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    # the float model scored by TensorFlow before export: a gap to the float32 .tflite is the export's
    # (detection: TFLite's fast NMS against per-class NMS), not quantization's
    tensorflow_metrics: dict[str, float | None] = field(default_factory=dict)

    kind = "quantize"

    def variant(self, name: str) -> VariantResult:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"no variant {name!r}; this report has {', '.join(v.name for v in self.variants)}")


# ----------------------------------------------------------------- rendering
def _f(value, fmt="{:.3g}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _latency(v: VariantResult, threads: int) -> str:
    for stat in v.latency:
        if stat.threads == threads:
            return f"{stat.median_ms:.3g} / {stat.p90_ms:.3g}"
    return "n/a"


def quantize_text(r: QuantizeReport, markdown: bool) -> str:
    head, style = ("## ", "github") if markdown else ("", "simple")
    threads = sorted({s.threads for v in r.variants for s in v.latency})
    out = [f"{'# ' if markdown else ''}Quantization: {r.task} variants in {r.export_dir}",
           f"split: {r.split} ({r.examples} examples)   metric: {r.metric}   reference: {r.reference}   "
           f"interpreter: {r.interpreter}   time: {r.seconds:.1f} s"]
    if r.saved_model:
        out.append(f"SavedModel: {r.saved_model}")
    if r.tensorflow_metrics.get(r.metric) is not None:
        out.append(f"the float model in TensorFlow, before export: {r.metric} {r.tensorflow_metrics[r.metric]:.4f}")
    header = ["variant", r.metric, "drop vs TF (pts)", f"drop vs {r.reference or 'float32'} (pts)", "size",
              "gzipped", "size x", "gzip x", "sparsity",
              *[f"{t} thr ms med/p90" for t in threads], *[f"lat x ({t} thr)" for t in threads], "I/O"]
    rows = [[v.name, _f(v.metrics.get(r.metric), "{:.4f}"), _f(v.drop_vs_tensorflow, "{:+.2f}"),
             _f(v.drop_points, "{:+.2f}"), human_bytes(v.size_bytes),
             human_bytes(v.gzip_bytes), _f(v.size_ratio), _f(v.gzip_ratio), f"{v.sparsity:.1%}",
             *[_latency(v, t) for t in threads], *[_f(v.latency_ratio.get(str(t))) for t in threads],
             f"{v.input_type}/{v.output_type}"] for v in r.variants]
    out += ["", f"{head}Variants", tabulate(rows, header, tablefmt=style, disable_numparse=True)]
    out += ["", "How each was made:"] + [f"- {v.name}: {v.method}" for v in r.variants]
    for v in r.variants:
        if v.layers:
            rows = [[row.layer, row.kind, row.weights, f"{row.sparsity:.1%}", _f(row.target, "{:.0%}"),
                     "" if row.m_by_n is None else ("yes" if row.m_by_n else "NO")] for row in v.layers]
            out += ["", f"{head}Measured sparsity per layer: {v.name}",
                    tabulate(rows, ["layer", "kind", "weights", "sparsity", "target", "m:n"], tablefmt=style,
                             disable_numparse=True)]
        if v.unsupported_layers:
            out += ["", f"{head}Layers left float by QAT: {v.name} ({len(v.unsupported_layers)})"]
            out += [f"- {name}: {reason}" for name, reason in v.unsupported_layers]
    if r.warnings:
        out += ["", f"{head}Warnings ({len(r.warnings)})"] + [f"- {w}" for w in r.warnings]
    return "\n".join(out)
