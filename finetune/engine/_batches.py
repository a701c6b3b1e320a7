"""Batches of a split with a progress bar: validation, the metrics pass and ``ckpt-finetune eval``."""
from __future__ import annotations

from reports.console import progress


def known_length(dataset) -> int | None:
    """The number of batches when tf.data knows it (None: unknown or infinite)."""
    cardinality = getattr(dataset, "cardinality", None)
    n = int(cardinality()) if cardinality else -1
    return n if n >= 0 else None


def with_progress(dataset, desc: str, quiet: bool | None = None):
    """Iterate ``dataset`` as it is, drawing a tqdm bar (rate, ETA when the length is known) that disappears
    when done; ``quiet=None`` follows ``--quiet`` and whether stderr is a terminal."""
    return progress(known_length(dataset), desc, "batch", quiet=quiet, leave=False, iterable=dataset)
