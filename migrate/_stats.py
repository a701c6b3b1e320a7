"""Streaming per-tensor statistics: one pass over the bytes, chunk by chunk.

Each chunk is small enough to stay in cache while several numpy reductions
run over it; partial means and squared deviations are merged with Chan's
formula, so the std is stable even when the mean dwarfs the spread
(moving variances near 1, say).
"""
from __future__ import annotations

import math

import numpy as np

from reports import TensorStats


class StatsAccumulator:
    def __init__(self):
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        self.nan = 0
        self.inf = 0
        self.zeros = 0
        self.finite = 0

    def add(self, chunk: np.ndarray) -> None:
        if chunk.size == 0:
            return
        x = _as_number(chunk)
        self.count += x.size
        self.zeros += x.size - int(np.count_nonzero(x))
        lo, hi = x.min(), x.max()
        if x.dtype.kind == "f" and not (math.isfinite(lo) and math.isfinite(hi)):
            x = self._drop_non_finite(x)
            if x.size == 0:
                return
            lo, hi = x.min(), x.max()
        self.lo, self.hi = min(self.lo, float(lo)), max(self.hi, float(hi))
        self._merge(x)

    def _drop_non_finite(self, x: np.ndarray) -> np.ndarray:
        nan = np.isnan(x)
        finite = np.isfinite(x)
        self.nan += int(nan.sum())
        self.inf += int(x.size - finite.sum() - nan.sum())
        return x[finite]

    def _merge(self, x: np.ndarray) -> None:
        n = x.size
        mean = float(x.sum(dtype=np.float64 if x.dtype.kind != "f" else x.dtype)) / n
        centred = x - x.dtype.type(mean) if x.dtype.kind == "f" else x - mean
        m2 = float(np.dot(centred, centred))
        total = self.finite + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.finite * n / total
        self.mean += delta * n / total
        self.finite = total

    def result(self) -> TensorStats:
        has = self.finite > 0
        return TensorStats(
            min=self.lo if has else None,
            max=self.hi if has else None,
            mean=self.mean if has else None,
            std=math.sqrt(self.m2 / self.finite) if has else None,
            nan=self.nan,
            inf=self.inf,
            zero_fraction=self.zeros / self.count if self.count else 0.0,
        )


def _as_number(chunk: np.ndarray) -> np.ndarray:
    """float16/bfloat16 widen to float32; integers and bools to float64."""
    if chunk.dtype.kind == "f" and chunk.dtype.itemsize >= 4:
        return chunk
    if chunk.dtype.kind in "fV" or chunk.dtype.name == "bfloat16":
        return chunk.astype(np.float32)
    return chunk.astype(np.float64)


def has_numbers(dtype: str) -> bool:
    return dtype not in ("string", "resource", "variant") and not dtype.startswith("complex")
