"""``finetune`` and ``evaluate``: one fine-tuning run from a pipeline.config (or flags) to a report.

Order of work, cheapest checks first: the config (parse, ranges, paths,
placeholders), the label map against num_classes, every record of every
split; then the fine-tune checkpoint (converted if it is TF1), the task on
its backbone, the engine's training loop (restore, freeze, schedule, stages,
clipping, validation, checkpoints, resume), the test split, and the report
(``finetune-report.json`` / ``.md`` in ``model_dir``).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from finetune.config import PipelineConfig
from reports import (
    BestValue, ConfigNote, FinetuneReport, MetricsAt, RestoreSummary, SplitRecords, defined_metrics, group_names, render,
)

from . import _checkpoint, _inputs, _model, _settings
from ._configure import configure, set_by_flags
from ._errors import FinetuneError
from ._validate import substituted
from .engine import with_progress

REPORT = "finetune-report"
EVAL_REPORT = "eval-report"
BEST_METRIC = {"detection": "mAP@0.5", "classification": "accuracy"}


@dataclass(frozen=True)
class RunOptions:
    """What a run does besides the pipeline.config settings."""

    task: str = "detection"
    mode: str = "finetune"
    skip_bad_records: bool = False
    seed: int = 0
    test_input_path: object = None
    target_input_path: object = None
    eval_every: int = 0
    checkpoint_every: int = 1000
    log_every: int = 100
    early_stopping: int | None = None  # patience, in evaluations
    stages: tuple = ()
    tensorboard: bool = True

    def __post_init__(self):
        if self.task not in _model.TASKS:
            raise FinetuneError(f"task {self.task!r}: choose one of {', '.join(_model.TASKS)}")
        if self.mode not in _model.MODES:
            raise FinetuneError(f"mode {self.mode!r}: choose one of {', '.join(_model.MODES)}")
        if self.task == "detection" and self.mode != "finetune":
            raise FinetuneError(f"mode {self.mode!r} is a classification mode; detection fine-tunes (mode finetune)")
        if self.mode == "domain_adversarial" and not self.target_input_path:
            raise FinetuneError("mode domain_adversarial needs unlabeled target-domain images: pass "
                                "--target-input-path (TFRecords of OD API or classification examples)")


def finetune(config_path=None, *, model_dir, task: str = "detection", mode: str = "finetune",
             skip_bad_records: bool = False, strict: bool = False, from_scratch: bool = False, seed: int = 0,
             test_input_path=None, target_input_path=None, eval_every: int = 0, checkpoint_every: int = 1000,
             log_every: int = 100, early_stopping: int | None = None, stages=(), tensorboard: bool = True,
             **settings) -> FinetuneReport:
    """Fine-tune as ``config_path`` (a pipeline.config) and ``settings`` say; return and write the report.

    ``settings``: the pipeline.config overrides (``num_steps``, ``batch_size``,
    ``learning_rate``, ``fine_tune_checkpoint``, ``fine_tune_checkpoint_type``,
    ``freeze_variables``, ``train_input_path``, ``label_map_path``, ...; see
    :func:`finetune.config.overrides`) and ``feature_extractor``,
    ``depth_multiplier``, ``grad_clip_norm``, ``eval_batch_size``.  ``stages``:
    :class:`finetune.engine.Stage` values (gradual unfreezing).  Bad config,
    data or checkpoints raise :class:`~migrate.errors.CkptkitError` subclasses.
    """
    started = time.perf_counter()
    run = RunOptions(task, mode, skip_bad_records, seed, test_input_path, target_input_path, eval_every,
                     checkpoint_every, log_every, early_stopping, tuple(stages), tensorboard)
    config = configure(config_path, task=task, strict=strict, from_scratch=from_scratch, **settings)
    source = config.path("train_config.fine_tune_checkpoint") if config.train_config.fine_tune_checkpoint else None
    warnings: list[str] = []
    backbone = _settings.backbone_of(config)
    ssd = _settings.detector_config(config, warnings) if task == "detection" else None
    optimizer = _settings.optimizer_config(config, warnings)
    schedule = _settings.schedule_spec(config, warnings)
    inputs = _inputs.build_inputs(config, task, backbone, skip_bad_records=skip_bad_records, seed=seed,
                                  test_paths=test_input_path, target_paths=target_input_path, warnings=warnings)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    prepared = _fine_tune_checkpoint(source, config, backbone, model_dir)
    warnings += prepared.warnings if prepared else ()
    task_obj, strategy = _build_task(run, backbone, ssd, inputs, config)
    report, train_seconds = _train(run, config, task_obj, strategy, inputs, prepared, (optimizer, schedule),
                                   model_dir)
    test_name, test_metrics = _test(run, task_obj, inputs, report)
    result = _report(config, run, model_dir, backbone, inputs, prepared, report, test_name, test_metrics,
                     warnings, time.perf_counter() - started, train_seconds)
    write_report(result, model_dir / REPORT)
    return result


def _fine_tune_checkpoint(source, config: PipelineConfig, backbone, model_dir: Path):
    """The prepared checkpoint, or None (random initialisation, or resuming: the engine restores its own)."""
    if source is None or _has_checkpoint(model_dir):
        return None
    return _checkpoint.prepare(source, backbone, config.train_config.checkpoint_type, model_dir)


def _has_checkpoint(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a training checkpoint (the engine then resumes from it)."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    return bool(tensorflow().train.latest_checkpoint(str(model_dir)))


def _build_task(run: RunOptions, backbone, ssd, inputs, config: PipelineConfig):
    from finetune.engine import choose_strategy  # noqa: PLC0415

    strategy = choose_strategy()
    with strategy.scope():
        if run.task == "detection":
            task = _model.build_detection(ssd, inputs.label_map, run.seed)
        else:
            task = _model.build_classification(backbone, inputs.label_map, run.mode,
                                               total_steps=config.train_config.num_steps,
                                               freeze_batchnorm=config.model.freeze_batchnorm, seed=run.seed)
    return task, strategy


def _train(run: RunOptions, config: PipelineConfig, task, strategy, inputs, prepared, how, model_dir: Path):
    from finetune.engine import EarlyStopping, RestoreError, TrainOptions, build_schedule, train  # noqa: PLC0415

    optimizer, (kind, params) = how
    tc = config.train_config
    freeze = tuple(tc.freeze_variables) + ((_model.backbone_pattern(task),) if run.mode == "features" else ())
    has_eval = inputs.eval is not None
    options = TrainOptions(
        schedule=build_schedule(kind, **params), optimizer=optimizer, eval_every=run.eval_every if has_eval else 0,
        early_stopping=EarlyStopping(run.early_stopping or 10 ** 9, BEST_METRIC[run.task], "max") if has_eval else None,
        grad_clip_norm=_settings.grad_clip_norm(config), stages=run.stages,
        update_trainable_variables=tuple(tc.update_trainable_variables), freeze_variables=freeze,
        tensorboard_dir=str(model_dir / "tensorboard") if run.tensorboard else None, log_every=run.log_every,
        checkpoint_every=run.checkpoint_every, fine_tune_checkpoint=prepared.path if prepared else None,
        fine_tune_checkpoint_type=prepared.restore_type if prepared else "classification",
        text_summaries=_config_text(config) + _substitution_text(config))
    features = task if run.mode == "features" else None
    eval_fn = (lambda: _inputs.eval_dataset(inputs.eval, run.task, inputs.eval_batches)) if has_eval else None
    started = time.perf_counter()
    try:
        report = train(task, _inputs.train_fn(inputs, run.task, features=features), steps=tc.num_steps,
                       checkpoint_dir=model_dir, eval_dataset_fn=eval_fn, strategy=strategy, options=options)
    except RestoreError as e:
        raise FinetuneError(f"fine_tune_checkpoint {prepared.source if prepared else ''}: {e}", e.report) from e
    return report, time.perf_counter() - started


def _test(run: RunOptions, task, inputs, report) -> tuple[str, dict]:
    """Metrics on the test split; without one, the last validation (named as such)."""
    if inputs.test is not None:
        return inputs.test_name, task.evaluate(_inputs.eval_dataset(inputs.test, run.task))
    if report is not None and report.metrics_history:
        files = ", ".join(Path(p).name for p in inputs.eval.index.paths)
        return f"{files} (the eval split: no test split given)", dict(report.metrics_history[-1].metrics)
    return "", {}


# ----------------------------------------------------------------- the report
def _report(config, run, model_dir, backbone, inputs, prepared, report, test_name, test_metrics, warnings,
            seconds, train_seconds) -> FinetuneReport:
    restore = _restore_summary(prepared, report.restore) if report.restore is not None else \
        _earlier_restore(model_dir) if report.resumed_from else None
    best = report.best_metric
    return FinetuneReport(
        config=config.source, model_dir=str(model_dir), task=run.task, mode=run.mode, backbone=backbone.describe(),
        num_classes=_num_classes(config, run.task, inputs), start_step=report.start_step, steps=report.steps,
        seconds=round(seconds, 2), train_seconds=round(train_seconds, 2),
        steps_per_sec=report.steps_per_sec, restore=restore, resumed_from=report.resumed_from,
        final_losses=defined_metrics(report.final_losses),
        metrics_history=tuple(MetricsAt(e.step, defined_metrics(e.metrics)) for e in report.metrics_history),
        best_metric=BestValue(best.name, defined_metrics({"v": best.value})["v"], best.step) if best else None,
        stopped_early=report.stopped_early, stop_reason=getattr(report, "stop_reason", None),
        test_split=test_name, test_metrics=defined_metrics(test_metrics),
        records=_records(inputs), findings=_notes(config), warnings=tuple(warnings) + tuple(report.warnings),
        checkpoint=report.checkpoint, substitutions=substituted(config), curves=_curves(model_dir))


CURVE_POINTS = 200


def _curves(model_dir: Path) -> dict[str, tuple[tuple[int, float | None], ...]]:
    """The run's losses and learning rate by step (``history.json``, the engine's record), as window means of
    at most ``CURVE_POINTS`` points each, for the report's plots."""
    try:
        history = json.loads((model_dir / "history.json").read_text())
    except (OSError, ValueError):
        return {}
    series = {f"loss/{k}": v for k, v in history.get("losses", {}).items()}
    series["learning_rate"] = history.get("learning_rates", [])
    return {name: _window_means(values) for name, values in series.items() if values}


def _window_means(values: list) -> tuple[tuple[int, float | None], ...]:
    width = max(1, -(-len(values) // CURVE_POINTS))
    out = []
    for start in range(0, len(values), width):
        window = [v for v in values[start:start + width] if v is not None and math.isfinite(v)]
        out.append((min(start + width, len(values)), sum(window) / len(window) if window else None))
    return tuple(out)


def _config_text(config: PipelineConfig) -> tuple[tuple[str, str], ...]:
    """The run's config for TensorBoard's text dashboard: the pipeline.config read, and the settings flags
    replaced in it."""
    out = []
    if config.source and Path(config.source).is_file():
        text = Path(config.source).read_text(errors="replace")
        indented = "\n".join(f"    {line}" for line in text.splitlines())  # a Markdown code block
        out.append(("config/pipeline", f"`{config.source}`\n\n{indented}"))
    flags = set_by_flags(config)
    if flags:
        out.append(("config/flags", "\n".join(f"* `{path}` set by `{origin}`" for path, origin in flags)))
    return tuple(out)


def _substitution_text(config: PipelineConfig) -> tuple[tuple[str, str], ...]:
    """The settings this run replaces on request, for TensorBoard's text dashboard (none: no summary)."""
    names = substituted(config)
    lines = [f"* `{f.path}` ({f.file}:{f.line}:{f.col}): {f.message}" for f in config.findings if f.path in names]
    return (("config/substitutions", "\n".join(lines)),) if lines else ()


def _eval_summaries(task, model_dir: Path, step: int, history, test_metrics: dict, enabled: bool) -> None:
    from finetune.engine import Summaries  # noqa: PLC0415

    summaries = Summaries(model_dir / "tensorboard", enabled, getattr(task, "tensorboard_tag", None),
                          kinds=("eval", "test"))
    for kind, metrics in (("eval", history[0].metrics if history else {}), ("test", test_metrics)):
        summaries.scalars(kind, step, {k: v for k, v in metrics.items() if v is not None})
    summaries.close()


def recorded_substitutions(model_dir, settings: dict) -> dict:
    """``settings`` with the ``--substitute`` names the run in ``model_dir`` was trained with, unless given:
    evaluating or exporting a run rebuilds the model it trained."""
    if settings.get("substitute"):
        return settings
    from reports import load_report  # noqa: PLC0415

    try:
        earlier = load_report(Path(model_dir) / f"{REPORT}.json")
    except (OSError, ValueError):
        return settings
    names = tuple(getattr(earlier, "substitutions", ()))
    return {**settings, "substitute": names} if names else settings


def _num_classes(config, task: str, inputs) -> int:
    return config.model.num_classes if task == "detection" else len(inputs.label_map.items)


def _restore_summary(prepared, restored) -> RestoreSummary:
    return RestoreSummary(
        source=prepared.source if prepared else restored.checkpoint,
        source_format=prepared.source_format if prepared else "tf2-object", checkpoint=restored.checkpoint,
        checkpoint_type=restored.checkpoint_type, converted=bool(prepared and prepared.converted),
        restored=len(restored.restored), initialised=len(restored.initialised), unused=len(restored.unused),
        restored_names=tuple(group_names(list(restored.restored), max_items=8)),
        initialised_names=tuple(group_names(list(restored.initialised), max_items=8)))


def _earlier_restore(model_dir: Path) -> RestoreSummary | None:
    """A resumed run's starting weights: what the earlier run's report says they were."""
    from reports import load_report  # noqa: PLC0415

    try:
        earlier = load_report(model_dir / f"{REPORT}.json")
    except (OSError, ValueError):
        return None
    return getattr(earlier, "restore", None)


def _records(inputs) -> tuple[SplitRecords, ...]:
    out = []
    for name, data in inputs.splits():
        s = data.stats
        out.append(SplitRecords(name, tuple(data.index.paths), s.records, s.used, dict(s.skipped), tuple(s.problems),
                                s.objects, s.truncated_boxes))
    return tuple(out)


def _notes(config: PipelineConfig) -> tuple[ConfigNote, ...]:
    return tuple(ConfigNote(f.severity, f.code, f.path, f.message, f"{f.file}:{f.line}:{f.col}" if f.line else f.file)
                 for f in config.findings)


def write_report(report, stem: Path) -> None:
    """``stem.json``, ``stem.md`` and ``stem.html`` (with plots), each written to a temporary name and renamed:
    a kill leaves the old report or the new one, never half of one."""
    for suffix, fmt in ((".json", "json"), (".md", "markdown"), (".html", "html")):
        path = stem.with_suffix(suffix)
        partial = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        partial.write_text(render(report, fmt) + "\n", errors="backslashreplace")
        os.replace(partial, path)


# ----------------------------------------------------------------- evaluation of a trained model
def evaluate(config_path=None, *, model_dir, task: str = "detection", mode: str = "finetune",
             skip_bad_records: bool = False, strict: bool = False, seed: int = 0, test_input_path=None,
             checkpoint=None, tensorboard: bool = True, **settings) -> FinetuneReport:
    """Evaluate the latest checkpoint in ``model_dir`` (or ``checkpoint``) on the eval and test splits; the
    metrics also go to TensorBoard (``model_dir/tensorboard/{eval,test}``, at the checkpoint's step)."""
    started = time.perf_counter()
    run = RunOptions(task, mode if mode != "domain_adversarial" else "finetune", skip_bad_records, seed,
                     test_input_path, None)
    config = configure(config_path, task=task, strict=strict, training=False,
                       **recorded_substitutions(model_dir, settings))
    warnings: list[str] = []
    backbone = _settings.backbone_of(config)
    ssd = _settings.detector_config(config, warnings) if task == "detection" else None
    optimizer = _settings.optimizer_config(config, [])
    inputs = _inputs.build_inputs(config, task, backbone, train=False, skip_bad_records=skip_bad_records,
                                  seed=seed, test_paths=test_input_path, warnings=warnings)
    if inputs.eval is None and inputs.test is None:
        raise FinetuneError("nothing to evaluate: the config has no eval_input_reader; set one or pass "
                            "--eval-input-path / --test-input-path")
    task_obj, _ = _build_task(run, backbone, ssd, inputs, config)
    path, step = _restore_trained(task_obj, Path(model_dir), checkpoint, optimizer)
    history = ()
    if inputs.eval is not None:
        metrics = task_obj.evaluate(with_progress(_inputs.eval_dataset(inputs.eval, task, inputs.eval_batches),
                                                  "evaluate"))
        history = (MetricsAt(step, defined_metrics(metrics)),)
    test_name, test_metrics = ("", {})
    if inputs.test is not None:
        test_name, test_metrics = inputs.test_name, task_obj.evaluate(
            with_progress(_inputs.eval_dataset(inputs.test, task), f"test ({inputs.test_name})"))
    result = FinetuneReport(
        config=config.source, model_dir=str(model_dir), task=task, mode="eval", backbone=backbone.describe(),
        num_classes=_num_classes(config, task, inputs), start_step=step, steps=step,
        seconds=round(time.perf_counter() - started, 2), metrics_history=history, test_split=test_name,
        test_metrics=defined_metrics(test_metrics), records=_records(inputs), findings=_notes(config),
        warnings=tuple(warnings), checkpoint=path, substitutions=substituted(config))
    _eval_summaries(task_obj, Path(model_dir), step, history, test_metrics, tensorboard)
    write_report(result, Path(model_dir) / EVAL_REPORT)
    return result


def restore_model(task, checkpoint) -> str:
    """The model alone from a checkpoint prefix (a conversion, a TF2 zoo or exported ``checkpoint/ckpt-0``), as
    the OD API's exporter restores one: ``Checkpoint(model=m).restore(p).expect_partial()``, every model
    variable found."""
    from finetune.engine import checkpointed  # noqa: PLC0415
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    prefix = str(checkpoint)
    try:
        status = tf.train.Checkpoint(model=checkpointed(task)).restore(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.NotFoundError) as e:
        first = str(e).strip().splitlines()[0][:240] if str(e).strip() else type(e).__name__
        raise FinetuneError(f"{prefix}: does not restore into the model the config builds ({first}); use the "
                            "pipeline.config it was converted, trained or exported with") from None
    return prefix


def exported_checkpoint(model_dir: Path) -> str | None:
    """The checkpoint of a ``ckpt-finetune export`` directory (``saved_model/`` beside ``checkpoint/``)."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    if not ((model_dir / "saved_model").is_dir() and (model_dir / "checkpoint").is_dir()):
        return None
    return tensorflow().train.latest_checkpoint(str(model_dir / "checkpoint"))


def _restore_trained(task, model_dir: Path, checkpoint, optimizer_config) -> tuple[str, int]:
    """Load a training checkpoint (model, optimizer, step) into ``task``; EMA weights when it kept them."""
    from finetune.engine import build_optimizer, checkpointed  # noqa: PLC0415
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    path = str(checkpoint) if checkpoint else tf.train.latest_checkpoint(str(model_dir))
    if not path:
        raise FinetuneError(f"{model_dir}: no training checkpoint (no `checkpoint` state file); train first with "
                            "ckpt-finetune train, or pass --checkpoint")
    optimizer = build_optimizer(optimizer_config)
    variables = list(task.model.trainable_variables)
    optimizer.build(variables)
    step = tf.Variable(0, dtype=tf.int64)
    status = tf.train.Checkpoint(model=checkpointed(task), optimizer=optimizer, step=step).restore(path)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as e:
        raise FinetuneError(f"{path}: the checkpoint does not fit the model this config builds ({str(e)[:200]}); "
                            "evaluate with the pipeline.config and flags it was trained with") from None
    if optimizer_config.use_ema:
        optimizer.finalize_variable_values(variables)
    return path, int(step.numpy())
