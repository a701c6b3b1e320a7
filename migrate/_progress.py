"""A progress bar on stderr for work that takes more than a moment."""
from __future__ import annotations

import sys
import time


class Progress:
    """Byte-count progress, drawn only on a terminal and at most 10 times a second."""

    def __init__(self, total: int, label: str, stream=None):
        self.total, self.label, self.done = max(1, total), label, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.start = self._last = time.monotonic()

    def __call__(self, amount: int) -> None:
        self.done += amount
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.done >= self.total):
            self._last = now
            rate = self.done / max(now - self.start, 1e-9) / 2**20
            width = 30
            filled = int(width * min(1.0, self.done / self.total))
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done / self.total:4.0%} {rate:7.1f} MB/s")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
