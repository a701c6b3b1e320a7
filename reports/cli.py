"""``ckpt-report``: render any report this suite writes, or show what changed between two runs.

Parses arguments, calls the library, prints; never imports TensorFlow.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._diff import diff_reports
from ._load import ReportFormatError, load_report
from ._cli import EXIT_OK, run_guarded
from ._render import render

EXIT_NEW_FAILURES = 1
# --format spellings -> the renderer's names (ckpt-migrate's "table"/"markdown" work too)
_FORMATS = {"text": "table", "table": "table", "md": "markdown", "markdown": "markdown", "json": "json", "html": "html"}


class ReportCliError(Exception):
    """Bad input the user can fix; printed as one line."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ckpt-report", description="Render ckptkit reports and compare two runs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    ren = commands.add_parser("render", help="render a report .json as text, Markdown, HTML or JSON")
    ren.add_argument("report", type=Path, help="a .json written by ckpt-migrate (inspect, map, convert, zoo) or diff")
    ren.add_argument("--format", choices=("text", "md", "html", "json", "table", "markdown"), default="text",
                     help="text (default), md, html (a self-contained page) or json")
    _output_flags(ren)
    ren.set_defaults(run=_render)

    dif = commands.add_parser("diff", help="what changed between two reports of the same kind",
                              description="Zoo reports: new failures, fixes, other status changes, parity errors "
                                          "and times beyond a tolerance, added and removed checkpoints. "
                                          "Exit status 1 when there are new failures.")
    dif.add_argument("before", type=Path, help="the older report .json")
    dif.add_argument("after", type=Path, help="the newer report .json")
    dif.add_argument("--format", choices=("text", "md", "json", "html", "table", "markdown"), default="text")
    dif.add_argument("--parity-tolerance", type=float, default=1e-6, metavar="ABS",
                     help="report parity errors that moved by more than this (default 1e-6)")
    dif.add_argument("--time-tolerance", type=float, default=0.5, metavar="FRACTION",
                     help="report times that moved by more than this fraction, and at least 0.5 s (default 0.5)")
    _output_flags(dif)
    dif.set_defaults(run=_diff)
    return parser


def _output_flags(parser) -> None:
    parser.add_argument("--output", "-o", type=Path, help="write to this file instead of standard output")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _render(args) -> int:
    report = load_report(args.report)
    _emit(args, render(report, _FORMATS[args.format]), inputs=(args.report,))
    return EXIT_OK


def _diff(args) -> int:
    old, new = load_report(args.before), load_report(args.after)
    if type(old) is not type(new):
        raise ReportCliError(f"{args.before} is a {old.kind!r} report and {args.after} a {new.kind!r} report; "
                             "diff compares two reports of the same kind")
    diff = diff_reports(old, new, str(args.before), str(args.after),
                        parity_tolerance=args.parity_tolerance, time_tolerance=args.time_tolerance)
    _emit(args, render(diff, _FORMATS[args.format]), inputs=(args.before, args.after))
    return EXIT_NEW_FAILURES if diff.counts.get("new failure") else EXIT_OK


def _emit(args, text: str, inputs) -> None:
    out = args.output
    if out is None:
        print(text)
        return
    if any(out.resolve() == Path(i).resolve() for i in inputs):
        raise ReportCliError(f"--output {out}: that is an input report; choose another file")
    if out.exists() and not args.overwrite:
        raise ReportCliError(f"--output {out}: the file exists; pass --overwrite to replace it")
    out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


def main(argv=None) -> int:
    return run_guarded("ckpt-report", _parser().parse_args(argv), (ReportCliError, ReportFormatError))


if __name__ == "__main__":
    sys.exit(main())
