"""Make a fine-tuned model small and fast for edge devices, and measure what it cost.

    >>> import quantize
    >>> task = quantize.load("classification", model_dir="runs/cls", **finetune_flags)        # doctest: +SKIP
    >>> pruned = quantize.prune(task, "runs/pruned", steps=200, config=quantize.PruneConfig(0.5))  # doctest: +SKIP
    >>> qat = quantize.qat(task, "runs/qat", steps=100)                                         # doctest: +SKIP
    >>> quantize.export(task, "runs/export", pruned=pruned, qat=qat, int8_io=True)              # doctest: +SKIP
    >>> report = quantize.evaluate(task, "runs/export")                                         # doctest: +SKIP
    >>> report.variant("int8").size_ratio, report.variant("int8").drop_points                   # doctest: +SKIP

Pruning and QAT train through ``finetune.engine`` (checkpoints, resume,
TensorBoard).  A task (classification; detection in ``quantize.detection``)
plugs in through the protocol in ``quantize._task``.  Importing this package
never imports TensorFlow or tensorflow-model-optimization.
"""
from __future__ import annotations

from migrate.lazy import lazy_exports

_LAZY = {
    "load": "._load",
    "prune": "._prune",
    "PruneConfig": "._prune",
    "PruneResult": "._prune",
    "qat": "._qat",
    "QatResult": "._qat",
    "export": "._export",
    "VARIANTS": "._export",
    "evaluate": "._evaluate",
    "Runner": "._interpreter",
    "QuantizeTask": "._task",
    "QuantizeError": "._errors",
    "QuantizeReport": "reports",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
