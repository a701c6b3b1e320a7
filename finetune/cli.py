"""``ckpt-finetune``: parse arguments, call :func:`finetune.finetune` / :func:`finetune.evaluate`, print, exit.

Exit codes are those of every ckptkit tool (:mod:`reports.console`).  A
fine-tune checkpoint that does not fit prints its mapping (or restore) report
on stdout before the one-line error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from migrate.errors import CkptkitError
from reports import console, render
from reports.console import EXIT_FINDINGS, EXIT_OK, emit, run_guarded

CHECKPOINT_TYPES = ("classification", "detection", "full")
TASKS = ("detection", "classification")
MODES = ("finetune", "features", "domain_adversarial")


def _parser() -> argparse.ArgumentParser:
    parser = console.parser("ckpt-finetune", "Fine-tune converted checkpoints: SSD detection or classification, "
                                             "from a pipeline.config or flags.")
    commands = parser.add_subparsers(dest="command", required=True)
    tr = console.subcommand(commands, "train", "fine-tune, evaluate, and write the report into --out")
    _common(tr)
    _training_flags(tr)
    console.report_flags(tr)
    tr.set_defaults(run=_train)
    ev = console.subcommand(commands, "eval", "evaluate the latest checkpoint in --out on the eval/test splits")
    _common(ev)
    ev.add_argument("--checkpoint", type=Path, help="a checkpoint prefix to evaluate instead of the latest")
    ev.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                    help="do not write the metrics to TensorBoard (default: OUT/tensorboard/{eval,test})")
    console.report_flags(ev)
    ev.set_defaults(run=_eval)
    tf = console.subcommand(commands, "transfer", "train twice, from the fine-tune checkpoint and from scratch, and "
                                                  "compare (OUT/{finetuned,random}, OUT/transfer-report.*)")
    _common(tf)
    _training_flags(tf)
    tf.add_argument("--budget-seconds", type=float,
                    help="report the fine-tuned run's training time against this budget (never a failure: "
                         "time depends on the machine's load)")
    tf.add_argument("--target", type=float, help="a check: the fine-tuned run's test metric reaches this value")
    tf.add_argument("--overwrite", action="store_true", help="replace the runs of an earlier comparison")
    console.report_flags(tf)
    tf.set_defaults(run=_transfer)
    _validate_parser(commands)
    _export_parser(commands)
    return parser


def _export_parser(commands) -> None:
    ex = console.subcommand(commands, "export", "write OUT/saved_model (serving_default), OUT/checkpoint/ckpt-0 and "
                                                "OUT/pipeline.config, as the OD API's exporter_main_v2.py does")
    source = ex.add_mutually_exclusive_group(required=True)
    source.add_argument("--trained", type=Path, metavar="DIR", help="a fine-tuned run (its latest checkpoint)")
    source.add_argument("--checkpoint", type=Path, metavar="PREFIX",
                        help="a converted or TF2 zoo checkpoint (e.g. DIR/ckpt-0, DIR/checkpoint/ckpt-0)")
    ex.add_argument("--pipeline-config", type=Path, help="the config the model was trained or converted with")
    console.out_dir(ex, "the export directory (refused if it exists, unless --overwrite)")
    ex.add_argument("--task", choices=TASKS, default="detection")
    ex.add_argument("--input-type", default="image_tensor", choices=("image_tensor", "float_image_tensor",
                                                                    "encoded_image_string_tensor", "tf_example"),
                    help="what serving_default takes (default image_tensor: uint8 [N, H, W, 3])")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing export directory")
    _settings_flags(ex)
    console.report_flags(ex)
    ex.set_defaults(run=_export)


def _validate_parser(commands) -> None:
    va = console.subcommand(
        commands, "validate", "the dry run: every check train makes before touching data, as a table or JSON",
        description="Check a pipeline.config (and the flags train would get) without training: model support, "
                    "each setting's meaning in ckptkit, placeholders, paths, the label map against num_classes. "
                    "Exit 0 when nothing blocks a run (warnings and notes allowed), 1 with error findings, 2 when "
                    "the file cannot be read or parsed.")
    va.add_argument("--pipeline-config", type=Path, required=True, help="the OD API pipeline.config to check")
    va.add_argument("--task", choices=TASKS, default="detection")
    va.add_argument("--eval-only", action="store_true", help="check what eval needs (no training data or steps)")
    _settings_flags(va)
    g = va.add_argument_group("training")
    g.add_argument("--train-input-path", nargs="+", help="TFRecords (or globs) of the training split")
    g.add_argument("--num-steps", type=int)
    g.add_argument("--fine-tune-checkpoint", type=Path, help="TF1 (converted first) or TF2 checkpoint")
    g.add_argument("--from-scratch", action="store_true", help="ignore fine_tune_checkpoint")
    console.report_flags(va)
    va.set_defaults(run=_validate)


def _common(p) -> None:
    p.add_argument("--pipeline-config", type=Path, help="an OD API pipeline.config (without it: flags only)")
    console.out_dir(p, "the run directory: checkpoints, converted weights and reports go here (a rerun resumes)")
    p.add_argument("--task", choices=TASKS, default="detection")
    p.add_argument("--mode", choices=MODES, default="finetune",
                   help="classification: finetune (end to end), features (frozen backbone), domain_adversarial")
    p.add_argument("--skip-bad-records", action="store_true", help="skip and count damaged records instead of failing")
    p.add_argument("--strict", action="store_true", help="config settings ckptkit cannot honour are errors")
    p.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed (default 0)")
    _settings_flags(p)


def _settings_flags(p) -> None:
    g = p.add_argument_group("settings (override the pipeline.config, or replace it)")
    g.add_argument("--label-map-path", type=Path)
    g.add_argument("--eval-input-path", nargs="+", help="TFRecords (or globs) of the validation split")
    g.add_argument("--test-input-path", nargs="+", help="TFRecords of the test split (default: none)")
    g.add_argument("--num-classes", type=int)
    g.add_argument("--image-size", type=int, help="input height and width")
    g.add_argument("--feature-extractor", help="ssd_mobilenet_v1 or ssd_mobilenet_v2 (mobilenet_v1/v2 too)")
    g.add_argument("--depth-multiplier", type=float)
    g.add_argument("--eval-batch-size", type=int)
    g.add_argument("--num-examples", type=int, help="validation examples per evaluation")
    g.add_argument("--substitute", action="append", metavar="SETTING",
                   help="train although the config's SETTING (a proto path from the refusal, or a parent of it) "
                        "cannot be honoured, with ckptkit's default in its place; recorded in the report "
                        "(repeatable)")


def _training_flags(p) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--train-input-path", nargs="+", help="TFRecords (or globs) of the training split")
    g.add_argument("--num-steps", type=int, help="total steps (a rerun with more steps resumes)")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--learning-rate", type=float, help="base rate; the config's schedule keeps its shape")
    g.add_argument("--fine-tune-checkpoint", type=Path, help="TF1 (converted first) or TF2 checkpoint")
    g.add_argument("--checkpoint-type", choices=CHECKPOINT_TYPES, help="what to restore from it")
    g.add_argument("--from-scratch", action="store_true", help="ignore fine_tune_checkpoint: random initialisation")
    g.add_argument("--freeze", nargs="+", metavar="REGEX", help="variables matching these regexes stay fixed")
    g.add_argument("--stage", action="append", default=[], type=_stage, metavar="STEPS[:REGEX[:LR_MULT]]",
                   help="a gradual-unfreezing stage: STEPS steps with REGEX frozen too, learning rate times "
                        "LR_MULT (repeatable; the last stage lasts to the end)")
    g.add_argument("--grad-clip-norm", type=float, help="clip gradients to this global norm (0: off)")
    g.add_argument("--use-moving-average", dest="use_moving_average", action="store_true", default=None)
    g.add_argument("--no-moving-average", dest="use_moving_average", action="store_false")
    g.add_argument("--target-input-path", nargs="+", help="domain_adversarial: unlabeled target-domain TFRecords")
    g.add_argument("--eval-every", type=int, default=0, help="validate every N steps (default: at the end)")
    g.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop after PATIENCE evaluations "
                                                                           "without a better mAP@0.5 / accuracy")
    g.add_argument("--checkpoint-every", type=int, default=1000, help="save every N steps (and at the end)")
    g.add_argument("--log-every", type=int, default=100, help="log losses every N steps")
    g.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                   help="do not write TensorBoard events (default: OUT/tensorboard/{train,eval})")


def _stage(text: str):
    from finetune.engine import Stage  # noqa: PLC0415

    parts = text.split(":")
    try:
        steps = int(parts[0])
        multiplier = 1.0
        if len(parts) >= 3:
            multiplier = float(parts[-1])
            parts = parts[:-1]
        return Stage(steps, ":".join(parts[1:]), multiplier)
    except (ValueError, CkptkitError) as e:
        raise argparse.ArgumentTypeError(f"{text!r}: expected STEPS[:REGEX[:LR_MULT]] ({e})") from None


def _run_options(args) -> dict:
    """What ``train`` and ``transfer`` pass to :func:`finetune.finetune` besides the settings."""
    return dict(mode=args.mode, skip_bad_records=args.skip_bad_records, strict=args.strict, seed=args.seed,
                test_input_path=args.test_input_path, target_input_path=args.target_input_path,
                eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                early_stopping=args.early_stopping, stages=tuple(args.stage), tensorboard=args.tensorboard)


def _settings(args) -> dict:
    names = ("label_map_path", "eval_input_path", "num_classes", "image_size", "feature_extractor",
             "depth_multiplier", "eval_batch_size", "num_examples", "train_input_path", "num_steps", "batch_size",
             "learning_rate", "fine_tune_checkpoint", "grad_clip_norm", "use_moving_average")
    settings = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if getattr(args, "checkpoint_type", None):
        settings["fine_tune_checkpoint_type"] = args.checkpoint_type
    if getattr(args, "freeze", None):
        settings["freeze_variables"] = tuple(args.freeze)
    if getattr(args, "substitute", None):
        settings["substitute"] = tuple(args.substitute)
    return settings


def _train(args) -> int:
    from finetune import finetune  # noqa: PLC0415

    report = _guarded_report(args, lambda: finetune(
        args.pipeline_config, model_dir=args.out, task=args.task, from_scratch=args.from_scratch,
        **_run_options(args), **_settings(args)))
    emit(args, report)
    return EXIT_OK


def _transfer(args) -> int:
    from finetune import compare_transfer  # noqa: PLC0415

    report = _guarded_report(args, lambda: compare_transfer(
        args.pipeline_config, model_dir=args.out, task=args.task, overwrite=args.overwrite,
        budget_seconds=args.budget_seconds, target=args.target, **_run_options(args), **_settings(args)))
    emit(args, report)
    return EXIT_OK if report.passed else EXIT_FINDINGS


def _eval(args) -> int:
    from finetune import evaluate  # noqa: PLC0415

    report = _guarded_report(args, lambda: evaluate(
        args.pipeline_config, model_dir=args.out, task=args.task, mode=args.mode,
        skip_bad_records=args.skip_bad_records, strict=args.strict, seed=args.seed,
        test_input_path=args.test_input_path, checkpoint=args.checkpoint, tensorboard=args.tensorboard,
        **_settings(args)))
    emit(args, report)
    return EXIT_OK


def _validate(args) -> int:
    from finetune import validate  # noqa: PLC0415

    report = validate(args.pipeline_config, task=args.task, training=not args.eval_only,
                      from_scratch=args.from_scratch, **_settings(args))
    emit(args, report)
    return EXIT_OK if report.passed else EXIT_FINDINGS


def _export(args) -> int:
    from finetune import export  # noqa: PLC0415

    report = export(out=args.out, trained=args.trained, checkpoint=args.checkpoint, config_path=args.pipeline_config,
                    task=args.task, input_type=args.input_type, overwrite=args.overwrite, **_settings(args))
    emit(args, report)
    return EXIT_OK


def _guarded_report(args, call):
    """Run ``call``; an error that carries a report (mapping, restore) prints it before the one-line error."""
    try:
        return call()
    except CkptkitError as e:
        report = getattr(e, "report", None)
        if report is not None:
            print(render(report, args.format) if getattr(type(report), "kind", "") in ("map", "convert")
                  else report.describe())
        raise


def main(argv=None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    args = _parser().parse_args(argv)
    console.log_to_stderr("ckpt-finetune", args.quiet)
    return run_guarded("ckpt-finetune", args, (CkptkitError,))


if __name__ == "__main__":
    sys.exit(main())
