"""``load_trained``: a finished fine-tuning run rebuilt as it was configured, its latest checkpoint restored.

Quantization starts from this: the same pipeline.config / flags the run was
trained with give the same task, model and splits.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import _inputs, _run, _settings
from ._configure import configure


@dataclass(eq=False)
class TrainedRun:
    """The rebuilt run: ``task.model`` holds the checkpoint's weights; ``inputs`` has the checked splits."""

    task: object  # finetune.tasks ClassificationTask or SSDTask
    backbone: object  # the Backbone the config builds (image_size, describe())
    inputs: object  # label_map, train, eval, test (finetune.data.InputData or None)
    checkpoint: str
    step: int
    warnings: list[str] = field(default_factory=list)


def load_trained(model_dir: str | os.PathLike, *, task: str, config_path=None, test_input_path=None,
                 skip_bad_records: bool = False, seed: int = 0, mode: str = "finetune", **settings) -> TrainedRun:
    """Rebuild the ``task`` run in ``model_dir`` from ``config_path`` and ``settings`` (the pipeline.config
    overrides, as :func:`finetune.finetune` takes them) and restore its latest training checkpoint.  An
    ``export`` directory works too: its ``pipeline.config`` (unless ``config_path``) and ``checkpoint/ckpt-0``.

    Every split is checked; a checkpoint that does not fit the model the
    config builds raises :class:`~finetune.FinetuneError`.
    """
    # from_scratch: the run's own checkpoint is restored, so a placeholder fine_tune_checkpoint must not refuse it
    model_dir = Path(model_dir)
    exported = _run.exported_checkpoint(model_dir)
    if exported and config_path is None:
        config_path = model_dir / "pipeline.config"
    settings = _run.recorded_substitutions(model_dir, settings)
    config = configure(config_path, task=task, **{**settings, "from_scratch": True})
    warnings: list[str] = []
    backbone = _settings.backbone_of(config)
    ssd = _settings.detector_config(config, warnings) if task == "detection" else None
    optimizer = _settings.optimizer_config(config, [])
    inputs = _inputs.build_inputs(config, task, backbone, skip_bad_records=skip_bad_records, seed=seed,
                                  test_paths=test_input_path, warnings=warnings)
    run = _run.RunOptions(task, "finetune" if mode == "domain_adversarial" else mode, skip_bad_records, seed)
    built, _ = _run._build_task(run, backbone, ssd, inputs, config)
    if exported:
        checkpoint, step = _run.restore_model(built, exported), 0
    else:
        checkpoint, step = _run._restore_trained(built, model_dir, None, optimizer)
    return TrainedRun(built, backbone, inputs, checkpoint, step, warnings)
