"""Using a :class:`PipelineConfig`: command-line overrides and path settings.

Relative paths written in a pipeline.config resolve against the file's own
directory (so a data set directory holding its config can move as a whole;
the OD API resolves them against the working directory), paths given as flags
against the working directory.  A path still holding the zoo's
``PATH_TO_BE_CONFIGURED`` placeholder is an error the moment it is used.
"""
from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path
from typing import Callable

from ._pipeline import FixedShapeResizer, InputReader, PipelineConfig, TFRecordInputReader
from ._read import PLACEHOLDER, ConfigError, setting

# Proto path -> the override (keyword of :func:`overrides`, flag ``--name-with-dashes``) that sets it.
SETTERS = {
    **{f"model.{model}.{name}": flag for model in ("ssd", "faster_rcnn") for name, flag in (
        ("num_classes", "num_classes"), ("image_resizer.fixed_shape_resizer.height", "image_size"),
        ("image_resizer.fixed_shape_resizer.width", "image_size"))},
    "train_config.batch_size": "batch_size",
    "train_config.num_steps": "num_steps",
    "train_config.fine_tune_checkpoint": "fine_tune_checkpoint",
    "train_config.fine_tune_checkpoint_type": "fine_tune_checkpoint_type",
    "train_config.freeze_variables": "freeze_variables",
    "train_config.optimizer.use_moving_average": "use_moving_average",
    "train_input_reader.label_map_path": "label_map_path",
    "eval_input_reader[0].label_map_path": "label_map_path",
    "train_input_reader.tf_record_input_reader.input_path": "train_input_path",
    "eval_input_reader[0].tf_record_input_reader.input_path": "eval_input_path",
    "eval_config.num_examples": "num_examples",
}


def flag_name(override: str) -> str:
    """``train_input_path`` -> ``--train-input-path``."""
    return "--" + override.replace("_", "-")


def _where(config: PipelineConfig, path: str) -> str:
    return config.origins.get(path) or config.source or "pipeline.config"


def flag_hint(path: str) -> str:
    """``" or pass --flag"`` for a proto path a flag of :func:`overrides` sets, else ``""``."""
    key = path.replace("eval_input_reader.", "eval_input_reader[0].")
    key = key.rsplit("[", 1)[0] if key.endswith("]") and not key.endswith("reader[0]") else key
    setter = SETTERS.get(key)
    return f" or pass {flag_name(setter)}" if setter else ""


def _base(config: PipelineConfig, path: str) -> Path:
    origin = config.origins.get(path, "")
    if config.source and not origin.startswith("--"):
        return Path(config.source).parent
    return Path.cwd()


def _check_path(config: PipelineConfig, path: str, value: str) -> Path:
    if not value:
        raise ConfigError(f"{config.source or 'pipeline.config'}: {path} is not set; "
                          f"set it in the pipeline.config{flag_hint(path)}")
    if PLACEHOLDER in value:
        raise ConfigError(f"{_where(config, path)}: {path} is still {value!r}, the zoo's placeholder; "
                          f"replace {PLACEHOLDER} with a real directory{flag_hint(path)}")
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else _base(config, path) / p


def resolve_path(config: PipelineConfig, path: str) -> Path:
    """The path setting at proto ``path`` (e.g. ``train_config.fine_tune_checkpoint``), resolved.

    ``eval_input_reader.x`` means the first eval reader.  Existence is not
    checked here (a checkpoint is a prefix, not a file): the reader of the
    file does that with its own message.
    """
    path = path.replace("eval_input_reader.", "eval_input_reader[0].")
    try:
        value = setting(config, path)
    except (KeyError, IndexError, AttributeError):
        raise ConfigError(f"{config.source or 'pipeline.config'}: no setting {path}; add it{flag_hint(path)}") from None
    return _check_path(config, path, value)


def input_files(config: PipelineConfig, split: str = "train") -> list[Path]:
    """Every TFRecord file of ``split`` ("train" or "eval"), glob patterns expanded, sorted.

    All patterns are checked before failing: one error names each pattern
    that matched nothing.
    """
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    prefix = "train_input_reader" if split == "train" else "eval_input_reader[0]"
    key = f"{prefix}.tf_record_input_reader.input_path"
    if split == "eval" and not config.eval_input_reader:
        raise ConfigError(f"{config.source or 'pipeline.config'}: no eval_input_reader; add one{flag_hint(key)}")
    reader = config.train_input_reader if split == "train" else config.eval_input_reader[0]
    patterns = reader.tf_record_input_reader.input_path
    if not patterns:
        raise ConfigError(f"{config.source or 'pipeline.config'}: {key} is not set; "
                          f"set it in the pipeline.config{flag_hint(key)}")
    files, missing = [], []
    for index, pattern in enumerate(patterns):
        resolved = _check_path(config, f"{key}[{index}]", pattern)
        matches = sorted(glob.glob(str(resolved))) if glob.has_magic(str(resolved)) else \
            ([str(resolved)] if resolved.is_file() else [])
        if not matches:
            missing.append(f"{_where(config, f'{key}[{index}]')}: {pattern!r} (looked for {resolved})")
        files.extend(Path(m) for m in matches)
    if missing:
        raise ConfigError(f"{len(missing)} {split} input path(s) match no file: {'; '.join(missing)}; "
                          f"fix the path{flag_hint(key)}")
    return list(dict.fromkeys(files))


# ----------------------------------------------------------------- overrides
def _replace(obj, attrs: tuple[str, ...], value):
    """``obj`` with the nested attribute ``attrs`` set (frozen dataclasses, rebuilt along the way)."""
    if not attrs:
        return value
    head = attrs[0]
    return dataclasses.replace(obj, **{head: _replace(getattr(obj, head), attrs[1:], value)})


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, found {value!r}")
    return value


def _paths(value) -> tuple[str, ...]:
    items = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    return tuple(os.path.abspath(os.path.expanduser(os.fspath(v))) for v in items)


def _learning_rate(schedule, rate: float):
    """The schedule with its base rate set to ``rate``; its shape (warm-up, steps) scaled along."""
    if rate <= 0:
        raise ConfigError(f"--learning-rate must be positive, found {rate!r}")
    for name in ("learning_rate", "initial_learning_rate", "learning_rate_base"):
        if hasattr(schedule, name):
            old = getattr(schedule, name)
            break
    scale = rate / old if old else 1.0
    changes = {name: rate}
    if hasattr(schedule, "warmup_learning_rate"):
        changes["warmup_learning_rate"] = schedule.warmup_learning_rate * scale
    if hasattr(schedule, "schedule"):
        changes["schedule"] = tuple(dataclasses.replace(s, learning_rate=s.learning_rate * scale)
                                    for s in schedule.schedule)
    return dataclasses.replace(schedule, **changes)


def _eval_reader(config: PipelineConfig) -> InputReader:
    return config.eval_input_reader[0] if config.eval_input_reader else InputReader(shuffle=False)


def _set_eval(config: PipelineConfig, reader: InputReader) -> PipelineConfig:
    return dataclasses.replace(config, eval_input_reader=(reader,) + tuple(config.eval_input_reader[1:]))


_Override = Callable[[PipelineConfig, object], tuple[PipelineConfig, tuple[str, ...]]]


def _simple(attrs: tuple[str, ...], path: str, check=None) -> _Override:
    def apply(config, value):
        value = check(path.rsplit(".", 1)[-1], value) if check else value
        return _replace(config, attrs, value), (path,)
    return apply


def _image_size(config, value):
    height, width = (value, value) if isinstance(value, int) else tuple(value)
    if not isinstance(config.model.image_resizer, FixedShapeResizer):
        raise ConfigError(f"{config.source or 'pipeline.config'}: --image-size sets a fixed_shape_resizer, but "
                          f"this {config.model.PROTO} model has a {config.model.image_resizer.PROTO}; set its "
                          "max_dimension (and pad_to_max_dimension) in the pipeline.config instead")
    resizer = dataclasses.replace(config.model.image_resizer, height=_positive("image_size", height),
                                  width=_positive("image_size", width))
    key = f"model.{config.model.PROTO}.image_resizer.fixed_shape_resizer"
    return _replace(config, ("model", "image_resizer"), resizer), (f"{key}.height", f"{key}.width")


def _num_classes(config, value):
    return _replace(config, ("model", "num_classes"), _positive("num_classes", value)), \
        (f"model.{config.model.PROTO}.num_classes",)


def _lr(config, value):
    algorithm = config.train_config.optimizer.algorithm
    updated = dataclasses.replace(algorithm, learning_rate=_learning_rate(algorithm.learning_rate, float(value)))
    key = f"train_config.optimizer.{algorithm.PROTO}.learning_rate.{algorithm.learning_rate.PROTO}"
    return _replace(config, ("train_config", "optimizer", "algorithm"), updated), (key,)


def _label_map(config, value):
    path = _paths(value)[0]
    config = _replace(config, ("train_input_reader", "label_map_path"), path)
    config = _set_eval(config, dataclasses.replace(_eval_reader(config), label_map_path=path))
    return config, ("train_input_reader.label_map_path", "eval_input_reader[0].label_map_path")


def _train_input(config, value):
    paths = _paths(value)
    config = _replace(config, ("train_input_reader", "tf_record_input_reader"), TFRecordInputReader(paths))
    return config, tuple(f"train_input_reader.tf_record_input_reader.input_path[{i}]" for i in range(len(paths)))


def _eval_input(config, value):
    paths = _paths(value)
    reader = dataclasses.replace(_eval_reader(config), tf_record_input_reader=TFRecordInputReader(paths))
    return _set_eval(config, reader), tuple(
        f"eval_input_reader[0].tf_record_input_reader.input_path[{i}]" for i in range(len(paths)))


def _checkpoint_type(name, value):
    if value not in ("classification", "detection", "full"):
        raise ConfigError(f"--fine-tune-checkpoint-type must be classification, detection or full, found {value!r}")
    return value


OVERRIDES: dict[str, _Override] = {
    "num_classes": _num_classes,
    "image_size": _image_size,
    "batch_size": _simple(("train_config", "batch_size"), "train_config.batch_size", _positive),
    "num_steps": _simple(("train_config", "num_steps"), "train_config.num_steps", _positive),
    "learning_rate": _lr,
    "fine_tune_checkpoint": _simple(("train_config", "fine_tune_checkpoint"), "train_config.fine_tune_checkpoint",
                                    lambda _, v: _paths(v)[0]),
    "fine_tune_checkpoint_type": _simple(("train_config", "fine_tune_checkpoint_type"),
                                         "train_config.fine_tune_checkpoint_type", _checkpoint_type),
    "freeze_variables": _simple(("train_config", "freeze_variables"), "train_config.freeze_variables",
                                lambda _, v: (v,) if isinstance(v, str) else tuple(v)),
    "use_moving_average": _simple(("train_config", "optimizer", "use_moving_average"),
                                  "train_config.optimizer.use_moving_average", lambda _, v: bool(v)),
    "label_map_path": _label_map,
    "train_input_path": _train_input,
    "eval_input_path": _eval_input,
    "num_examples": _simple(("eval_config", "num_examples"), "eval_config.num_examples", _positive),
}


def overrides(config: PipelineConfig, **flags) -> PipelineConfig:
    """``config`` with command-line flags applied; flags that are None are left alone.

    Flags: ``num_classes``, ``image_size`` (int or (height, width)),
    ``batch_size``, ``num_steps``, ``learning_rate`` (the schedule keeps its
    shape, scaled so its base rate is the value), ``fine_tune_checkpoint``,
    ``fine_tune_checkpoint_type``, ``freeze_variables``, ``use_moving_average``,
    ``label_map_path`` (train and eval), ``train_input_path``,
    ``eval_input_path`` (a path, a glob or a list), ``num_examples``.
    Overridden settings lose their placeholder findings and record
    ``--flag`` as their origin.
    """
    unknown = sorted(set(flags) - set(OVERRIDES))
    if unknown:
        raise ConfigError(f"unknown override(s) {', '.join(unknown)}; known: {', '.join(OVERRIDES)}")
    origins, touched = dict(config.origins), []
    for name, value in flags.items():
        if value is None:
            continue
        if name in ("num_classes", "image_size") and config.model is None:
            raise ConfigError(f"{config.source or 'pipeline.config'}: {flag_name(name)} needs an SSD or Faster "
                              "R-CNN model; this pipeline.config's model is not supported (see its findings)")
        config, paths = OVERRIDES[name](config, value)
        flag = flag_name(name)
        bases = {p.rsplit("[", 1)[0] if p.endswith("]") else p for p in paths}
        origins = {k: v for k, v in origins.items() if (k.rsplit("[", 1)[0] if k.endswith("]") else k) not in bases}
        for path in paths:
            origins[path] = flag
        touched.extend(paths)
    kept = tuple(f for f in config.findings
                 if not (f.code == "placeholder" and any(f.path.startswith(t.split("[")[0]) for t in touched)))
    return dataclasses.replace(config, origins=origins, findings=kept)
