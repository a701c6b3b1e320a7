"""The command-line vocabulary all four ckptkit tools share: flags, exit codes, errors, progress.

``ckpt-migrate``, ``ckpt-finetune``, ``ckpt-quantize`` and ``ckpt-report`` build
their parsers from here so that ``--out``, ``--format``, ``--output``, ``--overwrite``,
``--quiet`` and ``--debug`` mean the same everywhere and every ``--help`` ends
with the same exit codes.  No TensorFlow.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = {
    EXIT_OK: "clean: done, nothing to report",
    EXIT_FINDINGS: "findings or failed checks (error findings, incomplete mapping, failed parity or verification, "
                   "failed zoo entries, new failures in a diff)",
    EXIT_BAD_INPUT: "unusable input or refused action (one line on stderr: file, problem, what to do)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); rerun to resume",
}
EPILOG = "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items()) + \
         "\n  --debug prints the traceback as well; it never changes the exit code."
REPORT_FORMATS = ("text", "markdown", "json", "html")


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A tool's top-level parser: the exit codes in its help, ``--debug`` and ``--quiet`` before or after
    the subcommand."""
    top = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_flags(top, None)
    return top


def subcommand(commands, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand with the same epilog and the global flags accepted after its name too."""
    sub = commands.add_parser(name, help=help, description=kwargs.pop("description", help), epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    _global_flags(sub, argparse.SUPPRESS)
    return sub


def _global_flags(p: argparse.ArgumentParser, default) -> None:
    # Subcommands use SUPPRESS as default so that a flag given before the subcommand is not reset after it.
    extra = {} if default is None else {"default": default}
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (exit code unchanged)",
                   **extra)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr", **extra)


def out_dir(p: argparse.ArgumentParser, help: str, type=Path) -> None:
    """``--out DIR``: the directory a command writes, spelled the same in every tool.

    A flag rather than a positional: ``--train-input-path a b OUT`` would swallow OUT.  ``type=str`` where
    DIR may be a URL (``Path`` would fold its ``//``)."""
    p.add_argument("--out", type=type, required=True, metavar="DIR", help=help)


def report_flags(p: argparse.ArgumentParser, formats: tuple[str, ...] = REPORT_FORMATS) -> None:
    """``--format`` of the printed report and ``--output`` to write it to a file instead."""
    g = p.add_argument_group("report")
    g.add_argument("--format", choices=formats, default="text", help=f"{', '.join(formats)} (default text)")
    g.add_argument("--output", "-o", dest="report_file", type=Path, metavar="FILE",
                   help="write the report to FILE instead of stdout")
    if not any(a.dest == "overwrite" for a in p._actions):  # noqa: SLF001 - one --overwrite per command
        g.add_argument("--overwrite", action="store_true", help="replace an existing output")


class OutputError(Exception):
    """``--output`` names a file that must not be written; exit 2."""

    exit_code = EXIT_BAD_INPUT


def emit(args, report, inputs=(), depth: int | None = None) -> None:
    """Print ``report`` in ``args.format``, or write it to ``--output`` (refusing an input or an existing
    file without ``--overwrite``)."""
    from ._render import render  # noqa: PLC0415

    options = {} if depth is None else {"depth": depth}
    write(args, render(report, args.format, **options), inputs)


def write(args, text: str, inputs=()) -> None:
    """Print already rendered ``text`` or write it to ``--output`` (``args.report_file``)."""
    out = getattr(args, "report_file", None)
    if out is None:
        print(text)
        return
    if any(out.resolve() == Path(i).resolve() for i in inputs):
        raise OutputError(f"--output {out}: that is an input report; choose another file")
    if out.exists() and not getattr(args, "overwrite", False):
        raise OutputError(f"--output {out}: the file exists; pass --overwrite to replace it")
    out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8", errors="backslashreplace")
    print(f"wrote {out}", file=sys.stderr)


def run_guarded(prog: str, args, user_errors: tuple[type, ...] = ()) -> int:
    """Run ``args.run(args)``: a failure is one line on stderr and its exit code (user errors carry
    ``exit_code``, default 2); ``--debug`` adds the traceback and keeps the code."""
    try:
        return args.run(args)
    except (*user_errors, OutputError) as e:
        return _fail(prog, args, str(e), getattr(e, "exit_code", EXIT_BAD_INPUT))
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream for the interpreter's exit
        return EXIT_OK
    except (OSError, MemoryError) as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return _fail(prog, args, f"{where}{getattr(e, 'strerror', None) or e}", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return _fail(prog, args, "interrupted; rerun to resume", EXIT_INTERRUPTED)
    except Exception as e:  # a bug of ours: still one line, the traceback on --debug
        return _fail(prog, args, f"unexpected {type(e).__name__}: {e} (rerun with --debug and report it)",
                     EXIT_BAD_INPUT)


def _fail(prog: str, args, message: str, code: int) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc()
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


_quiet = False  # set once by a command line's --quiet; library calls that pass no ``quiet`` follow it


def set_quiet(quiet: bool) -> None:
    """``--quiet`` for every bar and progress line of this process (the library's bars ask no argument)."""
    global _quiet
    _quiet = bool(quiet)


def progress(total: int | float | None, desc: str, unit: str = "it", quiet: bool | None = None, **kwargs):
    """A tqdm bar on stderr with rate and ETA; silent when quiet or when stderr is not a terminal."""
    from tqdm import tqdm  # noqa: PLC0415

    quiet = _quiet if quiet is None else quiet
    disable = quiet or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr, dynamic_ncols=True,
                **({"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}), **kwargs)


class _BarSafeHandler(logging.Handler):
    """Log lines on whatever ``sys.stderr`` is now, written around any progress bar on screen."""

    def __init__(self, prog: str):
        super().__init__()
        self.prog = prog

    def emit(self, record) -> None:
        from tqdm import tqdm  # noqa: PLC0415

        tqdm.write(f"{self.prog}: {self.format(record)}", file=sys.stderr)


def log_to_stderr(prog: str, quiet: bool = False) -> None:
    """The library's log lines (``ckptkit.*``: steps, evaluations, stages) on stderr; warnings only when quiet."""
    set_quiet(quiet)
    logger = logging.getLogger("ckptkit")
    for handler in [h for h in logger.handlers if isinstance(h, _BarSafeHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(_BarSafeHandler(prog))
    logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
