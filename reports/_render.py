"""Render any report as JSON, a terminal table or Markdown."""
from __future__ import annotations

import dataclasses
import json

from tabulate import tabulate

from ._format import human_bytes, human_count, number, shape_text
from ._convert import ConvertReport, MappingReport
from ._inspect import InspectReport
from ._render_convert import convert_text, mapping_text
from ._tree import scope_tree, walk

FORMATS = ("table", "markdown", "json")


def to_data(report) -> dict:
    """The report as plain JSON-able data (the contract for scripts)."""
    data = _plain(dataclasses.asdict(report))
    for tensor in data.get("tensors", []):
        if tensor.get("stats") is None:
            tensor.pop("stats", None)
    return data


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def render(report, fmt: str = "table", depth: int = 2) -> str:
    if fmt == "json":
        return json.dumps(to_data(report), indent=2, allow_nan=False, default=str)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    markdown = fmt == "markdown"
    if isinstance(report, InspectReport):
        return _inspect_text(report, markdown=markdown, depth=depth)
    if isinstance(report, MappingReport):
        return mapping_text(report, markdown)
    if isinstance(report, ConvertReport):
        return convert_text(report, markdown)
    raise TypeError(f"no {fmt} renderer for {type(report).__name__}")


def _inspect_text(r: InspectReport, markdown: bool, depth: int) -> str:
    style = "github" if markdown else "simple"
    head = "## " if markdown else ""
    t = r.totals
    out = [
        f"{'# ' if markdown else ''}Checkpoint {r.path}",
        f"format: {r.format}   tensors: {t.tensors}   parameters: {human_count(t.parameters)} ({t.parameters})   bytes: {human_bytes(t.bytes)}",
        f"architecture: {r.architecture.name} (confidence {r.architecture.confidence:.2f})"
        + "".join(f"  {k}={v}" for k, v in r.architecture.params.items()),
    ]
    out += [f"  - {e}" for e in r.architecture.evidence]
    roles = [[role, rt.tensors, human_count(rt.elements), human_bytes(rt.bytes)] for role, rt in t.by_role.items()]
    out += ["", f"{head}By role", tabulate(roles, ["role", "tensors", "elements", "bytes"], tablefmt=style)]
    out += ["", f"{head}Scopes (depth {depth})", _scopes(r, depth, style)]
    out += ["", f"{head}Tensors", _tensor_table(r, style)]
    if r.findings:
        rows = [[f.severity, f.code, f.message] for f in r.findings]
        out += ["", f"{head}Findings", tabulate(rows, ["severity", "code", "message"], tablefmt=style)]
    return "\n".join(out)


def _scopes(r: InspectReport, depth: int, style: str) -> str:
    rows = [["  " * level + node.name + "/", node.tensors, human_count(node.elements), human_bytes(node.bytes)]
            for level, node in walk(scope_tree(r.tensors, depth))]
    return tabulate(rows, ["scope", "tensors", "elements", "bytes"], tablefmt=style, colalign=("left",))


def _tensor_table(r: InspectReport, style: str) -> str:
    with_stats = any(t.stats for t in r.tensors)
    headers = ["name", "shape", "dtype", "role", "bytes"] + (["min", "max", "mean", "std", "nan", "inf", "zeros"] if with_stats else [])
    rows = []
    for t in r.tensors:
        role = f"{t.role} ({t.optimizer})" if t.optimizer else t.role
        row = [t.name, shape_text(t.shape), t.dtype, role, t.bytes]
        if with_stats:
            s = t.stats
            row += [number(s.min), number(s.max), number(s.mean), number(s.std), s.nan, s.inf, f"{s.zero_fraction:.0%}"] if s else [""] * 7
        rows.append(row)
    return tabulate(rows, headers, tablefmt=style, disable_numparse=True)
