"""Render any report as JSON, a terminal table or Markdown (HTML: ``_html``, reached through ``render``)."""
from __future__ import annotations

import dataclasses
import json

from tabulate import tabulate

from ._diff import CATEGORIES, ReportDiff
from ._finetune import finetune_text
from ._format import human_bytes, human_count, number, shape_text
from ._inspect import InspectReport
from ._transfer import transfer_text
from ._export import export_text
from ._validate import validate_text
from ._quantize import quantize_text
from ._render_convert import convert_text, mapping_text
from ._tree import scope_tree, walk
from ._zoo import REUSED, STATUSES, ZooReport, ZooRow

FORMATS = ("text", "markdown", "json")  # and "html"; "table" is the old name of "text"

# Report kind -> text/Markdown renderer.  A new kind adds one line here (and joins
# _load._BUILT_IN); its HTML page falls back to this Markdown.
_TEXT = {
    "inspect": lambda r, markdown, depth: _inspect_text(r, markdown=markdown, depth=depth),
    "map": lambda r, markdown, depth: mapping_text(r, markdown),
    "convert": lambda r, markdown, depth: convert_text(r, markdown),
    "zoo": lambda r, markdown, depth: zoo_text(r, markdown),
    "diff": lambda r, markdown, depth: diff_text(r, markdown),
    "finetune": lambda r, markdown, depth: finetune_text(r, markdown),
    "quantize": lambda r, markdown, depth: quantize_text(r, markdown),
    "transfer": lambda r, markdown, depth: transfer_text(r, markdown),
    "validate": lambda r, markdown, depth: validate_text(r, markdown),
    "export": lambda r, markdown, depth: export_text(r, markdown),
}


def to_data(report) -> dict:
    """The report as plain JSON-able data (the contract for scripts), led by its ``"kind"``."""
    kind = getattr(type(report), "kind", None)
    data = ({"kind": kind} if isinstance(kind, str) else {}) | _plain(dataclasses.asdict(report))
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


def render(report, fmt: str = "text", depth: int = 2) -> str:
    """``fmt``: one of FORMATS, or "html" (a self-contained page)."""
    fmt = "text" if fmt == "table" else fmt
    if fmt == "json":
        return json.dumps(to_data(report), indent=2, allow_nan=False, default=str)
    if fmt == "html":
        from ._html import render_html  # noqa: PLC0415 - _html renders Markdown through this module

        return render_html(report)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)} or html")
    renderer = _TEXT.get(getattr(type(report), "kind", None))
    if renderer is None:
        raise TypeError(f"no {fmt} renderer for {type(report).__name__}; known report kinds: {', '.join(_TEXT)}")
    return renderer(report, fmt == "markdown", depth)


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


# -- zoo: the compatibility report of a batch conversion ---------------------------------------------------

ZOO_COLUMNS = ("source", "format", "architecture", "parameters", "size", "target", "mapped", "unmapped",
               "mismatched", "parity error", "time", "status", "this run", "reason")


def zoo_text(r: ZooReport, markdown: bool) -> str:
    head, style = ("## ", "github") if markdown else ("", "simple")
    t = r.totals
    out = [f"{'# ' if markdown else ''}Zoo {r.source} -> {r.output}",
           f"checkpoints: {t['checkpoints']}   " + "   ".join(f"{s}: {t[s]}" for s in STATUSES)
           + f"   reused from earlier runs: {r.reused}"
           + f"   parameters: {human_count(t['parameters'])}   size: {human_bytes(t['bytes'])}"
           + f"   time: {r.seconds:.1f} s ({r.jobs} job{'s' if r.jobs != 1 else ''})"]
    if r.by_architecture:
        rows = [[_cell(a, markdown), *(c.get(s, 0) for s in STATUSES), sum(c.values())] for a, c in r.by_architecture.items()]
        out += ["", f"{head}By architecture", tabulate(rows, ["architecture", *STATUSES, "total"], tablefmt=style)]
    if r.by_failure:
        rows = [[_cell(k, markdown), n] for k, n in r.by_failure.items()]
        out += ["", f"{head}Failures by reason", tabulate(rows, ["reason", "checkpoints"], tablefmt=style)]
    rows = [[_cell(c, markdown, limit=0 if markdown else 100) for c in zoo_cells(row)] for row in r.rows]
    out += ["", f"{head}Checkpoints ({len(r.rows)})",
            tabulate(rows, ZOO_COLUMNS, tablefmt=style, disable_numparse=True) if rows else "(none)"]
    return "\n".join(out)


def zoo_cells(row: ZooRow) -> list[str]:
    """One row of the checkpoint table as display text, in ZOO_COLUMNS order."""
    parity = row.parity_text()
    return [row.source, row.format or "", row.architecture or "", _opt(row.parameters, human_count),
            _opt(row.bytes, human_bytes), row.target_text(), _opt(row.mapped, str), _opt(row.unmapped, str),
            _opt(row.mismatched, str), parity, f"{row.seconds:.2f} s", row.status, this_run_text(row),
            f"{row.reason_kind}: {row.reason}" if row.reason and row.reason_kind else row.reason or ""]


def this_run_text(row: ZooRow) -> str:
    """What this run did to the entry; a reused one says when an earlier run finished it."""
    if row.this_run != REUSED:
        return row.this_run or ""
    return f"{REUSED} (finished {_when(row.finished)})"


def _when(finished: str | None) -> str:
    """``2025-01-02T10:00:00+00:00`` -> ``2025-01-02 10:00 UTC``; unknown in reports older than the field."""
    if not finished:
        return "at an unknown time"
    return finished[:16].replace("T", " ") + " UTC" if finished.endswith("+00:00") else finished


def _opt(value, fmt) -> str:
    return "" if value is None else fmt(value)


def _cell(text, markdown: bool, limit: int = 0) -> str:
    """One line; pipes escaped in Markdown tables; long text cut in terminal tables."""
    text = " ".join(str(text).split())
    if limit and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text.replace("|", "\\|") if markdown else text


# -- diff of two reports -------------------------------------------------------------------------------------

_TITLES = {"new failure": "New failures", "fixed": "Fixed", "status": "Other status changes",
           "reason": "Failure reason changed", "mapping": "Mapping changed", "parity": "Parity error changed",
           "time": "Time changed", "added": "Added", "removed": "Removed", "changed": "Changed"}


def diff_text(d: ReportDiff, markdown: bool) -> str:
    head, style = ("## ", "github") if markdown else ("", "simple")
    out = [f"{'# ' if markdown else ''}Changes in {d.report_kind} report: {d.before} -> {d.after}"]
    if d.totals_before or d.totals_after:
        keys = [k for k in d.totals_after if k not in ("bytes", "parameters")]
        out.append("   ".join(f"{k}: {d.totals_before.get(k, 0)} -> {d.totals_after.get(k, 0)}" for k in keys))
    out.append("   ".join(f"{_TITLES[c].lower()}: {n}" for c, n in d.counts.items()) or "no changes")
    out.append(f"tolerances: parity error {d.parity_tolerance:g} (absolute), time {d.time_tolerance:.0%} (and 0.5 s)")
    what = "checkpoint" if d.report_kind == "zoo" else "field"
    for category in CATEGORIES:
        changes = d.of(category)
        if changes:
            rows = [[_cell(c.key, markdown), _cell(_shown(c.before), markdown, 80), _cell(_shown(c.after), markdown, 80),
                     _cell(c.note, markdown, 0 if markdown else 100)] for c in changes]
            out += ["", f"{head}{_TITLES[category]} ({len(changes)})",
                    tabulate(rows, [what, "before", "after", "note"], tablefmt=style, disable_numparse=True)]
    return "\n".join(out)


def _shown(value: str | None) -> str:
    return "(absent)" if value is None else value
