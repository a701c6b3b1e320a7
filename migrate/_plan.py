"""Shared front half of ``map`` and ``convert``: choose the rule set and target, plan the mapping."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from reports import MappingReport

from . import _rulesets
from ._arch import detect
from ._deferred_init import DeferredInit
from ._derive import derived, substitute
from ._formats._objgraph import checkpoint_key
from ._generic import generic_mapping, output_path
from ._mapping import Planned, plan
from ._select import SelectOptions, Selection, select
from ._targets import TargetSpec, build, weights
from .errors import CkptkitError


class MappingError(CkptkitError, ValueError):
    """The checkpoint does not fit the target; ``report`` says where."""

    def __init__(self, message: str, report: MappingReport):
        super().__init__(message)
        self.report = report


@dataclass
class ModelPlan:
    ruleset: _rulesets.RuleSet
    target: TargetSpec
    model: object
    weights: dict
    planned: dict[str, Planned]
    report: MappingReport
    deferred: DeferredInit  # until plan_model returns the plan, no variable holds its initial value


def choose_ruleset(specs, rules: Path | None) -> _rulesets.RuleSet:
    architecture = detect(specs).name
    user = _rulesets.load(Path(rules)) if rules else None
    try:
        builtin = _rulesets.for_architecture(architecture)
    except CkptkitError:
        if user is None:
            raise
        return user
    return builtin.extended(user) if user else builtin


def default_target(ruleset: _rulesets.RuleSet, architecture: str, table: str = "targets") -> tuple[str, dict] | None:
    """The rule set's default (or, with ``table="fallback_targets"``, fallback) target for an architecture:
    (spec, builder arguments)."""
    entry = getattr(ruleset, table).get(architecture)
    if entry is None:
        return None
    if isinstance(entry, str):
        return entry, {}
    args = dict(entry)
    return args.pop("target"), args


def resolve_target(target: TargetSpec, ruleset: _rulesets.RuleSet, architecture: str, specs,
                   table: str = "targets") -> TargetSpec:
    """Fill ``auto`` and every option the user left open from the rule set's default target."""
    default = default_target(ruleset, architecture, table)
    if target.spec == "auto" and default is None:
        raise CkptkitError(f"rule set {ruleset.name!r} names no default target for {architecture}; pass --target")
    spec = default[0] if target.spec == "auto" else target.spec
    args = dict(default[1]) if default and default[0] == spec else {}
    args = substitute({**args, **ruleset.target_args.get(spec, {})}, derived(ruleset, specs))
    classes = args.pop("classes", None) if target.classes is None else target.classes
    include_top = args.pop("include_top", None) if target.include_top is None else target.include_top
    args.pop("classes", None)
    args.pop("include_top", None)
    return TargetSpec(spec, classes, include_top, target.input_size, {**args, **target.extra})


def plan_model(reader, target: TargetSpec, rules: Path | None, restore: str, options: SelectOptions) -> ModelPlan:
    """Build the target and plan the mapping; ``auto`` whose default target does not fit takes the rule set's
    fallback target when that fits (the report says why).  The model's variables hold their initial values
    except where a source tensor is planned: those hold arbitrary values until the written checkpoint is
    restored into the model."""
    plan = _chosen_plan(reader, target, rules, restore, options)
    plan.deferred.initialize(plan.weights[t].variable for t in plan.planned)
    return plan


def _chosen_plan(reader, target: TargetSpec, rules: Path | None, restore: str, options: SelectOptions) -> ModelPlan:
    specs = reader.specs()
    ruleset = choose_ruleset(specs, rules)
    architecture = detect(specs).name
    rehead = target.classes  # the user's --classes: heads that no longer fit start afresh
    first = _plan_into(reader, resolve_target(target, ruleset, architecture, specs), ruleset, restore, options,
                       rehead)
    if target.spec != "auto" or first.report.complete or default_target(ruleset, architecture,
                                                                           "fallback_targets") is None:
        return first
    fallback = resolve_target(target, ruleset, architecture, specs, "fallback_targets")
    second = _plan_into(reader, fallback, ruleset, restore, options, rehead)
    if not second.report.complete:
        return first
    why = (f"{first.target.spec} did not fit ({misfit(first.report)}); converted into {fallback.spec} "
           f"{fallback.extra}, the same network at the checkpoint's shapes")
    second.report = replace(second.report, warnings=(*second.report.warnings, why))
    return second


def _plan_into(reader, target: TargetSpec, ruleset, restore: str, options: SelectOptions,
               rehead: int | None = None) -> ModelPlan:
    deferred = DeferredInit()
    with deferred.scope():  # the initial values the source replaces are never drawn
        model = build(target)
    model_weights = weights(model)
    selection = select(reader.specs(), options)
    targets = {name: (w.shape, w.dtype) for name, w in model_weights.items()}
    planned, report = plan(str(reader.path), target.spec, selection, ruleset, targets, restore, rehead)
    return ModelPlan(ruleset, target, model, model_weights, planned, report, deferred)


def misfit(report: MappingReport) -> str:
    """Why a mapping is incomplete, counted: ``31 shape mismatches, 2 ambiguous``."""
    s = report.summary
    parts = [f"{s[k]} {k.replace('_', ' ')}" for k in ("unmapped_target", "shape_mismatches", "ambiguous") if s[k]]
    return ", ".join(parts) or "incomplete mapping"


def require_complete(report: MappingReport) -> None:
    if report.complete:
        return
    first = (report.unmapped_target[:1] or [m.target for m in report.shape_mismatches[:1]]
             or [", ".join(a.sources) for a in report.ambiguous[:1]])
    raise MappingError(f"{report.source} does not fit {report.target}: {misfit(report)} (first: {first[0]}); "
                       "the mapping report says where (ckpt-migrate map); add rules with --rules FILE", report)


def map_generic(reader, options: SelectOptions) -> tuple[Selection, MappingReport]:
    selection = select(reader.specs(), options)
    keys = {checkpoint_key(output_path(name, reader.format)): name for name in selection.kept}
    return selection, generic_mapping(str(reader.path), selection, keys)
