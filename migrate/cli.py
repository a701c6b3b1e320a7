"""``ckpt-migrate``: parse arguments, call the library, print, exit."""
from __future__ import annotations

import argparse
import os
import sys

from reports import FORMATS, render

from ._progress import Progress
from .errors import CkptkitError

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ckpt-migrate", description="Audit, map and convert legacy TensorFlow checkpoints.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    ins = commands.add_parser("inspect", help="audit a checkpoint: formats, roles, scopes, architecture, health")
    ins.add_argument("path", help="prefix, .index, .data-*, .meta, V1 file, directory, SavedModel or .h5")
    ins.add_argument("--depth", type=int, default=2, help="scope tree depth (default 2)")
    ins.add_argument("--stats", action="store_true", help="stream all tensor bytes: min/max/mean/std, NaN/Inf, zeros")
    ins.add_argument("--verify", action="store_true", help="check every stored checksum and every shard")
    ins.add_argument("--format", choices=FORMATS, default="table")
    ins.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    ins.set_defaults(run=_inspect)

    conv = commands.add_parser("convert", help="write a verified TF2 object-based checkpoint")
    conv.add_argument("source", help="any checkpoint path inspect accepts")
    conv.add_argument("output", help="output directory (gets a `checkpoint` state file)")
    _selection_flags(conv)
    conv.add_argument("--overwrite", action="store_true", help="replace an existing output")
    conv.add_argument("--copy", action="store_true", help="copy data shards instead of hard-linking them")
    conv.add_argument("--format", choices=FORMATS, default="table", help="how to print the report")
    conv.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    conv.set_defaults(run=_convert)
    return parser


def _selection_flags(parser) -> None:
    parser.add_argument("--keep-optimizer", action="store_true", help="keep optimizer slots and state (dropped by default)")
    parser.add_argument("--use-ema", action="store_true", help="take each weight from its ExponentialMovingAverage shadow")
    parser.add_argument("--keep-global-step", action="store_true", help="keep global_step (dropped by default)")
    parser.add_argument("--no-join-partitions", dest="join_partitions", action="store_false",
                        help="keep NAME/part_N tensors separate instead of joining them")


def _select_options(args):
    from ._select import SelectOptions  # noqa: PLC0415

    return SelectOptions(args.keep_optimizer, args.use_ema, args.keep_global_step, args.join_partitions)


def _convert(args) -> int:
    from ._convert import convert  # noqa: PLC0415

    report = convert(args.source, args.output, options=_select_options(args), overwrite=args.overwrite, copy=args.copy)
    print(render(report, args.format))
    return EXIT_OK


def _inspect(args) -> int:
    from ._inspect import inspect  # noqa: PLC0415 - keep --help instant

    progress = None
    if args.stats:
        from ._formats import open_checkpoint  # noqa: PLC0415

        with open_checkpoint(args.path) as reader:
            total = sum(reader.spec(n).nbytes for n in reader.keys())
        progress = Progress(total, "stats")
    report = inspect(args.path, stats=args.stats, verify=args.verify, progress=progress)
    if progress:
        progress.close()
    print(render(report, args.format, depth=args.depth))
    return EXIT_FINDINGS if report.worst_severity == "error" else EXIT_OK


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except CkptkitError as e:
        return _fail(args, str(e), e.exit_code)
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except (OSError, MemoryError) as e:
        return _fail(args, f"{getattr(e, 'filename', None) or ''}: {e.strerror or e}".lstrip(": "), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", 130)
    except Exception as e:  # a bug of ours: still one line, the traceback on --debug
        return _fail(args, f"unexpected {type(e).__name__}: {e} (rerun with --debug and report it)", EXIT_BAD_INPUT)


def _fail(args, message: str, code: int) -> int:
    if args.debug:
        raise
    print(f"ckpt-migrate: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
