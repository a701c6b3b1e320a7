"""Everything ``train`` checks before touching data, as findings: the dry run of ``ckpt-finetune validate``.

One pass, every problem, in the order a user fixes them: model support first
(nothing else matters for a model ckptkit cannot build), then paths still
holding the zoo's placeholder, then settings ckptkit would have to replace,
then paths that lead nowhere, then the label map against ``num_classes``.
``train`` refuses on the first three groups with one line per problem
(:func:`refuse_unusable`); ``validate`` checks the files as well and reports
the reader's other findings too.  No TensorFlow.

A config is never silently reinterpreted: every reader finding of severity
``error`` (a setting ckptkit cannot honour, a misspelled field) refuses the
run unless the user names it with ``--substitute PATH`` (the setting or a
parent of it), which turns it into a ``substituted`` warning: kept in the
run's findings, its report and its TensorBoard text.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from finetune.config import ConfigError, Finding, PipelineConfig, flag_hint
from finetune.data import load_label_map

from ._settings import unbuildable

SUPPORT, PLACEHOLDER, MISSING, LABEL_MAP, NOT_SET = "unsupported_model", "placeholder", "missing_path", \
    "label_map", "not_set"
SUBSTITUTABLE = ("unknown_field", "unsupported")  # reader error findings --substitute may accept
SUBSTITUTED, SUBSTITUTE = "substituted", "substitute"  # an accepted one; a --substitute that names nothing
_TRAIN_ONLY = ("train_config.fine_tune_checkpoint", "train_input_reader.tf_record_input_reader.input_path")


def _finding(config: PipelineConfig, code: str, path: str, message: str, origin: str = "") -> Finding:
    """An error finding at the ``file:line:col`` the setting came from (or the file, or the flag)."""
    origin = origin or config.origins.get(path, "")
    file, line, col = (origin.rsplit(":", 2) + ["", ""])[:3] if origin.count(":") >= 2 else (origin, "", "")
    return Finding("error", code, path, message, file or config.source or "the flags",
                   int(line) if line.isdigit() else 0, int(col) if col.isdigit() else 0)


def support_findings(config: PipelineConfig, task: str = "detection") -> list[Finding]:
    """Why ckptkit cannot build this config's model (empty when it can)."""
    if config.model is None:
        model = [f for f in config.findings if f.path.startswith("model.") and f.severity == "error"]
        where = f"{model[0].file}:{model[0].line}:{model[0].col}" if model else ""
        path = model[0].path if model else "model"
        return [_finding(config, SUPPORT, path, "the model is not an SSD model; ckptkit fine-tunes SSD pipelines "
                         "only (model { ssd { ... } })", where)]
    return [_finding(config, SUPPORT, path, problem) for path, problem in unbuildable(config, task)]


def placeholder_errors(config: PipelineConfig, training: bool = True) -> list[Finding]:
    """Each path a run needs that still holds ``PATH_TO_BE_CONFIGURED`` (flags given replace them)."""
    out = []
    for f in config.findings:
        if f.code != "placeholder" or (not training and f.path.startswith(_TRAIN_ONLY)):
            continue
        flag = flag_hint(f.path)
        out.append(Finding("error", PLACEHOLDER, f.path, f"{f.message.split(';')[0]}, the zoo's placeholder; "
                           f"replace PATH_TO_BE_CONFIGURED with a real path{flag}", f.file, f.line, f.col))
    return out


def _names(pattern: str, path: str) -> bool:
    return path == pattern or path.startswith((f"{pattern}.", f"{pattern}["))


def apply_substitutions(config: PipelineConfig, substitute=()) -> PipelineConfig:
    """``config`` with each error finding that a ``--substitute`` pattern names turned into a ``substituted``
    warning; a pattern that names none becomes an error finding itself (a typo must not pass silently)."""
    if not substitute:
        return config
    findings, used = [], set()
    for f in config.findings:
        named = [p for p in substitute if _names(p, f.path)]
        if named and f.severity == "error" and f.code in SUBSTITUTABLE:
            used.update(named)
            f = dataclasses.replace(f, severity="warning", code=SUBSTITUTED, message=(
                f"{f.message}; substituted on request (--substitute {named[0]}): ckptkit trains without this "
                "setting, with its own default in its place"))
        findings.append(f)
    refusable = sorted({f.path for f in findings if f.severity == "error" and f.code in SUBSTITUTABLE})
    for pattern in dict.fromkeys(substitute):
        if pattern not in used:
            known = f"its settings that need one: {', '.join(refusable[:6])}" if refusable else "it needs none"
            findings.append(Finding("error", SUBSTITUTE, pattern, f"--substitute {pattern} names no setting this "
                                    f"config needs substituted ({known}); name one of those or drop the flag",
                                    "the flags"))
    return dataclasses.replace(config, findings=tuple(findings))


def substituted(config: PipelineConfig) -> tuple[str, ...]:
    """The settings of ``config`` that the run replaces on request (``--substitute``)."""
    return tuple(f.path for f in config.findings if f.code == SUBSTITUTED)


def substitution_errors(config: PipelineConfig) -> list[Finding]:
    """The reader's error findings not accepted with ``--substitute``, with what to do about each; a model
    ckptkit does not build at all is one support finding, so its settings are not listed again."""
    out = []
    for f in config.findings:
        if f.severity != "error" or f.code not in (*SUBSTITUTABLE, SUBSTITUTE):
            continue
        if config.model is None and f.path.startswith("model."):
            continue
        if f.code != SUBSTITUTE:
            f = dataclasses.replace(f, message=f"{f.message}; fix or remove it, or pass --substitute {f.path} to "
                                    "train with ckptkit's default in its place (recorded in the run's report)")
        out.append(f)
    return out


def blocking_findings(config: PipelineConfig, task: str = "detection", training: bool = True) -> list[Finding]:
    """What makes a run impossible before any file is opened: support, placeholders, settings ckptkit would
    replace (unless ``--substitute`` names them), a missing step count."""
    support = support_findings(config, task)
    covered = {f.path for f in support}
    replaced = [f for f in substitution_errors(config) if f.path not in covered]
    model = [f for f in replaced if f.path.startswith("model.")]  # what model it is comes first
    out = support + model + placeholder_errors(config, training) + [f for f in replaced if f not in model]
    if training and config.train_config.num_steps < 1:
        out.append(_finding(config, NOT_SET, "train_config.num_steps", "num_steps is not set (0 means 'until "
                            "stopped', which ckptkit does not do); set num_steps or pass --num-steps"))
    return out


def refuse_unusable(config: PipelineConfig, task: str = "detection", training: bool = True) -> None:
    """One :class:`ConfigError` naming every blocking problem, support first; nothing when there is none."""
    problems = blocking_findings(config, task, training)
    if problems:
        raise ConfigError(problem_lines(problems, "training"))


def problem_lines(problems: list[Finding], before: str) -> str:
    """One problem as its line (``file:line:col: setting: what, what to do``); several under a count, a line
    each."""
    lines = [f"{f.file}:{f.line}:{f.col}: {f.path}: {f.message}" if f.line else f"{f.file}: {f.path}: {f.message}"
             for f in problems]
    return lines[0] if len(lines) == 1 else "\n".join([f"{len(lines)} problem(s) to fix before {before}:", *lines])


def file_findings(config: PipelineConfig, task: str = "detection", training: bool = True) -> list[Finding]:
    """Paths that lead nowhere and a label map that does not fit ``num_classes`` (placeholders skipped)."""
    out = []
    if training and config.train_config.fine_tune_checkpoint:
        out += _checkpoint_finding(config)
    for split in ("train", "eval") if training else ("eval",):
        out += _inputs_finding(config, split)
    out += _label_map_findings(config, task)
    return out


def _usable(config: PipelineConfig, path: str) -> Path | None:
    """The resolved path, or None when it is unset or a placeholder (reported elsewhere)."""
    try:
        return config.path(path)
    except ConfigError:
        return None


def _checkpoint_finding(config: PipelineConfig) -> list[Finding]:
    key = "train_config.fine_tune_checkpoint"
    prefix = _usable(config, key)
    if prefix is None or prefix.exists() or any(Path(f"{prefix}{ext}").exists() for ext in (".index", ".meta")):
        return []
    return [_finding(config, MISSING, key, f"no checkpoint at {prefix} (looked for the prefix, {prefix.name}.index "
                     "and a directory); fix the path or pass --fine-tune-checkpoint (or --from-scratch)")]


def _inputs_finding(config: PipelineConfig, split: str) -> list[Finding]:
    if split == "eval" and not config.eval_input_reader:
        return []
    reader = config.train_input_reader if split == "train" else config.eval_input_reader[0]
    key = ("train_input_reader" if split == "train" else "eval_input_reader[0]") + \
        ".tf_record_input_reader.input_path"
    if any("PATH_TO_BE_CONFIGURED" in p for p in reader.tf_record_input_reader.input_path):
        return []
    try:
        config.input_files(split)
    except ConfigError as e:
        return [_finding(config, MISSING, key, str(e), config.origins.get(f"{key}[0]", ""))]
    return []


def _label_map_findings(config: PipelineConfig, task: str) -> list[Finding]:
    out, seen = [], set()
    for key in ("train_input_reader.label_map_path", "eval_input_reader[0].label_map_path"):
        if key.startswith("eval") and not config.eval_input_reader:
            continue
        path = _usable(config, key)
        if path is None or path in seen:
            continue
        seen.add(path)
        try:
            label_map = load_label_map(path)
            if task == "detection" and config.model is not None:
                label_map.check_num_classes(config.model.num_classes, config.source or "the flags")
        except (ConfigError, ValueError, OSError) as e:
            out.append(_finding(config, LABEL_MAP, key, str(e)))
    return out


def check_config(config: PipelineConfig, task: str = "detection", training: bool = True) -> list[Finding]:
    """Every problem and note of ``config``: the blocking ones first (support, then placeholders), then the
    files, then the reader's findings by line."""
    ours = blocking_findings(config, task, training) + file_findings(config, task, training)
    covered = {f.path for f in ours}
    reader = [f for f in config.findings if f.code != "placeholder" and f.path not in covered]
    return ours + sorted(reader, key=lambda f: (f.line, f.col))


def validate(config_path, *, task: str = "detection", training: bool = True, **settings):
    """The dry run of ``train``: a :class:`reports.ValidateReport` of every finding about ``config_path``
    with ``settings`` (the flags train would get) applied.  A file that does not parse raises."""
    from reports import ConfigNote, ValidateReport  # noqa: PLC0415 - reports imports nothing of finetune

    from ._configure import configure  # noqa: PLC0415 - _configure imports this module

    config = configure(config_path, task=task, training=training, check=False, **settings)
    notes = tuple(ConfigNote(f.severity, f.code, f.path, f.message, _where(f, str(config_path)))
                  for f in check_config(config, task, training))
    return ValidateReport(str(config_path), task, notes)


def _where(f: Finding, source: str) -> str:
    """``line:col`` in the checked file (named once, in the report's header), else ``file[:line:col]``."""
    position = f"{f.line}:{f.col}" if f.line else ""
    if f.file == source:
        return position
    return f"{f.file}:{position}" if position else f.file
