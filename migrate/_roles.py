"""Classify each tensor by what it is for, from rules in ``rules/roles.toml``."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ._formats._dtypes import FLOATING

ROLES = (
    "parameter", "normalization_statistic", "optimizer_slot", "optimizer_state",
    "moving_average", "counter", "metadata", "other",
)
_SUFFIXES = re.compile(r"(/\.ATTRIBUTES/VARIABLE_VALUE|:\d+)$")


@dataclass(frozen=True)
class Role:
    role: str
    optimizer: str | None = None


@dataclass(frozen=True)
class _RoleRule:
    role: str
    pattern: re.Pattern
    optimizer: str | None
    optimizer_group: int | None


def normalise(name: str) -> str:
    """Name without the TF2 attribute and Keras ``:0`` suffixes."""
    return _SUFFIXES.sub("", name)


@lru_cache(maxsize=1)
def _rules() -> tuple[_RoleRule, ...]:
    text = resources.files("migrate.rules").joinpath("roles.toml").read_text(encoding="utf-8")
    rules = []
    for raw in tomllib.loads(text)["rule"]:
        if raw["role"] not in ROLES:
            raise ValueError(f"roles.toml: unknown role {raw['role']!r}; known: {', '.join(ROLES)}")
        rules.append(_RoleRule(raw["role"], re.compile(raw["pattern"]), raw.get("optimizer"), raw.get("optimizer_group")))
    return tuple(rules)


def classify(name: str, dtype: str) -> Role:
    """Role of one tensor from its name and dtype."""
    plain = normalise(name)
    for rule in _rules():
        match = rule.pattern.search(plain)
        if match:
            optimizer = match.group(rule.optimizer_group) if rule.optimizer_group else rule.optimizer
            return Role(rule.role, optimizer)
    return Role("parameter" if dtype in FLOATING else "other")
