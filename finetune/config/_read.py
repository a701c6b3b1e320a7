"""Reading a text-format tree into the typed :class:`PipelineConfig`.

The schema is the dataclasses themselves (see :mod:`._pipeline` for the
conventions).  Three outcomes per field:

* understood and used: read, type-checked and range-checked; a wrong value is
  an error with its ``file:line:col`` (all such errors are collected into one
  :class:`ConfigError`, whatever ``strict`` says: the OD API would refuse them too);
* understood but not used (``KNOWN``): a :class:`Finding` with the reason;
* unknown: a :class:`Finding` of severity ``error`` with the closest known names.

``strict=True`` turns findings of severity ``warning`` or ``error`` into one
:class:`ConfigError`; otherwise they are returned in ``config.findings``.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from migrate.errors import CkptkitError

from ._pipeline import PipelineConfig
from migrate.textproto import Field, Message, Scalar, parse_file, parse_text

PLACEHOLDER = "PATH_TO_BE_CONFIGURED"
SEVERITIES = ("info", "warning", "error")
_SKIP = object()  # a oneof alternative ckptkit does not read: keep the default (or None)


class ConfigError(CkptkitError, ValueError):
    """A pipeline.config that ckptkit cannot use as written."""


@dataclass(frozen=True)
class Finding:
    """Something the reader noticed about one field (``code``: unknown_field, unsupported, ignored, placeholder)."""

    severity: str
    code: str
    path: str  # proto path, e.g. model.ssd.feature_extractor.batch_norm_trainable
    message: str
    file: str = ""
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else (self.file or "<config>")
        return f"{where}: {self.severity}: {self.path}: {self.message}"


class _Context:
    def __init__(self, filename: str):
        self.filename = filename
        self.findings: list[Finding] = []
        self.errors: list[tuple[int, int, str]] = []
        self.origins: dict[str, str] = {}

    def where(self, node) -> str:
        return f"{self.filename}:{node.line}:{node.col}"

    def error(self, node, path: str, detail: str) -> None:
        self.errors.append((node.line, node.col, f"{path} {detail}"))

    def finding(self, severity: str, code: str, node, path: str, message: str) -> None:
        self.findings.append(Finding(severity, code, path, message, self.filename, node.line, node.col))


def read_pipeline_config(text: str, filename: str = "pipeline.config", *, strict: bool = False,
                         source: Optional[str] = None) -> PipelineConfig:
    """Parse and read pipeline.config text (see the module docstring for ``strict``)."""
    return _to_config(parse_text(text, filename), filename, strict, source or "")


def load_pipeline_config(path, *, strict: bool = False) -> PipelineConfig:
    """Read a pipeline.config file; relative paths in it resolve against its directory."""
    return _to_config(parse_file(path), str(path), strict, str(Path(path).resolve()))


def _to_config(tree: Message, filename: str, strict: bool, source: str) -> PipelineConfig:
    ctx = _Context(filename)
    config = read_message(PipelineConfig, tree, "", ctx)
    if ctx.errors:
        errors = sorted(ctx.errors)
        if len(errors) == 1:
            line, col, text = errors[0]
            raise ConfigError(f"{filename}:{line}:{col}: {text}; fix it as the OD API's protos define it")
        shown = "; ".join(f"{line}:{col} {text}" for line, col, text in errors[:8])
        raise ConfigError(f"{filename}: {len(errors)} invalid settings: {shown}{'; ...' if len(errors) > 8 else ''}; "
                          "fix them as the OD API's protos define them")
    blocking = [f for f in ctx.findings if f.severity != "info"]
    if strict and blocking:
        shown = "; ".join(f"{f.line}:{f.col} {f.path}: {f.message}" for f in blocking[:8])
        raise ConfigError(f"{filename}: {len(blocking)} setting(s) ckptkit cannot honour (strict mode): {shown}"
                          f"{'; ...' if len(blocking) > 8 else ''}; remove them or run without strict")
    config = dataclasses.replace(config, source=source, origins=ctx.origins)
    findings = sorted(ctx.findings + placeholder_findings(config), key=lambda f: (f.line, f.col))
    return dataclasses.replace(config, findings=tuple(findings))


@functools.lru_cache(maxsize=None)
def _schema(cls) -> dict[str, tuple[str, object, bool]]:
    """proto name -> (attribute, type, inline) for one dataclass."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in getattr(cls, "META", ()):
            continue
        if f.name in getattr(cls, "INLINE", ()):
            for alt in _alternatives(hints[f.name]):
                out[alt.PROTO] = (f.name, alt, True)
        else:
            out[f.name] = (f.name, hints[f.name], False)
    return out


def _alternatives(tp) -> tuple:
    return tuple(a for a in _union_args(tp) if a is not type(None))


def _union_args(tp) -> tuple:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def _is_oneof(tp) -> bool:
    alts = _alternatives(tp)
    return bool(alts) and all(dataclasses.is_dataclass(a) and hasattr(a, "PROTO") for a in alts)


def read_message(cls, msg: Message, path: str, ctx: _Context):
    """Build ``cls`` from ``msg``; unknown and known-unused fields become findings."""
    schema, values, seen, first = _schema(cls), {}, {}, {}
    for fld in msg.fields:
        child = f"{path}.{fld.name}" if path else fld.name
        entry = schema.get(fld.name)
        if entry is None:
            _not_read(cls, fld, child, list(schema), ctx)
            continue
        attr, tp, inline = entry
        first.setdefault(attr, fld)
        repeated = typing.get_origin(tp) is tuple
        if inline or not repeated:
            if attr in seen:
                before = seen[attr]
                detail = (f"is set twice (first at {before.line}:{before.col}); keep one" if not inline else
                          f"conflicts with {before.name} at {before.line}:{before.col}: choose one")
                ctx.error(fld, child, detail)
                continue
            seen[attr] = fld
        if inline:
            value = read_message(tp, fld.value, child, ctx) if _is_message(fld, child, ctx) else _SKIP
        elif repeated:
            index = len(values.setdefault(attr, []))
            value = _read_value(typing.get_args(tp)[0], fld, f"{child}[{index}]", cls, ctx)
        else:
            value = _read_value(tp, fld, child, cls, ctx)
        if value is _SKIP:
            if type(None) in _union_args(tp):
                values[attr] = None
        elif repeated:
            values[attr].append(value)
        else:
            values[attr] = value
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    _check_ranges(cls, values, first, path, ctx)
    return cls(**values)


def _not_read(cls, fld: Field, path: str, known: list, ctx: _Context) -> None:
    known_unused = getattr(cls, "KNOWN", {})
    if fld.name in known_unused:
        severity, reason = known_unused[fld.name]
        what = {"info": "understood, no effect here", "warning": "understood but ignored",
                "error": "understood but not supported"}[severity]
        ctx.finding(severity, "ignored" if severity == "info" else "unsupported", fld, path, f"{what}: {reason}")
        return
    close = difflib.get_close_matches(fld.name, known + list(known_unused), n=3)
    hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "check the spelling against the OD API protos"
    ctx.finding("error", "unknown_field", fld, path, f"unknown field {fld.name!r}; {hint}")


def _is_message(fld: Field, path: str, ctx: _Context) -> bool:
    if isinstance(fld.value, Message):
        return True
    ctx.error(fld.value, path, f"expects a message ({fld.name} {{ ... }}), found {fld.value.text}")
    return False


def _read_value(tp, fld: Field, path: str, owner, ctx: _Context):
    alts = _alternatives(tp)
    if _is_oneof(tp):
        return _read_oneof(alts, fld, path, owner, ctx)
    if len(alts) == 1 and dataclasses.is_dataclass(alts[0]):
        return read_message(alts[0], fld.value, path, ctx) if _is_message(fld, path, ctx) else _SKIP
    if isinstance(fld.value, Message):
        ctx.error(fld, path, f"expects a value ({fld.name}: ...), found a message")
        return _SKIP
    value = _scalar(alts[0], fld.value, path, owner, fld.name, ctx)
    if value is not _SKIP:
        ctx.origins[path] = ctx.where(fld.value)
    return value


def _read_oneof(alts: tuple, fld: Field, path: str, owner, ctx: _Context):
    """``field { alternative { ... } }``: exactly one alternative, read or reported."""
    if not _is_message(fld, path, ctx):
        return _SKIP
    inner = fld.value.fields
    names = [a.PROTO for a in alts]
    if len(inner) != 1:
        found = "nothing" if not inner else ", ".join(f.name for f in inner)
        ctx.error(fld, path, f"must hold exactly one of {', '.join(names)}; found {found}")
        return _SKIP
    choice = inner[0]
    child = f"{path}.{choice.name}"
    for alt in alts:
        if alt.PROTO == choice.name:
            return read_message(alt, choice.value, child, ctx) if _is_message(choice, child, ctx) else _SKIP
    key = f"{fld.name}.{choice.name}"
    known_unused = getattr(owner, "KNOWN", {})
    if key in known_unused:
        severity, reason = known_unused[key]
        ctx.finding(severity, "unsupported" if severity != "info" else "ignored", choice, child,
                    f"understood but not supported: {reason}")
    else:
        close = difflib.get_close_matches(choice.name, names, n=2)
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"ckptkit knows {', '.join(names)}"
        ctx.finding("error", "unknown_field", choice, child, f"unknown {fld.name} {choice.name!r}; {hint}")
    return _SKIP


_BOOLS = {"true": True, "True": True, "t": True, "1": True, "false": False, "False": False, "f": False, "0": False}
_FLOAT_WORDS = {"inf": math.inf, "-inf": -math.inf, "infinity": math.inf, "-infinity": -math.inf, "nan": math.nan}


def _scalar(tp, node: Scalar, path: str, owner, name: str, ctx: _Context):
    if tp is bool:
        if node.text in _BOOLS:
            return _BOOLS[node.text]
        ctx.error(node, path, f"expects true or false, found {node.text}")
    elif tp is int:
        if node.kind == "number" and isinstance(node.value, int):
            return node.value
        ctx.error(node, path, f"expects an integer, found {node.text}")
    elif tp is float:
        if node.kind == "number":
            return float(node.value)
        if node.kind == "identifier" and node.text.lower() in _FLOAT_WORDS:
            return _FLOAT_WORDS[node.text.lower()]
        ctx.error(node, path, f"expects a number, found {node.text}")
    elif name in getattr(owner, "ENUMS", {}):
        allowed = owner.ENUMS[name]
        if node.kind == "identifier" and node.text in allowed:
            return node.text
        ctx.error(node, path, f"expects one of {', '.join(allowed)} (unquoted), found {node.text}")
    elif node.kind == "string":
        choices = getattr(owner, "CHOICES", {}).get(name)
        if choices is None or node.value in choices:
            return node.value
        ctx.error(node, path, f"expects one of {', '.join(map(repr, choices))}, found {node.text}")
    else:
        ctx.error(node, path, f"expects a quoted string, found {node.text}")
    return _SKIP


def _check_ranges(cls, values: dict, nodes: dict, path: str, ctx: _Context) -> None:
    for name, (low, high) in getattr(cls, "RANGES", {}).items():
        value = values.get(name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item is None or not isinstance(item, (int, float)):
                continue
            if (low is not None and item < low) or (high is not None and item > high) or item != item:
                bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
                node = nodes.get(name)
                line, col = (node.line, node.col) if node else (0, 0)
                ctx.errors.append((line, col, f"{path + '.' if path else ''}{name} must be {bounds}, found {item}"))


def placeholder_findings(config: PipelineConfig) -> list[Finding]:
    """Info findings for path settings still holding ``PATH_TO_BE_CONFIGURED``."""
    out = []
    for path, origin in config.origins.items():
        value = setting(config, path)
        if isinstance(value, str) and PLACEHOLDER in value:
            file, line, col = (origin.rsplit(":", 2) + ["0", "0"])[:3]
            out.append(Finding("info", "placeholder", path, f"still {value!r}; set it before this path is used",
                               file, int(line) if line.isdigit() else 0, int(col) if col.isdigit() else 0))
    return out


def setting(config, path: str):
    """The value at a proto path such as ``model.ssd.num_classes`` or ``eval_input_reader[0].shuffle``."""
    node = config
    for part in path.split("."):
        name, _, index = part.partition("[")
        if getattr(node, "PROTO", None) == name and not hasattr(node, name):
            continue  # a oneof alternative's name: the dataclass is the alternative itself
        node = _attribute(node, name)
        if index:
            node = node[int(index.rstrip("]"))]
    return node


def _attribute(node, name: str):
    if hasattr(node, name):
        return getattr(node, name)
    for attr in getattr(type(node), "INLINE", ()):
        value = getattr(node, attr)
        if getattr(value, "PROTO", None) == name:
            return value
    raise KeyError(name)
