"""Tensor transforms a mapping rule may declare, written as text in rule files.

``transpose(3,2,0,1)``, ``reshape(-1,4096)``, ``squeeze`` / ``squeeze(0,1)``,
``slice(axis,start,stop)``, ``drop_background`` (drop class 0 on the last axis
when the source has one class more than the target), ``cast(float16)``.
Each transform computes its output shape from shapes alone, so ``map`` (the
dry run) never reads tensor bytes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ._formats._dtypes import numpy_dtype

_CALL = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


class TransformError(ValueError):
    """A transform that does not parse, or does not fit a tensor's shape."""


@dataclass(frozen=True)
class Transform:
    op: str
    args: tuple

    def __str__(self) -> str:
        return f"{self.op}({','.join(map(str, self.args))})" if self.args else self.op

    def shape(self, shape: tuple[int, ...], target: tuple[int, ...] | None) -> tuple[int, ...]:
        return _SHAPES[self.op](self, tuple(shape), target)

    def apply(self, value: np.ndarray, target: tuple[int, ...] | None) -> np.ndarray:
        return _APPLY[self.op](self, value, target)


def parse(text: str) -> Transform:
    match = _CALL.match(text)
    if not match or match[1] not in _SHAPES:
        raise TransformError(f"unknown transform {text!r}; known: {', '.join(sorted(_SHAPES))}")
    op, raw = match[1], (match[2] or "").strip()
    args = tuple(_arg(a) for a in raw.split(",")) if raw else ()
    return Transform(op, args)


def _arg(text: str):
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        if numpy_dtype(text) is None:
            raise TransformError(f"transform argument {text!r} is neither an integer nor a dtype") from None
        return text


def _transpose_shape(t, shape, target):
    if sorted(t.args) != list(range(len(shape))):
        raise TransformError(f"{t} does not fit a tensor of rank {len(shape)}")
    return tuple(shape[i] for i in t.args)


def _reshape_shape(t, shape, target):
    args = list(t.args) if t.args else list(target or ())
    total = math.prod(shape)
    known = math.prod(a for a in args if a != -1)
    if args.count(-1) > 1 or (args.count(-1) == 1 and (known == 0 or total % known)) or (-1 not in args and known != total):
        raise TransformError(f"{t} does not fit shape {list(shape)} ({total} elements)")
    return tuple(total // known if a == -1 else a for a in args)


def _squeeze_shape(t, shape, target):
    axes = [a % len(shape) for a in t.args] if t.args else [i for i, d in enumerate(shape) if d == 1]
    if any(shape[a] != 1 for a in axes):
        raise TransformError(f"{t}: axes {axes} of shape {list(shape)} are not all 1")
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _slice_shape(t, shape, target):
    axis, start, stop = t.args
    axis %= len(shape)
    length = len(range(*slice(start, stop).indices(shape[axis])))
    return shape[:axis] + (length,) + shape[axis + 1 :]


def _drop_background_shape(t, shape, target):
    if target is not None and shape and target and shape[-1] == target[-1] + 1:
        return shape[:-1] + (shape[-1] - 1,)
    return shape


_SHAPES = {
    "transpose": _transpose_shape,
    "reshape": _reshape_shape,
    "squeeze": _squeeze_shape,
    "slice": _slice_shape,
    "drop_background": _drop_background_shape,
    "cast": lambda t, shape, target: shape,
}


def _apply_slice(t, value, target):
    axis, start, stop = t.args
    index = [slice(None)] * value.ndim
    index[axis % value.ndim] = slice(start, stop)
    return value[tuple(index)]


_APPLY = {
    "transpose": lambda t, v, target: np.ascontiguousarray(np.transpose(v, t.args)),
    "reshape": lambda t, v, target: v.reshape(_reshape_shape(t, v.shape, target)),
    "squeeze": lambda t, v, target: v.reshape(_squeeze_shape(t, v.shape, target)),
    "slice": _apply_slice,
    "drop_background": lambda t, v, target: v[..., 1:] if _drop_background_shape(t, v.shape, target) != v.shape else v,
    "cast": lambda t, v, target: v.astype(numpy_dtype(t.args[0])),
}


def chain_shape(chain, shape, target):
    for t in chain:
        shape = t.shape(shape, target)
    return shape


def chain_apply(chain, value, target):
    for t in chain:
        value = t.apply(value, target)
    return value


def effective(chain, shape, target) -> tuple[Transform, ...]:
    """The steps of ``chain`` that change something for this shape (a 1001->1001 drop_background does not)."""
    kept = []
    for t in chain:
        after = t.shape(shape, target)
        identity = t.op == "transpose" and list(t.args) == sorted(t.args)
        if after != shape or (t.op in ("transpose", "cast") and not identity):
            kept.append(t)
        shape = after
    return tuple(kept)
