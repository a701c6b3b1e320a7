"""The run's ``PipelineConfig``: a pipeline.config with flags applied, or the flags alone.

Flags are the keywords of :func:`finetune.config.overrides` plus the few
settings this module sets itself (feature extractor, depth multiplier,
gradient clipping, eval batch size, no fine-tune checkpoint).  Without a file
the proto defaults apply, except that ``use_moving_average`` is off (the
proto's 0.9999 average would hide a short run) and, for detection,
``num_classes`` defaults to the label map's largest id.
"""
from __future__ import annotations

import dataclasses

from finetune.config import ConfigError, PipelineConfig, load_pipeline_config, overrides, schema
from finetune.config._resolve import OVERRIDES
from finetune.data import load_label_map

from ._settings import EXTRACTORS
from ._validate import apply_substitutions, refuse_unusable

# pipeline.config override keywords (see finetune.config.overrides)
OVERRIDE_KEYS = tuple(OVERRIDES)


def configure(config_path=None, *, task: str = "detection", training: bool = True, strict: bool = False,
              from_scratch: bool = False, check: bool = True, substitute=(),
              feature_extractor: str | None = None, depth_multiplier: float | None = None,
              grad_clip_norm: float | None = None, eval_batch_size: int | None = None, **flags) -> PipelineConfig:
    """Read (or, without ``config_path``, default) the config and apply every flag that is not None.

    ``training=False`` (evaluation) needs no training data and no step count.
    ``check`` refuses, in one error, a config whose model ckptkit cannot build,
    paths still holding the zoo's placeholder, settings ckptkit would replace
    (error findings) that ``substitute`` does not name, and a missing step
    count (``check=False``: the dry run, which reports them instead).
    """
    if config_path is not None:
        config = load_pipeline_config(config_path, strict=strict)
    else:
        config = _from_flags(task, flags, training)
    if config.model is None:  # flags that need a model cannot apply; the support finding says why
        flags = {k: v for k, v in flags.items() if k not in ("num_classes", "image_size")}
    config = overrides(config, **flags)
    if config_path is None and flags.get("eval_input_path") is None:  # --label-map-path made an empty eval reader
        config = dataclasses.replace(config, eval_input_reader=())
    if from_scratch:
        config = _without_checkpoint(config)
    if config.model is not None:
        config = _extras(config, feature_extractor, depth_multiplier, grad_clip_norm, eval_batch_size)
    config = apply_substitutions(config, tuple(substitute))
    if check:
        refuse_unusable(config, task, training)
    return config


def set_by_flags(config: PipelineConfig) -> list[tuple[str, str]]:
    """``(setting, flag)`` for each pipeline.config setting a flag replaced, sorted."""
    return sorted((path, origin) for path, origin in config.origins.items() if origin.startswith("--"))


def _from_flags(task: str, flags: dict, training: bool) -> PipelineConfig:
    needed = ("train_input_path", "label_map_path", "num_steps") if training else ("label_map_path",)
    missing = [f"--{k.replace('_', '-')}" for k in needed if flags.get(k) is None]
    if missing:
        raise ConfigError(f"no pipeline.config given and no {', '.join(missing)}; pass --pipeline-config, "
                          "or every setting as flags")
    config = PipelineConfig()
    optimizer = dataclasses.replace(config.train_config.optimizer, use_moving_average=False)
    config = dataclasses.replace(config, train_config=dataclasses.replace(config.train_config, optimizer=optimizer))
    if task == "detection" and flags.get("num_classes") is None:
        flags["num_classes"] = load_label_map(flags["label_map_path"]).max_id
    if flags.get("eval_input_path") is not None:
        reader = schema.InputReader(shuffle=False)
        config = dataclasses.replace(config, eval_input_reader=(reader,))
    return config


def _without_checkpoint(config: PipelineConfig) -> PipelineConfig:
    """``--from-scratch``: no fine_tune_checkpoint (nor its placeholder finding)."""
    key = "train_config.fine_tune_checkpoint"
    train = dataclasses.replace(config.train_config, fine_tune_checkpoint="")
    findings = tuple(f for f in config.findings if not (f.code == "placeholder" and f.path == key))
    return dataclasses.replace(config, train_config=train, findings=findings,
                               origins={**config.origins, key: "--from-scratch"})


def _extras(config: PipelineConfig, feature_extractor, depth_multiplier, grad_clip_norm,
            eval_batch_size) -> PipelineConfig:
    origins = dict(config.origins)
    extractor = config.model.feature_extractor
    ssd = isinstance(config.model, schema.SSD)
    kind = "ssd" if ssd else "faster_rcnn"
    if not ssd and feature_extractor is not None:
        raise ConfigError("--feature-extractor chooses an SSD MobileNet backbone; this pipeline.config's model is "
                          "faster_rcnn: set its feature_extractor.type in the file")
    if feature_extractor is not None:
        if feature_extractor not in EXTRACTORS:
            raise ConfigError(f"--feature-extractor {feature_extractor!r}: choose one of {', '.join(EXTRACTORS)}")
        name = feature_extractor if feature_extractor.startswith("ssd_") else f"ssd_{feature_extractor}"
        extractor = dataclasses.replace(extractor, type=name)
        origins["model.ssd.feature_extractor.type"] = "--feature-extractor"
    if depth_multiplier is not None:
        if depth_multiplier <= 0:
            raise ConfigError(f"--depth-multiplier must be positive, found {depth_multiplier}")
        extractor = dataclasses.replace(extractor, depth_multiplier=float(depth_multiplier))
        origins[f"model.{kind}.feature_extractor.depth_multiplier"] = "--depth-multiplier"
    train = config.train_config
    if grad_clip_norm is not None:
        if grad_clip_norm < 0:
            raise ConfigError(f"--grad-clip-norm must be positive (0: no clipping), found {grad_clip_norm}")
        train = dataclasses.replace(train, gradient_clipping_by_norm=float(grad_clip_norm))
    evaluation = config.eval_config
    if eval_batch_size is not None:
        if eval_batch_size < 1:
            raise ConfigError(f"--eval-batch-size must be a positive integer, found {eval_batch_size}")
        evaluation = dataclasses.replace(evaluation, batch_size=eval_batch_size)
    model = dataclasses.replace(config.model, feature_extractor=extractor)
    return dataclasses.replace(config, model=model, train_config=train, eval_config=evaluation, origins=origins)
