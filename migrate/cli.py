"""``ckpt-migrate``: parse arguments, call the library, print, exit."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports import console
from reports.console import EXIT_FINDINGS, EXIT_OK, emit, run_guarded

from .errors import CkptkitError


def _parser() -> argparse.ArgumentParser:
    parser = console.parser("ckpt-migrate", "Audit, map and convert legacy TensorFlow checkpoints.")
    commands = parser.add_subparsers(dest="command", required=True)
    ins = console.subcommand(commands, "inspect", "audit a checkpoint: formats, roles, scopes, architecture, health")
    ins.add_argument("path", help="prefix, .index, .data-*, .meta, V1 file, directory, SavedModel or .h5")
    ins.add_argument("--depth", type=int, default=2, help="scope tree depth (default 2)")
    ins.add_argument("--stats", action="store_true", help="stream all tensor bytes: min/max/mean/std, NaN/Inf, zeros")
    ins.add_argument("--verify", action="store_true", help="check every stored checksum and every shard")
    console.report_flags(ins)
    ins.set_defaults(run=_inspect)

    mapper = console.subcommand(commands, "map", "dry run: how a checkpoint's tensors map onto a target")
    mapper.add_argument("source", help="any checkpoint path inspect accepts")
    _target_flags(mapper)
    _selection_flags(mapper)
    console.report_flags(mapper)
    mapper.set_defaults(run=_map)

    conv = console.subcommand(commands, "convert", "write a verified TF2 checkpoint (generic, or into a target model)")
    conv.add_argument("source", help="any checkpoint path inspect accepts")
    console.out_dir(conv, "the output directory (gets a `checkpoint` state file)")
    _target_flags(conv)
    _selection_flags(conv)
    conv.add_argument("--layout", choices=("object", "weights", "h5"), default="object",
                      help="object (default): restores with tf.train.Checkpoint(model=m); weights: with "
                           "m.load_weights(prefix); h5: Keras HDF5 weights (model target only)")
    conv.add_argument("--parity", action="store_true", help="run the TF1 model and the converted one on the same inputs")
    conv.add_argument("--parity-layers", action="store_true",
                      help="with --parity: list every compared layer (all are compared; by default only divergent "
                           "ones are listed)")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing output (and --output file)")
    conv.add_argument("--copy", action="store_true", help="generic: copy data shards instead of hard-linking them")
    console.report_flags(conv)
    conv.set_defaults(run=_convert)

    zoo = console.subcommand(commands, "zoo", "convert every checkpoint under a directory into one compatibility "
                                              "report (reruns resume: what is unchanged is kept)")
    zoo.add_argument("source", help="zoo directory (tarball layouts, prefixes, V1 files, .h5)")
    console.out_dir(zoo, "converted checkpoints, zoo-report.{json,md,html} and the resumable state go here (a "
                    "local folder or an s3:// or other fsspec URL)", type=str)
    zoo.add_argument("--jobs", type=int, help="worker processes (default: the number of cores)")
    zoo.add_argument("--manifest", type=Path, help="CSV or JSONL of source, target, options instead of discovery")
    zoo.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="local (default): worker processes here; ray: one Ray task per checkpoint, retried if its "
                          "worker dies (needs `pip install ckptkit[ray]`)")
    zoo.add_argument("--address", help="with --engine ray: the Ray cluster to join (ray.init's address); without "
                                       "it, a local Ray of --jobs CPUs")
    console.report_flags(zoo)
    zoo.set_defaults(run=_zoo)
    return parser


def _zoo(args) -> int:
    from ._zoo import run_zoo  # noqa: PLC0415

    report = run_zoo(args.source, args.out, jobs=args.jobs, manifest=args.manifest, quiet=args.quiet,
                     engine=args.engine, address=args.address)
    emit(args, report)
    return EXIT_FINDINGS if report.totals["failed"] else EXIT_OK


def _target_flags(parser) -> None:
    parser.add_argument("--target", help="keras:NAME, module:pkg.mod:builder or auto (the rule set's default); "
                                         "none (default): generic TF2 checkpoint mirroring the TF1 scopes")
    parser.add_argument("--rules", type=Path, help="a rule file whose rules are tried before the built-in ones")
    parser.add_argument("--restore", choices=("full", "backbone", "classification", "detection"), default="full",
                        help="what to restore, as the OD API's fine_tune_checkpoint_type")
    parser.add_argument("--classes", type=int, help="target classes (default: the source's)")
    parser.add_argument("--include-top", dest="include_top", action="store_true", default=None)
    parser.add_argument("--no-include-top", dest="include_top", action="store_false")
    parser.add_argument("--input-size", type=int, help="target input height and width")
    parser.add_argument("--target-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="extra keyword argument for the target builder (repeatable)")


def _target_spec(args):
    if not args.target or args.target == "none":
        return None
    from ._targets import TargetSpec  # noqa: PLC0415

    extra = {}
    for item in args.target_arg:
        key, sep, value = item.partition("=")
        if not sep:
            raise CkptkitError(f"--target-arg {item!r}: expected KEY=VALUE")
        extra[key] = _literal(value)
    return TargetSpec(args.target, args.classes, args.include_top, args.input_size, extra)


def _literal(text: str):
    import ast  # noqa: PLC0415

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _selection_flags(parser) -> None:
    parser.add_argument("--keep-optimizer", action="store_true", help="keep optimizer slots and state (dropped by default)")
    parser.add_argument("--use-ema", action="store_true", help="take each weight from its ExponentialMovingAverage shadow")
    parser.add_argument("--keep-global-step", action="store_true", help="keep global_step (dropped by default)")
    parser.add_argument("--no-join-partitions", dest="join_partitions", action="store_false",
                        help="keep NAME/part_N tensors separate instead of joining them")


def _select_options(args):
    from ._select import SelectOptions  # noqa: PLC0415

    return SelectOptions(args.keep_optimizer, args.use_ema, args.keep_global_step, args.join_partitions)


def _map(args) -> int:
    from ._map import map_checkpoint  # noqa: PLC0415

    report = map_checkpoint(args.source, _target_spec(args), rules=args.rules, restore=args.restore,
                            options=_select_options(args))
    emit(args, report, inputs=(args.source,))
    return EXIT_OK if report.complete else EXIT_FINDINGS


def _convert(args) -> int:
    from ._convert import convert, convert_stages  # noqa: PLC0415

    target = _target_spec(args)
    stages = convert_stages(target, args.parity)
    with console.progress(len(stages), "convert", "stage", args.quiet) as bar:
        def stage(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(stages.index(name) - bar.n)  # the stages finished before this one

        try:
            report = convert(args.source, args.out, target=target, rules=args.rules, restore=args.restore,
                             layout=args.layout, options=_select_options(args), overwrite=args.overwrite,
                             copy=args.copy, parity=args.parity, parity_layers=args.parity_layers, progress=stage)
        except CkptkitError as e:
            if getattr(e, "report", None) is not None:  # mapping or parity failure: show where, then the one line
                emit(args, e.report, inputs=(args.source,))
            raise
        bar.update(len(stages) - bar.n)
    emit(args, report, inputs=(args.source,))
    config_errors = report.pipeline_config.errors if report.pipeline_config is not None else ()
    for error in config_errors:
        print(f"ckpt-migrate: error: {error}", file=sys.stderr)
    if report.parity is not None and report.parity.verdict != "passed":  # inconclusive: nothing was proved
        print(f"ckpt-migrate: parity {report.parity.verdict}: {report.parity.explanation}", file=sys.stderr)
        return EXIT_FINDINGS
    return EXIT_FINDINGS if config_errors else EXIT_OK


def _inspect(args) -> int:
    from ._inspect import inspect  # noqa: PLC0415 - keep --help instant

    bar = None
    if args.stats:
        from ._formats import open_checkpoint  # noqa: PLC0415

        with open_checkpoint(args.path) as reader:
            total = sum(reader.spec(n).nbytes for n in reader.keys())
        bar = console.progress(total, "stats", "B", args.quiet)
    try:
        report = inspect(args.path, stats=args.stats, verify=args.verify, progress=bar and bar.update)
    finally:
        if bar is not None:
            bar.close()
    emit(args, report, inputs=(args.path,), depth=args.depth)
    return EXIT_FINDINGS if report.worst_severity == "error" else EXIT_OK


def main(argv=None) -> int:
    if hasattr(sys.stdout, "reconfigure"):  # file names need not be UTF-8; printing one must not fail
        sys.stdout.reconfigure(errors="backslashreplace")
    return run_guarded("ckpt-migrate", _parser().parse_args(argv), (CkptkitError,))


if __name__ == "__main__":
    sys.exit(main())
