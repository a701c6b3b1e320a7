"""Which source tensors a conversion keeps, under which name, and why the rest go."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._formats import TensorSpec
from ._roles import classify

EMA_SUFFIX = "/ExponentialMovingAverage"
_PART = re.compile(r"^(?P<base>.+)/part_(?P<index>\d+)$")


@dataclass(frozen=True)
class SelectOptions:
    """Which source tensors a conversion keeps: optimizer slots, EMA averages in place of the weights, the
    global step; whether partitioned variables (``name/part_N``) are joined into one tensor."""

    keep_optimizer: bool = False
    use_ema: bool = False
    keep_global_step: bool = False
    join_partitions: bool = True


@dataclass(frozen=True)
class Selected:
    """One output tensor: its TF1 name and the source tensor(s) holding its value."""

    name: str
    sources: tuple[str, ...]  # several: partitions joined along axis 0
    shape: tuple[int, ...]
    dtype: str
    role: str
    note: str = ""  # "ema", "joined 3 partitions"


@dataclass
class Selection:
    kept: dict[str, Selected] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # source name -> reason
    warnings: list[str] = field(default_factory=list)


def select(specs: dict[str, TensorSpec], options: SelectOptions) -> Selection:
    result = Selection()
    roles = {name: classify(name, spec.dtype) for name, spec in specs.items()}
    for name, spec in specs.items():
        reason = _drop_reason(name, roles[name], options)
        if reason:
            result.dropped[name] = reason
        else:
            result.kept[name] = Selected(name, (name,), spec.shape, spec.dtype, roles[name].role)
    if options.use_ema:
        _take_ema(specs, result)
    if options.join_partitions:
        _join_parts(result)
    return result


def _drop_reason(name: str, role, options: SelectOptions) -> str | None:
    if role.role in ("optimizer_slot", "optimizer_state") and not options.keep_optimizer:
        what = f"optimizer slot ({role.optimizer})" if role.role == "optimizer_slot" else "optimizer state"
        return f"{what}; --keep-optimizer keeps it"
    if role.role == "moving_average":
        return "EMA shadow, taken as the weight" if options.use_ema else "EMA shadow; --use-ema takes weights from it"
    if role.role == "counter" and not (options.keep_global_step and name.endswith("global_step")):
        return "step counter; --keep-global-step keeps global_step"
    if name == "_CHECKPOINTABLE_OBJECT_GRAPH":
        return "object graph of the source; the output gets its own"
    return None


def _take_ema(specs, result: Selection) -> None:
    shadows = {n[: -len(EMA_SUFFIX)]: n for n in specs if n.endswith(EMA_SUFFIX)}
    if not shadows:
        result.warnings.append("--use-ema: the checkpoint holds no ExponentialMovingAverage shadows; raw weights used")
        return
    missing = []
    for name, item in list(result.kept.items()):
        shadow = shadows.get(name)
        if shadow and specs[shadow].shape == item.shape:
            result.kept[name] = Selected(name, (shadow,), item.shape, item.dtype, item.role, "ema")
        elif item.role == "parameter":
            missing.append(name)
    if missing:
        result.warnings.append(f"--use-ema: {len(missing)} weights have no EMA shadow and keep their raw value (first: {missing[0]})")


def _join_parts(result: Selection) -> None:
    groups: dict[str, dict[int, Selected]] = {}
    for name, item in result.kept.items():
        match = _PART.match(name)
        if match:
            groups.setdefault(match["base"], {})[int(match["index"])] = item
    for base, parts in groups.items():
        ordered = [parts[i] for i in sorted(parts)]
        if sorted(parts) != list(range(len(parts))) or base in result.kept or not _stackable(ordered):
            result.warnings.append(f"{base}/part_*: parts are not a complete, consistent partition; kept separately")
            continue
        for item in ordered:
            del result.kept[item.name]
        shape = (sum(p.shape[0] for p in ordered),) + ordered[0].shape[1:]
        sources = tuple(s for p in ordered for s in p.sources)
        result.kept[base] = Selected(base, sources, shape, ordered[0].dtype, ordered[0].role, f"joined {len(ordered)} partitions")


def _stackable(parts: list[Selected]) -> bool:
    first = parts[0]
    return all(len(p.shape) >= 1 and p.shape[1:] == first.shape[1:] and p.dtype == first.dtype for p in parts)
