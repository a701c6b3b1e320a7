"""``map``: how a checkpoint's tensors map onto a target model, without writing anything."""
from __future__ import annotations

import os
from pathlib import Path

from reports import MappingReport

from ._formats import open_checkpoint
from ._plan import map_generic, plan_model
from ._select import SelectOptions
from ._targets import TargetSpec


def map_checkpoint(source: str | os.PathLike, target: TargetSpec | None = None, *,
                   rules: str | os.PathLike | None = None, restore: str = "full",
                   options: SelectOptions = SelectOptions()) -> MappingReport:
    """The mapping report of ``source`` (any path :func:`migrate.locate` accepts), as ``ckpt-migrate map`` shows it.

    Without ``target``: the generic mapping (each kept tensor to its TF2 key).
    With one: the rule set's mapping onto that model (built with TensorFlow,
    fresh weights), with ``rules`` (a rule file tried before the built-in ones)
    and ``restore`` (``full``, ``backbone``, ``classification``, ``detection``).
    Reads names, shapes and dtypes only, writes nothing; ``report.complete`` says whether it fits.
    """
    rules = Path(rules) if rules is not None else None
    with open_checkpoint(source) as reader:
        if target is None:
            return map_generic(reader, options)[1]
        return plan_model(reader, target, rules, restore, options).report
