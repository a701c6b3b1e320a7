"""Which architecture a checkpoint holds, from signatures in ``rules/architectures.toml``."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Mapping

from reports import ArchitectureGuess, UNKNOWN

from ._formats import TensorSpec


@dataclass(frozen=True)
class Signature:
    name: str
    require: re.Pattern
    support: tuple[str, ...]
    count: dict | None
    params: dict


@lru_cache(maxsize=1)
def signatures() -> tuple[Signature, ...]:
    text = resources.files("migrate.rules").joinpath("architectures.toml").read_text(encoding="utf-8")
    found, seen = [], set()
    for raw in tomllib.loads(text)["architecture"]:
        if raw["name"] in seen:
            raise ValueError(f"architectures.toml: {raw['name']!r} is defined twice")
        seen.add(raw["name"])
        found.append(Signature(raw["name"], re.compile(raw["require"]), tuple(raw.get("support", ())),
                               raw.get("count"), raw.get("params", {})))
    return tuple(found)


def detect(specs: Mapping[str, TensorSpec]) -> ArchitectureGuess:
    """Best-scoring architecture for these tensors, or ``unknown``."""
    names = sorted(specs)
    best, best_key = UNKNOWN, (0.0, 0)
    for order, signature in enumerate(signatures()):
        guess = _score(signature, names, specs)
        if guess is None:
            continue
        key = (guess.confidence, -order)
        if key > best_key:
            best, best_key = guess, key
    return best


def _score(sig: Signature, names: list[str], specs) -> ArchitectureGuess | None:
    anchor = next((m for m in map(sig.require.search, names) if m), None)
    if anchor is None:
        return None
    groups = {k: v for k, v in anchor.groupdict().items() if v is not None}
    evidence = [f"found {anchor.string}"]
    hits = 0
    for pattern in sig.support:
        regex = re.compile(_fill(pattern, groups))
        match = next((n for n in names if regex.search(n)), None)
        hits += match is not None
        evidence.append(f"found {match}" if match else f"missing {pattern}")
    confidence = 0.6 + 0.4 * hits / max(1, len(sig.support))
    if sig.count:
        consistent, note = _check_count(sig.count, groups, names)
        evidence.append(note)
        confidence *= 1.0 if consistent else 0.5
    return ArchitectureGuess(_fill_name(sig.name, groups), round(confidence, 2), tuple(evidence), _params(sig.params, names, specs))


def _fill(pattern: str, groups: dict[str, str]) -> str:
    for key, value in groups.items():
        pattern = pattern.replace("{" + key + "}", re.escape(value))
    return pattern


def _fill_name(name: str, groups: dict[str, str]) -> str:
    return name.format(**groups) if groups else name


def _check_count(count: dict, groups: dict[str, str], names: list[str]) -> tuple[bool, str]:
    regex = re.compile(_fill(count["pattern"], groups))
    found = len({m.group(1) for m in map(regex.search, names) if m})
    variant = next(iter(groups.values()), "")
    expected = count["expect"].get(variant)
    if expected is None:
        return True, f"{count['label']}: {found}"
    if found == expected:
        return True, f"{count['label']}: {found}, as expected for {variant}"
    return False, f"{count['label']}: {found}, but {variant} has {expected} (renamed or truncated checkpoint?)"


def _params(params: dict, names: list[str], specs) -> dict[str, int]:
    out = {}
    for key, how in params.items():
        if "count" in how:
            regex = re.compile(how["count"])
            out[key] = len({m.group(1) for m in map(regex.search, names) if m})
        elif how.get("tensor") in specs and len(specs[how["tensor"]].shape) > how["axis"]:
            out[key] = specs[how["tensor"]].shape[how["axis"]]
    return out
