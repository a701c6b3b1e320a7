"""Zoo report as Markdown, SVG charts and a self-contained HTML page, checked in headless Chromium."""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from reports import ZooReport, ZooRow, render
from reports._charts import STATUS_COLORS, Point, size_time_scatter, status_bars
from reports._html import COLUMNS, render_html
from reports._load import _BUILT_IN

WEIRD = 'odd/<script>alert("x")</script> & \'q\' \u00fc\u2713|pipe/model.ckpt'


def zoo_report(n: int = 24) -> ZooReport:
    """Rows of every status (some reused from an earlier run), sizes over five decades, parity run or not,
    and one hostile name."""
    archs = ("resnet_v1_50", "mobilenet_v1", "inception_v3", "bert", None)
    rows = []
    for i in range(n):
        status = "failed" if i % 5 == 2 else "converted"
        reused = status == "converted" and i % 7 == 3  # kept from an earlier run
        size = int(2e4 * 10 ** (5 * i / n))
        rows.append(ZooRow(
            source=f"zoo/{archs[i % 5] or 'misc'}/ckpt_{i:02d}/model.ckpt", output=None if status == "failed" else f"c{i}",
            status=status, format="tf1-v2", architecture=archs[i % 5], parameters=size // 4, bytes=size,
            target="generic" if i % 2 else "keras:ResNet50", mapped=100 + i, unmapped=i % 3, mismatched=2 * (i % 4 == 0),
            parity_max_rel=None if i % 3 == 0 else 10.0 ** -(i % 7 + 2), parity_passed=None if i % 3 == 0 else i % 7 != 0,
            seconds=round(0.3 + size / 4e7 + (i % 4) * 0.7, 2),
            reason=f"no rule maps conv{i}/weights" if status == "failed" else None,
            reason_kind=("MappingError" if i % 2 else "CheckpointFormatError") if status == "failed" else None,
            finished=f"2025-01-02T10:{i:02d}:00+00:00", this_run="reused" if reused else status))
    rows.append(ZooRow(WEIRD, None, "failed", reason='bad <b>bytes</b> & "quotes"', reason_kind="Format<Error>"))
    return ZooReport("/data/zoo & co", "/data/out", tuple(rows), 4, 93.5)


# -- Markdown and text ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["markdown", "text"])
def test_zoo_text_has_totals_breakdowns_and_every_row(fmt):
    r = zoo_report()
    text = render(r, fmt)
    assert f"checkpoints: {len(r.rows)}" in text and f"failed: {r.totals['failed']}" in text
    assert "By architecture" in text and "Failures by reason" in text and "MappingError" in text
    for row in r.rows[:-1]:
        assert row.source in text
    if fmt == "markdown":
        assert "\\|pipe" in text  # a pipe in a name must not split the Markdown table
        table_lines = [line for line in text.splitlines() if line.startswith("| zoo/")]
        assert len(table_lines) == len(r.rows) - 1
        assert {line.count("|") - line.count("\\|") for line in table_lines} == {len(COLUMNS) + 1}


# -- charts -----------------------------------------------------------------------------------------------------

def test_status_bars_one_segment_per_count_and_escaped():
    svg = status_bars({"a<b": {"converted": 3, "failed": 1}, "c": {"converted": 2}})
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert len(re.findall(r"<rect [^>]*><title>", svg)) == 3  # legend swatches have no <title>
    assert "a&lt;b" in svg and "a<b" not in svg
    assert all(c in svg for c in STATUS_COLORS.values())  # legend names every status
    assert status_bars({}).endswith("</svg>")


@pytest.mark.parametrize(("sizes", "log"), [((0.5, 3, 40), False), ((0.01, 5, 2000), True)])
def test_scatter_uses_log_scale_only_for_wide_ranges(sizes, log):
    statuses = ("converted", "failed", "converted")
    points = [Point(f"p{i} & <x>", mb, 1.0 + i, s) for i, (mb, s) in enumerate(zip(sizes, statuses))]
    svg = size_time_scatter(points + [Point("no size", None, 1.0, "failed")])
    assert svg.count("<circle") == 3
    assert ("log scale" in svg) is log
    assert "conversion time (s)" in svg and "1 without a size not shown" in svg
    assert "p0 &amp; &lt;x&gt;" in svg
    assert size_time_scatter([]).endswith("</svg>")


# -- the page ----------------------------------------------------------------------------------------------------

def _examples():
    from test_report_cli import EXAMPLES  # noqa: PLC0415 - one set of examples for every kind

    return EXAMPLES


@pytest.mark.parametrize("kind", sorted(cls.kind for cls in _BUILT_IN))
def test_every_kind_renders_a_self_contained_page(kind):
    page = render(_examples()[kind](), "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    lowered = page.lower()
    for external in ("http:", "https:", "//cdn", "<link", "@import", "url(", " src="):
        assert external not in lowered, f"the page must not load anything: found {external!r}"
    assert "<style>" in page and "<h1>" in page


def test_zoo_page_escapes_everything_from_the_data():
    page = render_html(zoo_report()).replace("<wbr>", "")  # line-break hints after each '/'
    assert page.count("<script>") == 1  # ours; the name's is text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "bad &lt;b&gt;bytes&lt;/b&gt; &amp; &quot;quotes&quot;" in page
    assert "Format&lt;Error&gt;" in page and "\u00fc\u2713" in page
    assert "/data/zoo &amp; co" in page


def test_zoo_page_has_a_row_per_checkpoint_and_marks_failures():
    r = zoo_report()
    page = render_html(r)
    assert page.count("<tr data-row") == len(r.rows)
    assert page.count('class="failed"') == r.totals["failed"]
    heads = re.findall(r'<th data-key="(\w+)" data-type="(\w+)"', page)
    assert [k for k, _ in heads] == [c[0] for c in COLUMNS]
    assert {k for k, t in heads if t == "num"} == {"parameters", "size", "mapped", "unmapped", "mismatched",
                                                    "parity", "time"}
    assert "function sortTable" in page and "Status by architecture" in page and "Failures by reason" in page
    reused = [row for row in r.rows if row.this_run == "reused"]
    assert reused and r.reused == len(reused) and r.totals["converted"] + r.totals["failed"] == len(r.rows)
    assert page.count('<td class="dim">reused (finished 2025-01-02 10:') == len(reused)  # real status, then this run
    assert f'<span class="n">{len(reused)}</span><span class="l">reused from earlier runs</span>' in page


# -- in a real browser ---------------------------------------------------------------------------------------

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium_path() -> str:
    """The browser; missing, the test fails (not skips, not errors): the page must be checked in a real browser."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if path is None:
        pytest.fail("chromium is not installed, and the HTML report must be checked in a real browser: "
                    "run `make test` (it installs chromium and chromium-driver with apt-get)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "zoo-report.html"
    path.write_text(render_html(zoo_report()), encoding="utf-8")
    return path


def _chromium(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--window-size=1280,1600", *args], capture_output=True, timeout=180)


def test_page_in_chromium_is_not_blank_and_draws_the_charts(page, tmp_path):
    chromium = chromium_path()
    shot = tmp_path / "zoo.png"
    done = _chromium(chromium, tmp_path, f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), done.stderr.decode(errors="replace")[-2000:]
    pixels = png_rgb(shot.read_bytes())
    assert pixels.shape[:2] == (1600, 1280)
    packed = pixels[..., 0].astype(np.uint32) << 16 | pixels[..., 1].astype(np.uint32) << 8 | pixels[..., 2]
    assert len(np.unique(packed)) > 200, "the screenshot is (nearly) blank"
    assert (packed != 0xFFFFFF).mean() > 0.08, "the screenshot is mostly white"
    for status, color in STATUS_COLORS.items():
        assert (packed == int(color[1:], 16)).sum() > 300, f"no {status} colour: the charts did not draw"


def test_page_in_chromium_shows_every_row_and_sorts_numerically(page, tmp_path):
    chromium = chromium_path()
    r = zoo_report()
    dom = _chromium(chromium, tmp_path, "--dump-dom", page.as_uri() + "#sort=-parity").stdout.decode()
    assert 'data-js="ready"' in dom, "the page's script did not run"
    assert dom.count("<tr data-row") == len(r.rows)
    assert "function sortTable" in dom
    order = re.findall(r'<tr data-row.*?<td class="num parity"(?: data-value="([^"]*)")?', dom)
    values = [float(v) for v in order if v]
    assert values == sorted((row.parity_max_rel for row in r.rows if row.parity_max_rel is not None), reverse=True)
    assert order[len(values):] == [""] * (len(order) - len(values)), "cells without a value sort last"
    assert re.search(r'data-key="parity"[^>]*aria-sort="descending"', dom)


# -- a tiny PNG decoder (no PIL here) ---------------------------------------------------------------------

def png_rgb(data: bytes) -> np.ndarray:
    """8-bit RGB or RGBA, non-interlaced PNG -> (height, width, 3) uint8."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, bytearray()
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos: pos + 8])
        chunk = data[pos + 8: pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
    assert depth == 8 and color in (2, 6) and not interlace, (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(bytes(idat)), np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(height):
        line = raw[y, 1:]
        kind = raw[y, 0]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:  # Sub: a running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint8).reshape(stride)
        elif kind == 2:
            cur = line + prev
        else:
            cur = _unfilter_slow(kind, line.tolist(), prev.tolist(), bpp)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)[..., :3]


def _unfilter_slow(kind: int, line: list, prev: list, bpp: int) -> np.ndarray:
    cur = [0] * len(line)
    for i, x in enumerate(line):
        a = cur[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 3:
            cur[i] = (x + (a + b) // 2) & 0xFF
        else:
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            cur[i] = (x + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return np.array(cur, np.uint8)
