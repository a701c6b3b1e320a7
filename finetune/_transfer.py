"""``compare_transfer``: is the converted checkpoint worth having?  The same training run twice.

One run starts from ``fine_tune_checkpoint`` (converted on the way when it is
TF1), the other from random initialisation (``from_scratch``); everything else
is equal: config, flags, step budget, batch, schedule, data order and seed.
Each run is a normal :func:`finetune.finetune` run in its own directory
(``MODEL_DIR/finetuned``, ``MODEL_DIR/random``), with its own full report; the
comparison is written to ``MODEL_DIR/transfer-report.{json,md}``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from reports import TransferReport, TransferRun

from ._configure import configure
from ._errors import FinetuneError
from ._run import BEST_METRIC, finetune, write_report

RUNS = ("finetuned", "random")
REPORT = "transfer-report"


def compare_transfer(config_path=None, *, model_dir, task: str = "detection", overwrite: bool = False,
                     budget_seconds: float | None = None, target: float | None = None, **kwargs) -> TransferReport:
    """Fine-tune from the configured checkpoint and from scratch; return (and write) the comparison.

    ``kwargs`` are :func:`finetune.finetune`'s (settings, ``test_input_path``,
    ``eval_every``, ...).  ``budget_seconds`` and ``target`` (a test metric the
    fine-tuned run must reach) become checks in the report.  Runs start fresh:
    earlier run directories are an error unless ``overwrite``.
    """
    model_dir = Path(model_dir)
    kwargs.pop("from_scratch", None)
    config = configure(config_path, task=task, strict=kwargs.get("strict", False), **_settings(kwargs))
    source = config.train_config.fine_tune_checkpoint
    if not source:
        raise FinetuneError("transfer compares a fine-tuned run with a random one: set "
                            "train_config.fine_tune_checkpoint in the config or pass --fine-tune-checkpoint")
    _fresh(model_dir, overwrite)
    metric = BEST_METRIC[task]
    reports = {name: finetune(config_path, model_dir=model_dir / name, task=task, from_scratch=name == "random",
                              **kwargs) for name in RUNS}
    fine, rand = reports["finetuned"], reports["random"]
    result = TransferReport(
        config=config.source, source=os.path.normpath(config.path("train_config.fine_tune_checkpoint")), task=task,
        metric=metric,
        test_split=fine.test_split, steps=fine.steps, batch_size=config.train_config.batch_size,
        finetuned=TransferRun.of("finetuned", fine, metric), random=TransferRun.of("random", rand, metric),
        budget_seconds=budget_seconds, target=target, notes=_notes(fine, rand))
    model_dir.mkdir(parents=True, exist_ok=True)
    write_report(result, model_dir / REPORT)
    return result


def _settings(kwargs: dict) -> dict:
    """The pipeline.config overrides among ``finetune``'s keyword arguments."""
    from inspect import signature  # noqa: PLC0415

    own = set(signature(finetune).parameters)
    return {k: v for k, v in kwargs.items() if k not in own}


def _fresh(model_dir: Path, overwrite: bool) -> None:
    existing = [model_dir / name for name in RUNS if (model_dir / name).exists()]
    if existing and not overwrite:
        raise FinetuneError(f"{existing[0]} exists: a comparison needs two fresh runs (a resumed run's time "
                            "and curve would mislead); pass --overwrite to replace them, or choose another --out")
    for path in existing:
        shutil.rmtree(path)


def _notes(fine, rand) -> tuple[str, ...]:
    notes = [f"{name}: {w}" for name, r in (("finetuned", fine), ("random", rand)) for w in r.warnings]
    if fine.steps != rand.steps:
        notes.append(f"the runs stopped at different steps ({fine.steps} and {rand.steps}): early stopping")
    return tuple(notes)
