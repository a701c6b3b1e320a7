"""``ckpt-report``: render any report this suite writes, or show what changed between two runs.

Parses arguments, calls the library, prints; never imports TensorFlow.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import console
from ._diff import diff_reports
from ._load import ReportFormatError, load_report
from .console import EXIT_FINDINGS, EXIT_OK, emit, run_guarded


class ReportCliError(Exception):
    """Bad input the user can fix; printed as one line."""


def _parser() -> argparse.ArgumentParser:
    parser = console.parser("ckpt-report", "Render ckptkit reports and compare two runs.")
    commands = parser.add_subparsers(dest="command", required=True)

    ren = console.subcommand(commands, "render", "render a report .json as text, Markdown, HTML or JSON")
    ren.add_argument("report", type=Path, help="a .json written by any ckptkit tool (inspect, map, convert, zoo, "
                                               "finetune, transfer, quantize) or by diff")
    console.report_flags(ren)
    ren.set_defaults(run=_render)

    dif = console.subcommand(commands, "diff", "what changed between two reports of the same kind",
                             description="Zoo reports: new failures, fixes, other status changes, parity errors "
                                         "and times beyond a tolerance, added and removed checkpoints. "
                                         "Exit status 1 when there are new failures.")
    dif.add_argument("before", type=Path, help="the older report .json")
    dif.add_argument("after", type=Path, help="the newer report .json")
    dif.add_argument("--parity-tolerance", type=float, default=1e-6, metavar="ABS",
                     help="report parity errors that moved by more than this (default 1e-6)")
    dif.add_argument("--time-tolerance", type=float, default=0.5, metavar="FRACTION",
                     help="report times that moved by more than this fraction, and at least 0.5 s (default 0.5)")
    console.report_flags(dif)
    dif.set_defaults(run=_diff)
    return parser


def _render(args) -> int:
    emit(args, load_report(args.report), inputs=(args.report,))
    return EXIT_OK


def _diff(args) -> int:
    old, new = load_report(args.before), load_report(args.after)
    if type(old) is not type(new):
        raise ReportCliError(f"{args.before} is a {old.kind!r} report and {args.after} a {new.kind!r} report; "
                             "diff compares two reports of the same kind")
    diff = diff_reports(old, new, str(args.before), str(args.after),
                        parity_tolerance=args.parity_tolerance, time_tolerance=args.time_tolerance)
    emit(args, diff, inputs=(args.before, args.after))
    return EXIT_FINDINGS if diff.counts.get("new failure") else EXIT_OK


def main(argv=None) -> int:
    return run_guarded("ckpt-report", _parser().parse_args(argv), (ReportCliError, ReportFormatError))


if __name__ == "__main__":
    sys.exit(main())
