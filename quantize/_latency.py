"""Latency per image of a ``.tflite``: median and p90 over many timed invocations, at a given thread count.

Task-agnostic: the caller gives one input (float32, as :class:`~quantize._interpreter.Runner` takes it);
inputs are set once, then only ``invoke`` is timed, after warm-up runs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._errors import QuantizeError
from ._interpreter import Runner

MIN_RUNS = 50


@dataclass(frozen=True)
class Latency:
    threads: int
    runs: int
    median_ms: float
    p90_ms: float
    mean_ms: float


def measure(path, sample, *, threads: int = 1, runs: int = MIN_RUNS, warmup: int = 5,
            backend: str | None = None) -> Latency:
    """Time ``runs`` invocations of ``path`` on ``sample`` (``[1, H, W, C]``, or a tuple for several inputs)."""
    if runs < 1:
        raise QuantizeError(f"latency runs {runs}: expected at least 1 (the report asks for >= {MIN_RUNS})")
    runner = Runner(path, num_threads=threads, backend=backend)
    runner.set_inputs(sample if isinstance(sample, (tuple, list)) else (sample,))
    for _ in range(warmup):
        runner.invoke_only()
    times = np.empty(runs)
    for i in range(runs):
        started = time.perf_counter()
        runner.invoke_only()
        times[i] = time.perf_counter() - started
    ms = times * 1000.0
    return Latency(threads, runs, round(float(np.median(ms)), 4), round(float(np.percentile(ms, 90)), 4),
                   round(float(ms.mean()), 4))
