"""What changed between two reports of the same kind, as a typed result (rendered in ``_render``).

Zoo reports are compared row by row (keyed by checkpoint): new failures
first, then fixes, other status changes, changed failure reasons, changed
mapping counts, parity errors and times that moved beyond a tolerance, and
checkpoints added or removed.  Statuses are real ones (an entry a rerun
reused keeps the status and time an earlier run gave it), so a rerun shows
no change for it; how many entries each run reused is in the totals.  Any
other kind gets a field diff of its JSON, with list items keyed by their
name so one added tensor does not shift the rest.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from ._zoo import ZooReport, ZooRow

CATEGORIES = ("new failure", "fixed", "status", "reason", "mapping", "parity", "time", "added", "removed", "changed")
TIME_FLOOR = 0.5  # seconds: time changes smaller than this are noise whatever the ratio
_MAPPING_FIELDS = ("format", "architecture", "target", "mapped", "unmapped", "mismatched")
_IDENTITY_KEYS = ("name", "source", "path", "target")


@dataclass(frozen=True)
class Change:
    category: str  # one of CATEGORIES
    key: str  # the checkpoint (zoo) or the JSON field path (other kinds)
    before: str | None  # display values; None: absent on that side
    after: str | None
    note: str = ""


@dataclass(frozen=True)
class ReportDiff:
    report_kind: str
    before: str  # what the old report is (its file)
    after: str
    changes: tuple[Change, ...]
    parity_tolerance: float
    time_tolerance: float
    totals_before: dict[str, int] = field(default_factory=dict)
    totals_after: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    kind = "diff"

    def __post_init__(self):
        counts = {c: sum(ch.category == c for ch in self.changes) for c in CATEGORIES}
        object.__setattr__(self, "counts", {c: n for c, n in counts.items() if n})

    def of(self, category: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.category == category)


def diff_reports(old, new, before: str = "before", after: str = "after", *,
                 parity_tolerance: float = 1e-6, time_tolerance: float = 0.5) -> ReportDiff:
    """Changes from ``old`` to ``new`` (two reports of the same kind)."""
    if type(old) is not type(new):
        raise ValueError(f"cannot compare a {getattr(old, 'kind', type(old).__name__)!r} report with a "
                         f"{getattr(new, 'kind', type(new).__name__)!r} report; pass two reports of the same kind")
    if isinstance(old, ZooReport):
        changes = _zoo_changes(old, new, parity_tolerance, time_tolerance)
        totals = ({**old.totals, "reused": old.reused}, {**new.totals, "reused": new.reused})
    else:
        changes = _field_changes(_data(old), _data(new), parity_tolerance, time_tolerance)
        totals = ({}, {})
    order = {c: i for i, c in enumerate(CATEGORIES)}
    changes = sorted(changes, key=lambda c: order[c.category])  # stable: row order kept inside a category
    return ReportDiff(old.kind, before, after, tuple(changes), parity_tolerance, time_tolerance, *totals)


def _zoo_changes(old: ZooReport, new: ZooReport, parity_tol: float, time_tol: float) -> list[Change]:
    was = {r.source: r for r in old.rows}
    now = {r.source: r for r in new.rows}
    changes = []
    for source, b in now.items():
        a = was.get(source)
        if a is None:
            category = "new failure" if b.status == "failed" else "added"
            changes.append(Change(category, source, None, b.status, b.reason or "new checkpoint"))
        else:
            changes += _row_changes(a, b, parity_tol, time_tol)
    changes += [Change("removed", s, a.status, None) for s, a in was.items() if s not in now]
    return changes


def _row_changes(a: ZooRow, b: ZooRow, parity_tol: float, time_tol: float) -> list[Change]:
    out = []
    if a.status != b.status:
        if b.status == "failed":
            out.append(Change("new failure", b.source, a.status, b.status, b.reason or ""))
        elif a.status == "failed":
            out.append(Change("fixed", b.source, a.status, b.status, f"was: {a.reason}" if a.reason else ""))
        else:
            out.append(Change("status", b.source, a.status, b.status))
    elif b.status == "failed" and (a.reason_kind, a.reason) != (b.reason_kind, b.reason):
        out.append(Change("reason", b.source, a.reason, b.reason, _arrow(a.reason_kind, b.reason_kind)))
    moved = [f for f in _MAPPING_FIELDS if getattr(a, f) != getattr(b, f)]
    if moved and "failed" not in (a.status, b.status):
        out.append(Change("mapping", b.source, _fields_text(a, moved), _fields_text(b, moved)))
    if _parity_moved(a, b, parity_tol):
        note = "" if a.parity_verdict == b.parity_verdict else _verdict_note(b.parity_verdict)
        out.append(Change("parity", b.source, _number(a.parity_max_rel), _number(b.parity_max_rel), note))
    if abs(b.seconds - a.seconds) > max(TIME_FLOOR, time_tol * a.seconds):
        note = f"{(b.seconds - a.seconds) / a.seconds:+.0%}" if a.seconds else ""
        out.append(Change("time", b.source, f"{a.seconds:.2f} s", f"{b.seconds:.2f} s", note))
    return out


def _parity_moved(a: ZooRow, b: ZooRow, tol: float) -> bool:
    if a.parity_verdict != b.parity_verdict or (a.parity_max_rel is None) != (b.parity_max_rel is None):
        return True
    return a.parity_max_rel is not None and abs(b.parity_max_rel - a.parity_max_rel) > tol


def _verdict_note(verdict: str | None) -> str:
    return {"passed": "parity now passes", "failed": "parity now FAILS", "inconclusive": "parity now INCONCLUSIVE",
            None: "parity not run"}.get(verdict, f"parity now {verdict}")


def _arrow(a, b) -> str:
    return "" if a == b else f"{a} -> {b}"


def _fields_text(row: ZooRow, names) -> str:
    return ", ".join(f"{n}={getattr(row, n)}" for n in names)


def _number(value) -> str | None:
    return None if value is None else f"{value:.3g}"


# -- any other kind: a diff of the JSON fields ------------------------------------------------------------

def _data(report) -> dict:
    return dataclasses.asdict(report)


def _field_changes(old: dict, new: dict, parity_tol: float, time_tol: float) -> list[Change]:
    a, b = _flatten(old), _flatten(new)
    out = []
    for path in list(a) + [p for p in b if p not in a]:
        if path not in b:
            out.append(Change("removed", path, _text(a[path]), None))
        elif path not in a:
            out.append(Change("added", path, None, _text(b[path])))
        elif _differs(path, a[path], b[path], parity_tol, time_tol):
            out.append(Change("changed", path, _text(a[path]), _text(b[path])))
    return out


def _flatten(value, path: str = "", out: dict | None = None) -> dict:
    """``{"a": {"b": [..]}}`` -> ``{"a.b[name]": leaf}``; lists of names become one entry per name."""
    out = {} if out is None else out
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, (list, tuple)) and value and _identity(value):
        key = _identity(value)
        for item in value:
            _flatten({k: v for k, v in item.items() if k != key}, f"{path}[{item[key]}]", out)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        for v in value:
            out[f"{path}[{v}]"] = "listed"
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            _flatten(item, f"{path}[{i}]", out)
    else:
        out[path] = value
    return out


def _identity(items) -> str | None:
    """The key that names each item of a list of objects uniquely, if any."""
    if not all(isinstance(i, dict) for i in items):
        return None
    for key in _IDENTITY_KEYS:
        values = [i.get(key) for i in items]
        if all(isinstance(v, str) for v in values) and len(set(values)) == len(values):
            return key
    return None


def _differs(path: str, a, b, parity_tol: float, time_tol: float) -> bool:
    leaf = path.rsplit(".", 1)[-1]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if numbers and leaf in ("seconds", "cpu_seconds"):
        return abs(b - a) > max(TIME_FLOOR, time_tol * a)
    if numbers and leaf in ("max_abs", "max_rel"):
        return abs(b - a) > parity_tol
    return a != b


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
