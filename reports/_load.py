"""Read a report back from its JSON: the registry of report kinds and one generic decoder.

Every report class carries a class attribute ``kind``; :func:`to_data` writes it
as the top-level ``"kind"`` key and :func:`from_data` looks the class up here.
The decoder walks the dataclass fields and their type hints (nested
dataclasses, tuples, lists, dicts, optionals), so a new report kind needs one
``register_kind`` call and no decoding code.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path

from ._convert import ConvertReport, MappingReport
from ._diff import ReportDiff
from ._export import ExportReport
from ._finetune import FinetuneReport
from ._inspect import InspectReport
from ._quantize import QuantizeReport
from ._transfer import TransferReport
from ._validate import ValidateReport
from ._zoo import ZooReport

KINDS: dict[str, type] = {}
_MAX_PROBLEMS = 8


class ReportFormatError(ValueError):
    """A JSON file is not a report this suite can read."""


def register_kind(cls: type) -> type:
    """Make ``cls`` (a dataclass with a ``kind`` class attribute) readable by :func:`from_data`."""
    kind = getattr(cls, "kind", None)
    if not dataclasses.is_dataclass(cls) or not isinstance(kind, str):
        raise TypeError(f"{cls.__name__}: a report kind must be a dataclass with a class attribute `kind = \"...\"`")
    if "kind" in {f.name for f in dataclasses.fields(cls)}:
        raise TypeError(f"{cls.__name__}: a field named `kind` would clash with the top-level \"kind\" key")
    if kind in KINDS and KINDS[kind] is not cls:
        raise ValueError(f"report kind {kind!r} is already registered by {KINDS[kind].__name__}; "
                         f"choose another name for {cls.__name__}")
    KINDS[kind] = cls
    return cls


# The kinds this suite writes.  A new one (fine-tune, quantize) joins this tuple and
# _render._TEXT; its HTML page and its diff come for free.
_BUILT_IN = (InspectReport, MappingReport, ConvertReport, ZooReport, ReportDiff, ValidateReport, ExportReport)
for _cls in _BUILT_IN:
    register_kind(_cls)
register_kind(FinetuneReport)  # ckpt-finetune; joins _BUILT_IN when tests/test_report_cli.py has its example
register_kind(QuantizeReport)  # ckpt-quantize
register_kind(TransferReport)  # ckpt-finetune transfer


def known_kinds() -> str:
    return ", ".join(sorted(KINDS))


def load_report(path) -> object:
    """The report stored in the JSON file ``path``; :class:`ReportFormatError` names the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ReportFormatError(f"{path}: not a UTF-8 text file ({e.reason}); pass a report .json") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReportFormatError(f"{path}: not JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                                "pass the .json a ckptkit command wrote") from e
    except RecursionError as e:
        raise ReportFormatError(f"{path}: nested too deeply to be a report; pass the .json a ckptkit command wrote") from e
    except ValueError as e:  # e.g. an integer too long to convert
        raise ReportFormatError(f"{path}: not JSON a report can hold ({e}); pass the .json a ckptkit command wrote") from e
    return from_data(data, source=str(path))


def from_data(data: dict, source: str = "<data>") -> object:
    """The report dataclass whose ``to_data`` gave ``data``."""
    if not isinstance(data, dict):
        raise ReportFormatError(f"{source}: expected a JSON object with a \"kind\" key, found {_json_type(data)}")
    kind = data.get("kind")
    if kind not in KINDS:
        found = "no \"kind\" key" if "kind" not in data else f"kind {kind!r}"
        raise ReportFormatError(f"{source}: expected a report of a known kind ({known_kinds()}), found {found}; "
                                "rerun the command that wrote it to get a current report")
    decoder = _Decoder()
    body = {k: v for k, v in data.items() if k != "kind"}
    report = decoder.decode(KINDS[kind], body, "")
    if decoder.problems:
        shown = decoder.problems[:_MAX_PROBLEMS]
        more = len(decoder.problems) - len(shown)
        raise ReportFormatError(f"{source}: not a valid {kind!r} report: " + "; ".join(shown)
                                + (f"; and {more} more" if more else ""))
    return report


class _Decoder:
    """Turns JSON values into typed values, collecting every problem instead of stopping at the first."""

    def __init__(self):
        self.problems: list[str] = []

    def decode(self, tp, value, where: str):
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is typing.Any:
            return value
        if origin in (typing.Union, types.UnionType):
            return self._union(args, value, where)
        if dataclasses.is_dataclass(tp):
            return self._dataclass(tp, value, where)
        if origin in (tuple, list):
            return self._sequence(origin, args, value, where)
        if origin is dict:
            return self._dict(args, value, where)
        return self._scalar(tp, value, where)

    def _fail(self, where: str, expected: str, value) -> None:
        self.problems.append(f"{where or 'top level'}: expected {expected}, found {_json_type(value)}")

    def _union(self, args, value, where: str):
        if value is None and type(None) in args:
            return None
        first_problems = None
        for alternative in (a for a in args if a is not type(None)):
            trial = _Decoder()
            result = trial.decode(alternative, value, where)
            if not trial.problems:
                return result
            first_problems = first_problems or trial.problems
        self.problems += first_problems or []
        return None

    def _dataclass(self, cls, value, where: str):
        if not isinstance(value, dict):
            self._fail(where, f"an object ({cls.__name__})", value)
            return None
        before = len(self.problems)
        hints = _hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        derived = {f.name for f in dataclasses.fields(cls) if not f.init}  # recomputed by the class itself
        unknown = sorted(set(value) - set(fields) - derived)
        if unknown:
            self.problems.append(f"{where or 'top level'}: unknown {cls.__name__} field(s) {', '.join(unknown)}")
        missing = [name for name, f in fields.items() if name not in value
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            self.problems.append(f"{where or 'top level'}: missing {cls.__name__} field(s) {', '.join(missing)}")
        kwargs = {name: self.decode(hints[name], value[name], f"{where}.{name}" if where else name)
                  for name in fields if name in value}
        if len(self.problems) > before:
            return None
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            self.problems.append(f"{where or 'top level'}: {cls.__name__} rejected the values ({e})")
            return None

    def _sequence(self, origin, args, value, where: str):
        if not isinstance(value, (list, tuple)):
            self._fail(where, "an array", value)
            return None
        if origin is tuple and args and args[-1] is not Ellipsis:  # fixed-length tuple[A, B]
            if len(args) != len(value):
                self._fail(where, f"an array of {len(args)} items", value)
                return None
            items = [self.decode(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(args, value))]
        else:
            item = args[0] if args else typing.Any
            items = [self.decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items

    def _dict(self, args, value, where: str):
        if not isinstance(value, dict):
            self._fail(where, "an object", value)
            return None
        key_type, value_type = args or (str, typing.Any)
        out = {}
        for k, v in value.items():
            key = k
            if key_type is int:
                try:
                    key = int(k)
                except ValueError:
                    self._fail(f"{where}[{k!r}]", "an integer key", k)
            out[key] = self.decode(value_type, v, f"{where}[{k!r}]")
        return out

    def _scalar(self, tp, value, where: str):
        if tp is type(None):
            if value is not None:
                self._fail(where, "null", value)
            return None
        if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if tp is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tp in (str, bool) and isinstance(value, tp):
            return value
        if tp in (float, int, str, bool):
            self._fail(where, {float: "a number", int: "an integer", str: "a string", bool: "true or false"}[tp], value)
            return None
        raise TypeError(f"{where}: the report decoder does not handle the type {tp!r}; "
                        "use dataclasses, tuples, lists, dicts, optionals and str/int/float/bool in reports")


_HINTS: dict[type, dict] = {}


def _hints(cls) -> dict:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _json_type(value) -> str:
    if value is None:
        return "null"
    name = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)
    shown = json.dumps(value, default=str)
    return f"{name} {shown[:40]}{'...' if len(shown) > 40 else ''}"
