"""Self-contained HTML pages: inline CSS, JS and SVG; nothing is fetched, everything from the data is escaped.

The zoo report gets a full page (totals, charts, breakdowns, a sortable and
filterable table); every other kind gets its Markdown rendering as HTML
(headings, tables, lists), under the plots of :mod:`._report_plots` for the
fine-tuning, transfer and quantization reports.
"""
from __future__ import annotations

from ._charts import Point, esc, size_time_scatter, status_bars
from ._format import human_bytes, human_count
from ._render import render, this_run_text
from ._zoo import REUSED, STATUSES, ZooReport, ZooRow

_CSS = """
:root { color-scheme: light; --fail: #D55E00; --ok: #009E73; --line: #dcdcdc; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 24px 24px 48px; max-width: 1500px; color: #1d1d1f; background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.paths { color: #555; margin: 0 0 18px; overflow-wrap: anywhere; }
code, .mono, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #f6f6f6; padding: 16px; border-radius: 6px; overflow-x: auto; }
.totals { display: flex; flex-wrap: wrap; gap: 12px; margin: 0 0 8px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 120px; }
.card .n { font-size: 22px; font-weight: 600; display: block; }
.card .l { color: #555; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card.failed { border-color: var(--fail); background: #fff4ee; } .card.failed .n { color: var(--fail); }
.card.converted .n { color: var(--ok); }
.charts { display: flex; flex-wrap: wrap; gap: 20px; margin-top: 16px; align-items: flex-start; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 12px; flex: 1 1 460px; max-width: 760px; }
svg.chart { width: 100%; height: auto; display: block; }
figure > svg { width: 100%; height: auto; display: block; }
.scroll { overflow-x: auto; margin: 0 0 12px; }
table.data td { overflow-wrap: anywhere; max-width: 520px; }
table.data tbody tr:nth-child(even) { background: #fafafa; }
figcaption { font-weight: 600; margin-bottom: 6px; }
.breakdowns { display: flex; flex-wrap: wrap; gap: 40px; align-items: flex-start; }
.breakdowns > div { flex: 0 0 auto; } .breakdowns > div.wide { flex: 1 1 420px; }
table { border-collapse: collapse; }
th, td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
#rows { width: 100%; font-size: 13px; }
#rows th, #rows td { padding: 4px 5px; }
#rows td.parity { white-space: normal; }
#rows th { vertical-align: bottom; font-size: 12px; white-space: normal; }
.table-wrap { overflow-x: auto; }
#rows th button { all: unset; cursor: pointer; }
#rows th button:focus-visible { outline: 2px solid #333; }
#rows th button:hover { text-decoration: underline; }
#rows th[aria-sort="ascending"] button::after { content: "\\00a0\\25B2"; color: #333; }
#rows th[aria-sort="descending"] button::after { content: "\\00a0\\25BC"; color: #333; }
#rows tbody tr:nth-child(even) { background: #fafafa; }
#rows tbody tr.failed { background: #fdecea; box-shadow: inset 4px 0 0 var(--fail); }
#rows td.source { overflow-wrap: anywhere; min-width: 140px; max-width: 300px; }
#rows td.reason { overflow-wrap: anywhere; min-width: 220px; max-width: 420px; }
.nowrap { white-space: nowrap; }
td.examples { max-width: 520px; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; font-weight: 600; color: #fff; }
.badge.converted { background: var(--ok); } .badge.failed { background: var(--fail); }
.bad { color: var(--fail); font-weight: 600; }
.dim { color: #888; }
.tools { margin: 0 0 8px; display: flex; gap: 12px; align-items: center; }
#filter { padding: 5px 8px; width: 320px; border: 1px solid #bbb; border-radius: 5px; font: inherit; }
footer { margin-top: 32px; color: #888; font-size: 12px; }
"""

_JS = """
(function () {
  "use strict";
  var table = document.getElementById("rows");
  if (!table) { return; }
  var body = table.tBodies[0], heads = table.tHead.rows[0].cells, shown = document.getElementById("shown");
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  function key(row, i, numeric) {
    var cell = row.cells[i];
    if (!numeric) { return cell.textContent.trim(); }
    var v = cell.getAttribute("data-value");
    return v === null || v === "" ? null : parseFloat(v);
  }
  function sortTable(i, descending) {
    var numeric = heads[i].getAttribute("data-type") === "num";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, i, numeric), y = key(b, i, numeric);
      var xEmpty = x === null || x === "", yEmpty = y === null || y === "";
      if (xEmpty || yEmpty) { return xEmpty === yEmpty ? 0 : (xEmpty ? 1 : -1); }  // empty cells last
      var c = numeric ? x - y : collator.compare(x, y);
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var j = 0; j < heads.length; j++) {
      heads[j].setAttribute("aria-sort", j === i ? (descending ? "descending" : "ascending") : "none");
    }
  }
  function byName(name) {
    for (var j = 0; j < heads.length; j++) { if (heads[j].getAttribute("data-key") === name) { return j; } }
    return -1;
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.querySelector("button").addEventListener("click", function () {
      var descending = th.getAttribute("aria-sort") === "ascending";
      sortTable(i, descending);
      try { history.replaceState(null, "", "#sort=" + (descending ? "-" : "") + th.getAttribute("data-key")); }
      catch (e) { /* some file:// contexts refuse; sorting still works */ }
    });
  });
  var wanted = /^#sort=(-?)([a-z_]+)$/.exec(location.hash);
  if (wanted && byName(wanted[2]) >= 0) { sortTable(byName(wanted[2]), wanted[1] === "-"); }
  var filter = document.getElementById("filter");
  filter.addEventListener("input", function () {
    var words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean), n = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
      n += row.hidden ? 0 : 1;
    });
    shown.textContent = n + " of " + body.rows.length + " shown";
  });
  document.documentElement.setAttribute("data-js", "ready");
})();
"""

# (key, header, numeric): the checkpoint table's columns, in order.
COLUMNS = (("source", "source", False), ("format", "format", False), ("architecture", "architecture", False),
           ("parameters", "params", True), ("size", "size", True), ("target", "target", False),
           ("mapped", "mapped", True), ("unmapped", "un\u00admapped", True), ("mismatched", "mis\u00admatched", True),
           ("parity", "parity error", True), ("time", "time", True), ("status", "status", False),
           ("this_run", "this run", False), ("reason", "reason", False))


def render_html(report) -> str:
    """One self-contained HTML page for any report."""
    if isinstance(report, ZooReport):
        return _page(f"Zoo report: {report.source}", _zoo_body(report))
    from ._report_plots import figures  # noqa: PLC0415 - matplotlib loads only for the kinds that plot

    markdown = render(report, "markdown")
    first, _, rest = markdown.partition("\n")
    title = first.lstrip("# ") or f"{report.kind} report"
    plots = "".join(f"<figure>{svg}</figure>\n" for svg in figures(report))
    charts = f'<div class="charts">\n{plots}</div>\n' if plots else ""
    body = f'<h1>{esc(title)}</h1>\n<p class="paths">{esc(report.kind)} report</p>\n{charts}{markdown_html(rest)}'
    return _page(title, body)


def markdown_html(markdown: str) -> str:
    """The Markdown the renderers write (headings, GitHub tables, lists, indented code, lines) as HTML."""
    out, blocks = [], _blocks(markdown.strip().splitlines())
    for kind, lines in blocks:
        if kind == "heading":
            out.append(f"<h2>{esc(lines[0].lstrip('#').strip())}</h2>")
        elif kind == "table":
            rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
            head, body = rows[0], [r for r in rows[2:]]
            out.append('<div class="scroll"><table class="data"><thead><tr>'
                       + "".join(f"<th>{esc(c)}</th>" for c in head) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</tbody></table></div>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{esc(line.strip()[2:])}</li>" for line in lines) + "</ul>")
        elif kind == "code":
            out.append(f"<pre>{esc(chr(10).join(line[4:] for line in lines))}</pre>")
        else:
            out.append("<p>" + "<br>".join(esc(line) for line in lines) + "</p>")
    return "\n".join(out)


def _blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Consecutive lines grouped by kind: heading, table, list, code or text (blank lines separate)."""
    def kind_of(line: str) -> str:
        if line.startswith("#"):
            return "heading"
        if line.lstrip().startswith("|"):
            return "table"
        if line.lstrip().startswith(("- ", "* ")):
            return "list"
        return "code" if line.startswith("    ") else "text"

    blocks: list[tuple[str, list[str]]] = []
    for line in lines:
        if not line.strip():
            blocks.append(("blank", []))
            continue
        kind = kind_of(line)
        if blocks and blocks[-1][0] == kind and kind != "heading":
            blocks[-1][1].append(line)
        else:
            blocks.append((kind, [line]))
    return [b for b in blocks if b[0] != "blank"]


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)}</title>\n'
            f'<style>{_CSS}</style>\n</head>\n<body>\n{body}\n'
            '<footer>Written by ckptkit. This page is self-contained: nothing is loaded from elsewhere.</footer>\n'
            f'<script>{_JS}</script>\n</body>\n</html>\n')


def _zoo_body(r: ZooReport) -> str:
    points = [Point(row.source, None if row.bytes is None else row.bytes / 2**20, row.seconds, row.status)
              for row in r.rows]
    return "\n".join([
        '<h1>Checkpoint zoo report</h1>',
        f'<p class="paths"><code>{esc(r.source)}</code> &rarr; <code>{esc(r.output)}</code></p>',
        _totals(r),
        '<section class="charts">',
        f'<figure><figcaption>Status by architecture</figcaption>{status_bars(r.by_architecture)}</figure>',
        f'<figure><figcaption>Size vs conversion time</figcaption>{size_time_scatter(points)}</figure>',
        '</section>',
        '<section class="breakdowns">',
        f'<div><h2>By architecture</h2>{_arch_table(r)}</div>',
        f'<div class="wide"><h2>Failures by reason</h2>{_failure_table(r)}</div>',
        '</section>',
        f'<h2>Checkpoints ({len(r.rows)})</h2>',
        '<div class="tools"><input id="filter" type="search" placeholder="Filter rows (all words must match)" '
        f'aria-label="Filter rows"><span id="shown" class="dim">{len(r.rows)} of {len(r.rows)} shown</span>'
        '<span class="dim">Click a column header to sort.</span></div>',
        _rows_table(r.rows),
    ])


def _totals(r: ZooReport) -> str:
    t = r.totals
    cards = [("checkpoints", t["checkpoints"], "")] + [(s, t[s], s) for s in STATUSES] + [
        ("reused from earlier runs", r.reused, ""),
        ("parameters", human_count(t["parameters"]), ""), ("size", human_bytes(t["bytes"]), ""),
        ("wall time", f"{r.seconds:.1f} s", ""), ("jobs", r.jobs, "")]
    return '<section class="totals">' + "".join(
        f'<div class="card {cls}"><span class="n">{esc(n)}</span><span class="l">{esc(label)}</span></div>'
        for label, n, cls in cards) + "</section>"


def _arch_table(r: ZooReport) -> str:
    if not r.by_architecture:
        return '<p class="dim">No checkpoints.</p>'
    head = "".join(f'<th class="num">{esc(s)}</th>' for s in STATUSES)
    rows = []
    for arch, counts in r.by_architecture.items():
        cells = "".join(f'<td class="num{" bad" if s == "failed" and counts.get(s) else ""}">{counts.get(s, 0)}</td>'
                        for s in STATUSES)
        rows.append(f'<tr><td>{esc(arch)}</td>{cells}<td class="num">{sum(counts.values())}</td></tr>')
    return f'<table><thead><tr><th>architecture</th>{head}<th class="num">total</th></tr></thead>' \
           f'<tbody>{"".join(rows)}</tbody></table>'


def _failure_table(r: ZooReport) -> str:
    if not r.by_failure:
        return '<p class="dim">No failures.</p>'
    rows = []
    for reason, n in r.by_failure.items():
        sources = [row.source for row in r.rows if row.status == "failed" and (row.reason_kind or "error") == reason]
        more = f' <span class="dim">and {len(sources) - 3} more</span>' if len(sources) > 3 else ""
        examples = ", ".join(f"<code>{_path(s)}</code>" for s in sources[:3]) + more
        rows.append(f'<tr><td class="bad">{esc(reason)}</td><td class="num">{n}</td><td class="examples">{examples}</td></tr>')
    return ('<table><thead><tr><th>reason</th><th class="num">checkpoints</th><th>for example</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _rows_table(rows) -> str:
    heads = "".join(f'<th data-key="{key}" data-type="{"num" if num else "text"}" aria-sort="none"'
                    f'{" class=num" if num else ""}><button type="button">{esc(label)}</button></th>'
                    for key, label, num in COLUMNS)
    body = "\n".join(_row(row) for row in rows)
    return f'<div class="table-wrap"><table id="rows">\n<thead><tr>{heads}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table></div>'


_PARITY_TITLES = {"failed": "above the parity threshold",
                  "inconclusive": "the output does not depend on the input: agreement proves nothing"}


def _row(row: ZooRow) -> str:
    parity = esc(row.parity_text())
    if row.parity_verdict in _PARITY_TITLES:
        parity = f'<span class="bad" title="{_PARITY_TITLES[row.parity_verdict]}">{parity}</span>'
    reason = ""
    if row.reason or row.reason_kind:
        kind = f"<strong>{esc(row.reason_kind)}</strong>: " if row.reason_kind else ""
        reason = kind + esc(row.reason or "")
    cells = [
        _td(_path(row.source), cls="source mono", title=row.output and f"output: {row.output}"),
        _td(esc(row.format or ""), cls="nowrap"), _td(_path(row.architecture or "")),
        _num(_opt(row.parameters, human_count), row.parameters, title=row.parameters),
        _num(_opt(row.bytes, human_bytes), row.bytes, title=row.bytes),
        _td(esc(row.target_text()) if row.fallback else _path(row.target or "")),
        _num(_opt(row.mapped, str), row.mapped), _num(_opt(row.unmapped, str), row.unmapped),
        _num(_opt(row.mismatched, str), row.mismatched),
        _num(parity or ("" if row.status == "failed" else '<span class="dim">not&nbsp;run</span>'), row.parity_max_rel,
             cls="parity"),
        _num(f"{row.seconds:.2f} s", row.seconds),
        _td(f'<span class="badge {esc(row.status)}">{esc(row.status)}</span>',
            title=row.finished and f"finished {row.finished}"),
        _td(esc(this_run_text(row)), cls="dim" if row.this_run == REUSED else ""),
        _td(reason, cls="reason"),
    ]
    failed = ' class="failed"' if row.status == "failed" else ""
    return f'<tr data-row data-status="{esc(row.status)}"{failed}>{"".join(cells)}</tr>'


def _td(content: str, *, cls: str = "", title=None, value: str | None = None) -> str:
    attrs = f' class="{cls}"' if cls else ""
    if value is not None:
        attrs += f' data-value="{value}"'
    if title is not None:
        attrs += f' title="{esc(title)}"'
    return f"<td{attrs}>{content}</td>"


def _num(content: str, value, title=None, cls: str = "") -> str:
    """A cell of a numeric column: sorts by ``value`` (no value, or NaN: sorts last)."""
    number = None if value is None or value != value else float(value)
    return _td(content, cls=f"num {cls}".strip(), title=title, value=None if number is None else repr(number).replace("inf", "Infinity"))


def _path(text: str) -> str:
    """Escaped, with line-break opportunities after each '/' and ':' (used only when the table is tight)."""
    return esc(text).replace("/", "/<wbr>").replace(":", ":<wbr>")


def _opt(value, fmt) -> str:
    return "" if value is None else esc(fmt(value))

