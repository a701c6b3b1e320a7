"""Sparsity measured from the weights: per prunable layer, the zero fraction of its kernel (and m:n conformity).

Nothing here trusts the pruning schedule: a stripped model's kernels are read
and counted.  Task-agnostic, numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KERNELS = ("kernel", "depthwise_kernel")


@dataclass(frozen=True)
class LayerSparsity:
    layer: str
    kind: str  # the layer class
    weights: int  # kernel elements
    zeros: int
    sparsity: float  # zeros / weights
    target: float | None = None  # what the schedule aimed for (None: not pruned)
    m_by_n: bool | None = None  # every group of n consecutive input-channel weights holds >= m zeros


def kernel_of(layer):
    for weight in layer.weights:
        base = weight.name.split("/")[-1].split(":")[0]
        if base in KERNELS:
            return np.asarray(weight.numpy())
    return None


def measure(model, targets: dict | None = None, m_by_n: tuple | None = None) -> tuple[LayerSparsity, ...]:
    """One row per layer with a kernel, in model order."""
    targets = targets or {}
    rows = []
    for layer in model.layers:
        kernel = kernel_of(layer)
        if kernel is None:
            continue
        zeros = int(kernel.size - np.count_nonzero(kernel))
        target = targets.get(layer.name)
        conform = is_m_by_n(kernel, m_by_n) if m_by_n and target is not None else None
        rows.append(LayerSparsity(layer.name, type(layer).__name__, int(kernel.size), zeros,
                                  round(zeros / max(kernel.size, 1), 6), target, conform))
    return tuple(rows)


def overall(rows, pruned_only: bool = True) -> float:
    chosen = [r for r in rows if r.target is not None] if pruned_only else list(rows)
    total = sum(r.weights for r in chosen)
    return round(sum(r.zeros for r in chosen) / total, 6) if total else 0.0


def is_m_by_n(kernel: np.ndarray, m_by_n: tuple) -> bool:
    """TFLite layout ``[C_out, ..., C_in]``: every run of ``n`` input-channel weights has at least ``m`` zeros."""
    m, n = m_by_n
    if kernel.ndim == 4:
        rows = np.transpose(kernel, (3, 0, 1, 2)).reshape(-1, kernel.shape[2])
    elif kernel.ndim == 2:
        rows = kernel.T
    else:
        return False
    if rows.shape[1] % n:
        return False
    groups = rows.reshape(rows.shape[0], -1, n)
    return bool(((groups == 0).sum(-1) >= m).all())
