"""Map kept source tensors onto a target model's weights with a rule set.

Rules are tried in order (first match wins); a ``[[structural]]`` entry then
pairs what is left in build order, checking that each pair has the same kind
(kernel, beta, ...) and shape.  Nothing is guessed: two sources for one target,
or a structural sequence that diverges, are reported as ambiguous.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from reports import Ambiguity, MappedTensor, MappingReport, ShapeMismatch

from ._rulesets import RuleSet, Structural
from ._select import Selected, Selection
from ._transforms import Transform, TransformError, chain_shape, effective

RESTORE_PARTS = {"full": {"backbone", "head", "detection"}, "backbone": {"backbone"},
                 "classification": {"backbone"}, "detection": {"backbone", "detection"}}


@dataclass(frozen=True)
class Planned:
    target: str
    item: Selected
    transforms: tuple[Transform, ...]
    rule: str


@dataclass
class _State:
    sources: dict[str, Selected]
    targets: dict[str, tuple[tuple[int, ...], str]]  # name -> (shape, dtype)
    allowed: set[str]
    planned: dict[str, Planned] = field(default_factory=dict)
    claimed_by: dict[str, str] = field(default_factory=dict)  # target -> source
    mapped_sources: set[str] = field(default_factory=set)
    dropped: dict[str, str] = field(default_factory=dict)
    skipped_targets: set[str] = field(default_factory=set)
    inits: dict[str, tuple[float, str]] = field(default_factory=dict)  # target -> (value, reason)
    mismatches: list[ShapeMismatch] = field(default_factory=list)
    ambiguous: list[Ambiguity] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rehead: int | None = None  # the user's --classes: a head whose shape follows it starts from initial values


def plan(source: str, target: str, selection: Selection, ruleset: RuleSet,
         targets: dict[str, tuple[tuple[int, ...], str]], restore: str = "full",
         rehead: int | None = None) -> tuple[dict[str, Planned], MappingReport]:
    """Planned tensors by target name (constants from [[init]] have an empty source), and the mapping report.

    ``rehead``: the class count the user asked for; a ``head`` tensor that no longer fits it is left out (the
    target's initial value is written), as the OD API re-heads a detector for new classes."""
    state = _State(dict(selection.kept), dict(targets), RESTORE_PARTS[restore], dropped=dict(selection.dropped),
                   warnings=list(selection.warnings), rehead=rehead)
    _exclude(state, ruleset, target)
    for name in sorted(state.sources):
        if name not in state.dropped:
            _apply_rules(state, ruleset, name, restore)
    for structural in ruleset.structural:
        _apply_structural(state, structural, restore)
    _apply_inits(state, ruleset)
    report = _report(source, target, ruleset, state)
    for name, (value, reason) in state.inits.items():
        state.planned[name] = Planned(name, Selected(f"[[init]] {value:g}", (), state.targets[name][0],
                                                     state.targets[name][1], "init", f"constant {value:g}"), (), reason)
    return state.planned, report


def _apply_inits(state: _State, ruleset: RuleSet) -> None:
    for target in state.targets:
        if target in state.claimed_by or target in state.skipped_targets:
            continue
        init = next((i for i in ruleset.inits if i.target.search(target)), None)
        if init is not None:
            state.inits[target] = (init.value, init.reason)


def _exclude(state: _State, ruleset: RuleSet, target: str) -> None:
    for name in state.sources:
        for exclude in ruleset.excludes:
            if exclude.applies(name, target):
                state.dropped[name] = exclude.reason
                break


def _target_name(template_match: re.Match, template: str, separator: str) -> str:
    name = template_match.expand(template)
    if separator != "/" and "/" in name:
        scope, leaf = name.rsplit("/", 1)
        name = f"{scope.replace('/', separator)}/{leaf}"
    return name


def _apply_rules(state: _State, ruleset: RuleSet, name: str, restore: str) -> None:
    missed = None
    for rule in ruleset.rules:
        match = rule.source.fullmatch(name)
        if not match:
            continue
        target = _target_name(match, rule.target, ruleset.scope_separator)
        if target not in state.targets:  # a rule for another target of this set: try the next
            missed = missed or f"{rule.label}: {name} -> {target}, which the target does not have"
            continue
        if rule.part not in state.allowed:
            state.dropped[name] = f"--restore {restore} leaves the {rule.part} out"
            state.skipped_targets.add(target)
            return
        if state.rehead is not None and rule.part == "head" and not _fits(state, name, target, rule.transforms):
            state.dropped[name] = (f"--classes {state.rehead}: the head is re-initialised for the new class count "
                                   f"({list(state.sources[name].shape)} here, {list(state.targets[target][0])} there)")
            state.skipped_targets.add(target)
            return
        _pair(state, name, target, rule.transforms, f"{rule.label}")
        return
    if missed and not any(s.source.search(name) for s in ruleset.structural):
        state.warnings.append(missed)


def _fits(state: _State, name: str, target: str, transforms) -> bool:
    try:
        return chain_shape(transforms, state.sources[name].shape, state.targets[target][0]) == state.targets[target][0]
    except TransformError:
        return False


def _pair(state: _State, name: str, target: str, transforms, rule: str) -> bool:
    item = state.sources[name]
    shape, dtype = state.targets[target]
    if target in state.claimed_by:
        state.ambiguous.append(Ambiguity((state.claimed_by[target], name), (target,), "two source tensors map to one target"))
        return False
    try:
        result = chain_shape(transforms, item.shape, shape)
    except TransformError as e:
        state.mismatches.append(ShapeMismatch(name, target, item.shape, shape, f"{rule}: {e}"))
        return False
    if result != shape or item.dtype != dtype:
        detail = f"{rule}" + (f": dtype {item.dtype} vs {dtype}" if item.dtype != dtype else "")
        state.mismatches.append(ShapeMismatch(name, target, result, shape, detail))
        return False
    state.claimed_by[target] = name
    state.mapped_sources.add(name)
    state.planned[target] = Planned(target, item, effective(transforms, item.shape, shape), rule)
    return True


def _apply_structural(state: _State, structural: Structural, restore: str) -> None:
    sources = [n for n in state.sources if structural.source.search(n) and n not in state.mapped_sources
               and n not in state.dropped and _kind(n, structural) is not None]
    targets = [t for t in state.targets if structural.target.search(t) and t not in state.claimed_by
               and t not in state.skipped_targets]
    if structural.target_order == "name":  # tf_keras' Model.layers is in graph-depth order, not creation order
        targets.sort(key=lambda t: _natural(t.rsplit("/", 1)[0]))  # stable: a layer's weights keep their order
    order = list(structural.kinds.values())
    sources.sort(key=lambda n: (_natural(_unit(n, structural)), order.index(_kind(n, structural))))
    if structural.part not in state.allowed:
        for name in sources:
            state.dropped[name] = f"--restore {restore} leaves the {structural.part} out"
        state.skipped_targets.update(targets)
        return
    if len(sources) != len(targets):
        rest = sources[len(targets):] or targets[len(sources):]
        state.ambiguous.append(Ambiguity(tuple(sources[len(targets):][:3]), tuple(targets[len(sources):][:3]),
                                         f"{structural.label}: {len(sources)} source vs {len(targets)} target tensors; "
                                         f"first left over: {rest[0]}; add rules for the extra tensors"))
        return
    for i, (name, target) in enumerate(zip(sources, targets)):  # check the whole sequence before pairing any
        kind, target_kind = _kind(name, structural), target.rsplit("/", 1)[-1]
        shape = state.targets[target][0]
        if kind != target_kind or state.sources[name].shape != shape:
            state.ambiguous.append(Ambiguity(
                (name,), tuple(targets[i : i + 3]),
                f"{structural.label}: build order diverges at pair {i + 1}: {kind} {list(state.sources[name].shape)} "
                f"vs {target_kind} {list(shape)}; nothing paired by this entry; add a rule for this tensor"))
            return
    by_shape_unique = 0
    for i, (name, target) in enumerate(zip(sources, targets)):
        kind, shape = _kind(name, structural), state.targets[target][0]
        unique = sum(1 for t in targets if state.targets[t][0] == shape and t.rsplit("/", 1)[-1] == kind) == 1
        by_shape_unique += unique
        _pair(state, name, target, (), f"{structural.label} (structural #{i + 1}, {'unique shape' if unique else 'build order'})")
    state.warnings.append(f"{structural.label}: structural matcher paired {len(sources)} tensors, {by_shape_unique} "
                          f"by a unique shape and {len(sources) - by_shape_unique} by build order alone")


def _kind(name: str, structural: Structural) -> str | None:
    for suffix, kind in structural.kinds.items():
        if name.endswith("/" + suffix):
            return kind
    return None


def _unit(name: str, structural: Structural) -> str:
    for suffix in structural.kinds:
        if name.endswith("/" + suffix):
            return name[: -len(suffix) - 1]
    return name


def _natural(text: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _report(source: str, target: str, ruleset: RuleSet, state: _State) -> MappingReport:
    mapped = tuple(MappedTensor(", ".join(p.item.sources), p.target, p.rule, " ".join(map(str, p.transforms)) or p.item.note)
                   for p in sorted(state.planned.values(), key=lambda p: p.item.name))
    involved = state.mapped_sources | set(state.dropped) | {n for a in state.ambiguous for n in a.sources} \
        | {m.source for m in state.mismatches}
    unmapped_source = tuple(sorted(n for n in state.sources if n not in involved))
    unmapped_target = tuple(t for t in state.targets if t not in state.claimed_by and t not in state.skipped_targets
                            and t not in state.inits and not any(t == m.target for m in state.mismatches))
    return MappingReport(source, target, ruleset.name, mapped, unmapped_source, unmapped_target,
                         tuple(state.mismatches), tuple(state.ambiguous), state.dropped, tuple(state.warnings),
                         tuple(t for t in state.targets if t in state.skipped_targets),
                         {t: f"{reason} (set to {value:g})" for t, (value, reason) in state.inits.items()})
