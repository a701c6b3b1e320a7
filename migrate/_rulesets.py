"""Mapping rule sets: ordered regex rules in TOML files, one set per architecture family.

A rule set file holds ``name``, ``architectures`` (detected names it serves),
``[targets]`` (default target per architecture: a spec string, or a table with
``target`` and builder arguments), ``[fallback_targets]`` (what ``auto`` takes when
the default does not fit, e.g. the same net at the checkpoint's widths), ``[derive]``
(values read from tensor shapes), ``[[exclude]]`` (source tensors to leave out, with
a reason), ``[[rule]]`` (source regex -> target
template, optional ``transform`` list and ``part``), ``[[include]]`` (another
built-in set's rules, their targets under ``target_prefix``: a backbone's rules
reused inside a detector), ``derive_with`` (``module:function(specs) -> dict``
for values a shape table cannot express) and ``[[structural]]``
(source and target regexes whose tensors are paired by build order and shape)
and ``[[init]]`` (target weights no source provides, set to ``value``).
Built-in sets live in ``migrate/rules/maps/``; ``--rules FILE`` adds a user's,
whose rules are tried before the built-in ones.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from . import _rules_schema
from ._transforms import Transform, TransformError, parse
from .errors import CkptkitError

PARTS = ("backbone", "head", "detection")


class RuleFileError(CkptkitError, ValueError):
    """A rule file that does not parse or holds an invalid rule."""


@dataclass(frozen=True)
class Rule:
    source: re.Pattern
    target: str
    transforms: tuple[Transform, ...] = ()
    part: str = "backbone"
    label: str = ""  # "file:line" for the report


@dataclass(frozen=True)
class Exclude:
    source: re.Pattern
    reason: str
    target: re.Pattern | None = None  # only when converting into a target spec this matches

    def applies(self, name: str, target_spec: str) -> bool:
        return bool(self.source.fullmatch(name)) and (self.target is None or bool(self.target.search(target_spec)))


@dataclass(frozen=True)
class Init:
    """Target weights with no source, set to a constant (e.g. Keras conv biases slim never had)."""

    target: re.Pattern
    value: float
    reason: str


@dataclass(frozen=True)
class Structural:
    source: re.Pattern
    target: re.Pattern
    kinds: dict[str, str]  # source leaf name -> target weight name
    part: str = "backbone"
    label: str = ""
    target_order: str = "model"  # or "name": natural order of layer names (Keras auto-numbering = creation order)


@dataclass(frozen=True)
class RuleSet:
    name: str
    path: str
    architectures: tuple[str, ...] = ()
    targets: dict[str, str] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    excludes: tuple[Exclude, ...] = ()
    structural: tuple[Structural, ...] = ()
    scope_separator: str = "/"
    parity: dict = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # target -> why it is known to differ
    derive: dict = field(default_factory=dict)  # name -> {tensor, axis, divide}: see _derive
    inits: tuple[Init, ...] = ()
    target_args: dict = field(default_factory=dict)  # target spec -> builder arguments for that target
    derive_with: str = ""  # "module:function": specs -> {name: value}, merged over [derive]
    fallback_targets: dict = field(default_factory=dict)  # architecture -> what auto takes when the default misfits

    def parity_for(self, architecture: str, target_spec: str) -> dict | None:
        """The TF1 reference for ``--parity`` of this architecture converted into ``target_spec``: the entry
        keyed ``"ARCH TARGET"``, else ``ARCH`` (whose optional ``target`` regex limits it to the targets whose
        outputs it names), or None."""
        config = self.parity.get(f"{architecture} {target_spec}") or self.parity.get(architecture)
        if not config or not config.get("builder"):
            return None
        return config if re.search(config.get("target", ""), target_spec) else None

    def extended(self, user: "RuleSet") -> "RuleSet":
        """This set with a user's rules tried first."""
        return RuleSet(
            name=f"{user.name}+{self.name}", path=f"{user.path}, {self.path}", architectures=self.architectures,
            targets={**self.targets, **user.targets}, rules=user.rules + self.rules,
            excludes=user.excludes + self.excludes, structural=user.structural + self.structural,
            scope_separator=self.scope_separator, parity=self.parity, notes={**self.notes, **user.notes},
            derive={**self.derive, **user.derive}, inits=user.inits + self.inits,
            target_args={**self.target_args, **user.target_args}, derive_with=user.derive_with or self.derive_with,
            fallback_targets={**self.fallback_targets, **user.fallback_targets},
        )


def load(path: Path, text: str | None = None) -> RuleSet:
    """Parse one rule file; every problem names the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8") if text is None else text
    except UnicodeDecodeError as e:
        raise RuleFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save the rule file as UTF-8") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RuleFileError(f"{path}: not valid TOML: {e}") from e
    except RecursionError as e:  # tomllib recurses once per level of nested arrays and tables
        raise RuleFileError(f"{path}: not valid TOML: values nested too deeply") from e
    problem = _rules_schema.check(data)
    if problem:
        raise RuleFileError(f"{path}: {problem}")
    where = _Locator(path, text)
    included = [_include(raw, where) for raw in data.get("include", ())]
    return RuleSet(
        name=data.get("name") or Path(path).stem,
        path=str(path),
        architectures=tuple(data.get("architectures", ())),
        targets=dict(data.get("targets", {})),
        rules=tuple(_rule(r, where) for r in data.get("rule", ())) + tuple(r for rules, _ in included for r in rules),
        excludes=tuple(Exclude(where.regex(e, "source"), e.get("reason", "excluded by rule"),
                               where.regex(e, "target") if "target" in e else None) for e in data.get("exclude", ())),
        structural=tuple(_structural(s, where) for s in data.get("structural", ()))
        + tuple(s for _, structural in included for s in structural),
        scope_separator=data.get("scope_separator", "/"),
        parity=dict(data.get("parity", {})),
        notes=dict(data.get("notes", {})),
        derive=dict(data.get("derive", {})),
        target_args=dict(data.get("target_args", {})),
        derive_with=data.get("derive_with", ""),
        fallback_targets=dict(data.get("fallback_targets", {})),
        inits=tuple(Init(where.regex(i, "target"), float(i.get("value", 0.0)), i.get("reason", "set by rule"))
                    for i in data.get("init", ())),
    )


def _include(raw: dict, where: "_Locator") -> tuple[tuple[Rule, ...], tuple[Structural, ...]]:
    """A built-in set's rules and structural pairings, their targets prefixed (its excludes stay its own)."""
    name, prefix = raw.get("ruleset", ""), raw.get("target_prefix", "")
    if not name or not _builtin_file(name).is_file():
        raise RuleFileError(f"{where.at(name or 'include')}: include: no built-in rule set {name!r}")
    other = _load_builtin(name)
    rules = tuple(replace(r, target=prefix + r.target) for r in other.rules)
    structural = tuple(replace(s, target=re.compile(_prefixed_pattern(s.target.pattern, prefix)))
                       for s in other.structural)
    return rules, structural


def _prefixed_pattern(pattern: str, prefix: str) -> str:
    anchored = pattern.startswith("^")
    return ("^" if anchored else "") + re.escape(prefix) + (pattern[1:] if anchored else ".*" + pattern)


def _rule(raw: dict, where: "_Locator") -> Rule:
    if "target" not in raw:
        raise RuleFileError(f"{where.at(raw.get('source', ''))}: rule has no target")
    try:
        transforms = tuple(parse(t) for t in raw.get("transform", ()))
    except TransformError as e:
        raise RuleFileError(f"{where.at(raw.get('source', ''))}: {e}") from e
    return Rule(where.regex(raw, "source"), raw["target"], transforms, _part(raw, where), where.label(raw["source"]))


def _structural(raw: dict, where: "_Locator") -> Structural:
    order = raw.get("target_order", "model")
    if order not in ("model", "name"):
        raise RuleFileError(f"{where.at(raw.get('source', ''))}: target_order {order!r} is not one of model, name")
    return Structural(where.regex(raw, "source"), where.regex(raw, "target"), dict(raw.get("kinds", {})),
                      _part(raw, where), where.label(raw["source"]), order)


def _part(raw: dict, where: "_Locator") -> str:
    part = raw.get("part", "backbone")
    if part not in PARTS:
        raise RuleFileError(f"{where.at(raw.get('source', ''))}: part {part!r} is not one of {', '.join(PARTS)}")
    return part


class _Locator:
    """Find the line a value came from, for messages (tomllib keeps no positions)."""

    def __init__(self, path, text: str):
        self.path, self.lines = path, text.splitlines()

    def line(self, needle: str) -> int:
        for number, line in enumerate(self.lines, 1):
            if needle and needle in line:
                return number
        return 0

    def at(self, needle: str) -> str:
        return f"{self.path}:{self.line(needle)}"

    def label(self, needle: str) -> str:
        return f"{Path(self.path).name}:{self.line(needle)}"

    def regex(self, raw: dict, key: str) -> re.Pattern:
        if key not in raw:
            raise RuleFileError(f"{self.path}: an entry has no {key!r}")
        try:
            return re.compile(raw[key])
        except re.error as e:
            raise RuleFileError(f"{self.at(raw[key])}: invalid regular expression {raw[key]!r}: {e}") from e


def _builtin_file(stem: str):
    return resources.files("migrate.rules").joinpath("maps").joinpath(f"{stem}.toml")


@lru_cache(maxsize=None)
def _load_builtin(stem: str) -> RuleSet:
    """One built-in file, read and parsed once (for ``builtin`` and for every set that includes it)."""
    entry = _builtin_file(stem)
    return load(Path(str(entry)), entry.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def builtin() -> dict[str, RuleSet]:
    """Every built-in rule set by name; refuses two sets of one name or two sets for one architecture."""
    sets: dict[str, RuleSet] = {}
    served: dict[str, str] = {}
    folder = resources.files("migrate.rules").joinpath("maps")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        ruleset = _load_builtin(entry.name.removesuffix(".toml"))
        if ruleset.name in sets:
            raise RuleFileError(f"{entry}: rule set {ruleset.name!r} is already defined in {sets[ruleset.name].path}")
        for arch in ruleset.architectures:
            if arch in served:
                raise RuleFileError(f"{entry}: architecture {arch!r} is already served by rule set {served[arch]!r}")
            served[arch] = ruleset.name
        sets[ruleset.name] = ruleset
    return sets


def for_architecture(architecture: str) -> RuleSet:
    for ruleset in builtin().values():
        if architecture in ruleset.architectures:
            return ruleset
    known = sorted(a for s in builtin().values() for a in s.architectures)
    raise CkptkitError(f"no rule set for architecture {architecture!r}; known: {', '.join(known)}. "
                       "Pass --rules FILE with rules for it, or convert without --target (generic)")


def get(name: str) -> RuleSet:
    try:
        return builtin()[name]
    except KeyError:
        raise CkptkitError(f"no rule set named {name!r}; known: {', '.join(sorted(builtin()))}") from None
