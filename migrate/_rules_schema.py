"""The shape a rule file must have, checked before any rule is built.

TOML gives typed values, and a user's file may put a string where a table of
rules belongs (``rule = "a -> b"``) or a number where a regex belongs.  Every
such problem becomes one message naming the key, what was expected and what
was found, instead of an AttributeError deep in the loader.
"""
from __future__ import annotations

# array-of-tables sections -> field -> expected type
ENTRIES = {
    "rule": {"source": str, "target": str, "transform": list, "part": str},
    "exclude": {"source": str, "reason": str, "target": str},
    "include": {"ruleset": str, "target_prefix": str},
    "structural": {"source": str, "target": str, "kinds": dict, "part": str, "target_order": str},
    "init": {"target": str, "value": float, "reason": str},
}
TOP = {"name": str, "architectures": list, "targets": dict, "fallback_targets": dict, "scope_separator": str,
       "parity": dict, "notes": dict, "derive": dict, "target_args": dict, "derive_with": str}
_NAMES = {str: "a string", list: "an array", dict: "a table", bool: "a boolean", int: "an integer", float: "a number"}


def check(data: dict) -> str | None:
    """The first problem with the file's structure, or None."""
    for key, kind in TOP.items():
        if key in data and not _is(data[key], kind):
            return f"{key!r} must be {_NAMES[kind]}, not {_name(data[key])}"
    for section, fields in ENTRIES.items():
        entries = data.get(section, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            return f"{section!r} must be an array of tables ([[{section}]]), not {_name(entries)}"
        for entry in entries:
            for field, kind in fields.items():
                if field in entry and not _is(entry[field], kind):
                    return f"{section}.{field} must be {_NAMES[kind]}, not {_name(entry[field])}"
    return _strings("architectures", data.get("architectures", [])) or _strings_in(data) or _derive(data.get("derive", {}))


def _strings_in(data: dict) -> str | None:
    for entry in data.get("rule", []):
        if problem := _strings("rule.transform", entry.get("transform", [])):
            return problem
    for entry in data.get("structural", []):
        if problem := _strings("structural.kinds", list(entry.get("kinds", {}).values())):
            return problem
    for table in ("targets", "fallback_targets"):
        for name, target in data.get(table, {}).items():
            if not (isinstance(target, str) or isinstance(target, dict) and isinstance(target.get("target"), str)):
                return f"{table}.{name} must be a target string or a table with a 'target' string"
    for key in ("parity", "target_args"):
        for name, value in data.get(key, {}).items():
            if not isinstance(value, dict):
                return f"{key}.{name} must be a table, not {_name(value)}"
    return None


def _derive(table: dict) -> str | None:
    for name, how in table.items():
        tensor = how.get("tensor") if isinstance(how, dict) else None
        if not (isinstance(tensor, str) or isinstance(tensor, list) and tensor and all(isinstance(t, str) for t in tensor)) \
                or not _is(how.get("axis"), int) or not _is(how.get("divide", 1), float) or how.get("divide", 1) == 0:
            return f"derive.{name} must be a table with tensor and axis (and a non-zero divide), e.g. " \
                   "{ tensor = 'a/weights', axis = 3 }"
    return None


def _strings(key: str, values) -> str | None:
    bad = next((v for v in values if not isinstance(v, str)), None) if isinstance(values, list) else values
    return None if bad is None else f"{key} must hold strings only, not {_name(bad)}"


def _is(value, kind) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _name(value) -> str:
    for kind, name in _NAMES.items():
        if _is(value, kind):
            return name
    return type(value).__name__
