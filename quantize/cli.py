"""``ckpt-quantize``: parse arguments, call the :mod:`quantize` library, print, exit.

Subcommands: ``prune``, ``qat``, ``export``, ``eval`` and ``run`` (all of them
in one go).  The model is ``--trained`` (a ckpt-finetune run, with the
pipeline.config / flags it was trained with) or ``--keras-model`` (a saved
tf_keras classifier, with the data flags).  Exit codes are those of every
ckptkit tool (:mod:`reports.console`); an error is one line on stderr naming
the layer, file or signature.  Outputs are staged and renamed into place.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reports import console
from reports.console import EXIT_BAD_INPUT, EXIT_OK, emit, run_guarded, write


def _parser() -> argparse.ArgumentParser:
    parser = console.parser("ckpt-quantize", "Prune, quantization-aware train and post-training quantize a "
                                             "fine-tuned model; export SavedModel and TFLite variants; report "
                                             "accuracy, size and latency.")
    commands = parser.add_subparsers(dest="command", required=True)
    pr = console.subcommand(commands, "prune", "magnitude pruning fine-tuned through the engine, then strip_pruning")
    _source(pr), _pruning(pr), _out(pr, "working directory: engine checkpoints (resume), then OUT/model")
    pr.set_defaults(run=_prune)
    qa = console.subcommand(commands, "qat", "quantization-aware training through the engine")
    _source(qa), _qat(qa), _out(qa, "working directory: engine checkpoints (resume), then OUT/model")
    qa.add_argument("--from-pruned", type=Path, help="a prune OUT: sparsity-preserving QAT of the pruned model")
    qa.set_defaults(run=_qat_cmd)
    ex = console.subcommand(commands, "export", "SavedModel + one .tflite per variant into --out")
    _source(ex), _export_flags(ex), _out(ex, "the export directory (staged; --overwrite replaces it)")
    ex.set_defaults(run=_export)
    ev = console.subcommand(commands, "eval", "run every exported variant on the test split; write the report")
    ev.add_argument("export_dir", type=Path, help="an export directory (ckpt-quantize export --out)")
    _source(ev), _eval_flags(ev)
    console.report_flags(ev)
    ev.set_defaults(run=_eval)
    rn = console.subcommand(commands, "run", "prune, QAT, prune+QAT, export and eval, into OUT/{prune,qat,prune_qat,export}")
    _source(rn), _pruning(rn), _qat(rn), _export_flags(rn, variants=False), _eval_flags(rn)
    _out(rn, "the working directory")
    rn.add_argument("--skip", nargs="+", default=[], choices=("prune", "qat", "prune_qat"), help="steps to leave out")
    rn.set_defaults(run=_run)
    return parser


def _source(p) -> None:
    g = p.add_argument_group("the model and its data")
    g.add_argument("--trained", type=Path, metavar="DIR", help="a ckpt-finetune run (the directory its --out named) or a "
                   "ckpt-finetune export directory (its pipeline.config and checkpoint/ckpt-0)")
    g.add_argument("--keras-model", type=Path, help="or: a saved tf_keras classifier (.h5 or SavedModel directory)")
    g.add_argument("--task", choices=("classification", "detection"), default="classification")
    g.add_argument("--pipeline-config", type=Path, help="the pipeline.config the run was trained with")
    g.add_argument("--label-map-path", type=Path)
    g.add_argument("--train-input-path", nargs="+", help="training TFRecords (fine-tuning, calibration)")
    g.add_argument("--eval-input-path", nargs="+", help="validation TFRecords")
    g.add_argument("--test-input-path", nargs="+", help="test TFRecords (evaluation)")
    g.add_argument("--image-size", type=int)
    g.add_argument("--feature-extractor")
    g.add_argument("--depth-multiplier", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--eval-batch-size", type=int)
    g.add_argument("--skip-bad-records", action="store_true")
    g.add_argument("--seed", type=int, default=0)


def _out(p, text: str) -> None:
    console.out_dir(p, text)
    p.add_argument("--overwrite", action="store_true", help="replace an existing export directory (and --output)")
    console.report_flags(p)


def _pruning(p) -> None:
    g = p.add_argument_group("pruning")
    g.add_argument("--prune-steps", type=int, default=200, help="fine-tuning steps while pruning")
    g.add_argument("--prune-learning-rate", type=float, default=1e-4)
    g.add_argument("--target-sparsity", type=float, default=0.5)
    g.add_argument("--schedule", choices=("polynomial", "constant"), default="polynomial")
    g.add_argument("--layer-sparsity", action="append", default=[], metavar="REGEX=SPARSITY",
                   help="target for layers matching REGEX (first match wins; 0 keeps them dense)")
    g.add_argument("--m-by-n", metavar="M:N", help="structured sparsity, e.g. 2:4")
    g.add_argument("--tensorboard", action="store_true", help="TensorBoard events under OUT/tensorboard")


def _qat(p) -> None:
    g = p.add_argument_group("quantization-aware training")
    g.add_argument("--qat-steps", type=int, default=100)
    g.add_argument("--qat-learning-rate", type=float, default=1e-5)
    g.add_argument("--strict", action="store_true", help="a layer tfmot cannot quantize is an error")
    if not any(a.dest == "tensorboard" for a in p._actions):  # noqa: SLF001
        g.add_argument("--tensorboard", action="store_true", help="TensorBoard events under OUT/tensorboard")


def _export_flags(p, variants: bool = True) -> None:
    g = p.add_argument_group("export")
    if variants:
        g.add_argument("--variants", nargs="+", help="default: float32 dynamic int8 float16, plus those the given "
                                                     "pruned / QAT models allow")
        g.add_argument("--pruned", type=Path, help="a prune OUT")
        g.add_argument("--qat", type=Path, help="a qat OUT")
        g.add_argument("--prune-qat", type=Path, help="a qat --from-pruned OUT")
    g.add_argument("--int8-io", action="store_true", help="full-integer variants take and return int8")
    g.add_argument("--per-tensor", action="store_true", help="int8 variants: one scale per tensor (smaller)")
    g.add_argument("--representative-examples", type=int, default=100, help="calibration images (training split)")
    g.add_argument("--representative-data", type=Path, help="an .npy [N, H, W, 3] of calibration images instead")


def _eval_flags(p) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument("--runs", type=int, default=50, help="timed runs per variant and thread count (>= 50)")
    g.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    g.add_argument("--interpreter", choices=("litert", "tf.lite"), help="default: LiteRT, else tf.lite")


# ----------------------------------------------------------------- commands
def _settings(args) -> dict:
    names = ("label_map_path", "train_input_path", "eval_input_path", "test_input_path", "batch_size",
             "eval_batch_size", "skip_bad_records", "seed")
    settings = {n: getattr(args, n) for n in names if getattr(args, n, None) not in (None, False)}
    if args.trained is not None:
        for name in ("image_size", "feature_extractor", "depth_multiplier"):
            if getattr(args, name) is not None:
                settings[name] = getattr(args, name)
        if args.pipeline_config is not None:
            settings["config_path"] = args.pipeline_config
    return settings


def _task(args):
    from quantize import load  # noqa: PLC0415

    return load(args.task, model_dir=args.trained, keras_model=args.keras_model, **_settings(args))


def _prune_config(args):
    from quantize import PruneConfig, QuantizeError  # noqa: PLC0415

    layers = []
    for item in args.layer_sparsity:
        pattern, _, value = item.rpartition("=")
        try:
            layers.append((pattern, float(value)))
        except ValueError:
            raise QuantizeError(f"--layer-sparsity {item!r}: expected REGEX=SPARSITY, e.g. '^conv_pw_1[0-3]=0.7'") \
                from None
    m_by_n = None
    if args.m_by_n:
        try:
            m_by_n = tuple(int(x) for x in args.m_by_n.split(":"))
        except ValueError:
            m_by_n = ()
        if len(m_by_n) != 2:
            raise QuantizeError(f"--m-by-n {args.m_by_n!r}: expected M:N, e.g. 2:4")
    return PruneConfig(args.target_sparsity, args.schedule, layer_sparsity=tuple(layers), m_by_n=m_by_n)


def _do_prune(args, task, out: Path):
    from quantize import prune  # noqa: PLC0415
    from quantize._stages import save  # noqa: PLC0415

    result = prune(task, out, steps=args.prune_steps, learning_rate=args.prune_learning_rate,
                   config=_prune_config(args), tensorboard=args.tensorboard)
    save(result, out, "pruned")
    return result


def _do_qat(args, task, out: Path, base=None):
    from quantize import qat  # noqa: PLC0415
    from quantize._stages import save  # noqa: PLC0415

    result = qat(task, out, steps=args.qat_steps, learning_rate=args.qat_learning_rate, strict=args.strict,
                 model=base.model if base is not None else None, preserve_sparsity=base is not None,
                 tensorboard=args.tensorboard)
    save(result, out, "qat")
    return result


def _prune(args) -> int:
    task = _task(args)
    result = _do_prune(args, task, args.out)
    _print_stage(args, {"model": str(args.out / "model"), "overall_sparsity": result.overall_sparsity,
                        "layers": {r.layer: r.sparsity for r in result.layers},
                        "kept_dense": dict(result.skipped)})
    return EXIT_OK


def _qat_cmd(args) -> int:
    from quantize._stages import load  # noqa: PLC0415

    task = _task(args)
    base = load(args.from_pruned, "pruned") if args.from_pruned else None
    result = _do_qat(args, task, args.out, base)
    _print_stage(args, {"model": str(args.out / "model"), "annotated": len(result.annotated),
                        "unsupported": dict(result.unsupported), "preserve_sparsity": result.preserve_sparsity})
    for name, reason in result.unsupported:
        print(f"ckpt-quantize: warning: layer {name} left float: {reason}", file=sys.stderr)
    return EXIT_OK


def _print_stage(args, data: dict) -> None:
    """A stage's summary: JSON, or ``key: value`` lines (text, Markdown and HTML alike: it has no report)."""
    if args.format == "json":
        write(args, json.dumps(data, indent=2))
    else:
        write(args, "\n".join(f"{key}: {value}" for key, value in data.items()))


def _export(args) -> int:
    from quantize import export  # noqa: PLC0415
    from quantize._stages import load  # noqa: PLC0415

    task = _task(args)
    stages = {name: load(getattr(args, name), kind) if getattr(args, name) else None
              for name, kind in (("pruned", "pruned"), ("qat", "qat"), ("prune_qat", "qat"))}
    result = export(task, args.out, variants=args.variants, int8_io=args.int8_io, per_channel=not args.per_tensor,
                    representative_examples=args.representative_examples,
                    representative_data=args.representative_data, overwrite=args.overwrite, **stages)
    _print_stage(args, {"out": result.out, "saved_model": result.saved_model,
                        "variants": {n: v.file for n, v in result.variants.items()}})
    return EXIT_OK


def _evaluate(args, task, export_dir: Path):
    from quantize import evaluate  # noqa: PLC0415

    report = evaluate(task, export_dir, runs=args.runs, threads=tuple(args.threads), backend=args.interpreter)
    emit(args, report, inputs=(export_dir,))
    return report


def _eval(args) -> int:
    _evaluate(args, _task(args), args.export_dir)
    return EXIT_OK


def _run(args) -> int:
    from quantize import export  # noqa: PLC0415

    task = _task(args)
    out = args.out
    pruned = _do_prune(args, task, out / "prune") if "prune" not in args.skip else None
    qat = _do_qat(args, task, out / "qat") if "qat" not in args.skip else None
    prune_qat = _do_qat(args, task, out / "prune_qat", pruned) if pruned and "prune_qat" not in args.skip else None
    export(task, out / "export", pruned=pruned, qat=qat, prune_qat=prune_qat, int8_io=args.int8_io,
           per_channel=not args.per_tensor,
           representative_examples=args.representative_examples, representative_data=args.representative_data,
           overwrite=args.overwrite)
    _evaluate(args, task, out / "export")
    return EXIT_OK


def main(argv=None) -> int:
    from migrate.errors import CkptkitError  # noqa: PLC0415

    args = _parser().parse_args(argv)
    console.log_to_stderr("ckpt-quantize", args.quiet)
    if (args.trained is None) == (args.keras_model is None):
        print("ckpt-quantize: error: give exactly one model: --trained (a ckpt-finetune run) or --keras-model",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    return run_guarded("ckpt-quantize", args, (CkptkitError,))


if __name__ == "__main__":
    sys.exit(main())
