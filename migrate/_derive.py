"""Values a rule set derives from tensor shapes (depth multiplier, class count, ...).

A rule file's ``[derive]`` table maps a name to ``{ tensor = [candidates],
axis = N, divide = D }``: the first candidate tensor present gives
``shape[axis] / divide``.  Elsewhere in the file, the string ``"$name"`` is
replaced by the derived value.
"""
from __future__ import annotations


def derive(table: dict, specs) -> dict[str, float | int]:
    values = {}
    for name, how in table.items():
        candidates = how["tensor"] if isinstance(how["tensor"], list) else [how["tensor"]]
        spec = next((specs[c] for c in candidates if c in specs), None)
        if spec is None or len(spec.shape) <= how["axis"]:
            continue
        raw = spec.shape[how["axis"]]
        divide = how.get("divide", 1)
        values[name] = raw // divide if raw % divide == 0 and divide == 1 else round(raw / divide, 4)
    return values


def derived(ruleset, specs) -> dict:
    """A rule set's derived values: its ``[derive]`` table, then its ``derive_with`` hook's answer over it."""
    values = derive(ruleset.derive, specs)
    if ruleset.derive_with:
        import importlib  # noqa: PLC0415

        module, _, function = ruleset.derive_with.partition(":")
        values.update(getattr(importlib.import_module(module), function)(specs))
    return values


def substitute(value, values: dict):
    """Replace ``"$name"`` strings (also inside dicts and lists) by derived values; drop unknown ones."""
    if isinstance(value, str) and value.startswith("$"):
        return values.get(value[1:], _MISSING)
    if isinstance(value, dict):
        out = {k: substitute(v, values) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _MISSING}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    return value


_MISSING = object()
