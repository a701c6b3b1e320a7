"""Which variables train: the OD API's regex semantics, and gradual unfreezing in stages.

``update_trainable_variables`` is applied first (when non-empty only variables
matching one of its patterns train), then ``freeze_variables`` removes every
match, both with ``re.search`` on the variable name without its ``:0`` suffix
(TF-slim's ``filter_variables``, which the OD API calls).  A stage adds its own
freeze patterns for its steps and scales the learning rate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import EngineConfigError


@dataclass(frozen=True)
class Stage:
    """``steps`` steps with ``freeze`` patterns added and the learning rate times ``lr_multiplier``."""

    steps: int
    freeze: tuple[str, ...] = ()
    lr_multiplier: float = 1.0

    def __post_init__(self):
        if isinstance(self.freeze, str):
            object.__setattr__(self, "freeze", (self.freeze,) if self.freeze else ())
        if self.steps <= 0:
            raise EngineConfigError(f"stage of {self.steps} steps: every stage needs at least one step")
        if self.lr_multiplier < 0:
            raise EngineConfigError(f"stage lr_multiplier {self.lr_multiplier}: expected a value >= 0")
        compile_patterns(self.freeze, "stage freeze")


@dataclass(frozen=True)
class Selection:
    trainable: tuple  # variables, in the order given
    frozen: tuple
    unmatched_patterns: tuple[str, ...]  # patterns that matched no variable (typos?)


def variable_name(variable) -> str:
    """The name regexes see: ``conv1/kernel:0`` -> ``conv1/kernel``."""
    name = variable.name
    return name.rsplit(":", 1)[0] if re.search(r":\d+$", name) else name


def compile_patterns(patterns, what: str) -> list[re.Pattern]:
    compiled, bad = [], []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as e:
            bad.append(f"{pattern!r} ({e})")
    if bad:
        raise EngineConfigError(f"{what}: invalid regular expression {'; '.join(bad)}; "
                                "patterns are Python regexes searched in variable names, e.g. '^conv1/'")
    return compiled


def select_trainable(variables, update_trainable_variables=(), freeze_variables=()) -> Selection:
    """Split ``variables`` into (trainable, frozen) by the OD API's rules."""
    include = compile_patterns(update_trainable_variables, "update_trainable_variables")
    exclude = compile_patterns(freeze_variables, "freeze_variables")
    used: set[str] = set()
    trainable, frozen = [], []
    for variable in variables:
        name = variable_name(variable)
        keep = not include or _any_match(include, name, used)
        if keep and _any_match(exclude, name, used):
            keep = False
        (trainable if keep else frozen).append(variable)
    unmatched = tuple(p.pattern for p in include + exclude if p.pattern not in used)
    return Selection(tuple(trainable), tuple(frozen), unmatched)


def _any_match(patterns: list[re.Pattern], name: str, used: set[str]) -> bool:
    hit = False
    for pattern in patterns:
        if pattern.search(name):
            used.add(pattern.pattern)
            hit = True
    return hit


def stage_ends(stages) -> list[int]:
    """Global step at which each stage ends (exclusive); the last stage lasts until training ends."""
    ends, total = [], 0
    for stage in stages:
        total += stage.steps
        ends.append(total)
    return ends


def stage_at(stages, step: int) -> int | None:
    """Index of the stage that runs the step after ``step`` steps are done; None without stages."""
    if not stages:
        return None
    for index, end in enumerate(stage_ends(stages)):
        if step < end:
            return index
    return len(stages) - 1


def inference_mode_layers(model, frozen) -> list:
    """BatchNormalization layers whose every trainable weight is frozen.

    Training them in inference mode (``layer.trainable = False`` in tf_keras)
    keeps their moving statistics fixed too, so a frozen backbone stays
    bit-identical, not just its gamma and beta.
    """
    from migrate.tf import tf_keras  # noqa: PLC0415

    frozen_ids = {id(v) for v in frozen}
    found = []
    for layer in model.submodules:
        if isinstance(layer, tf_keras().layers.BatchNormalization) and layer.trainable:
            weights = layer.trainable_weights
            if weights and all(id(w) in frozen_ids for w in weights):
                found.append(layer)
    return found
