"""The hostile-input corpus: broken copies of the real fixtures, each with its command line and expected outcome.

Every case copies a fixture (or nothing) into a sandbox, damages it with the
helpers in ``_damage`` (ckptkit's own table/index writers, in-place patches with
recomputed checksums; never a format written by hand), and states

* ``command``: the command line, e.g. ``ckpt-migrate inspect {in}``;
* ``error``: a regex for the one stderr line ``ckpt-...: error: ...``;
* ``exit``: the exit code (2 for unusable input);
* ``stdout``: for the few cases that must succeed (controls, hostile but valid input).

Families: v2-index (the table: footer, index block, data blocks, trailers, snappy;
header and entries), v2-data (shards), v1, objgraph, h5, state (``checkpoint``
files), paths, convert, rules, manifest, zoo, report; pipeline, label-map, tfrecord (ckpt-finetune) and
quantize (ckpt-quantize).

``python -m tests.hostile.corpus`` (from the repository root) lists the cases.
"""
from __future__ import annotations

from . import (  # noqa: F401 - registering the cases is importing them
    _cases_data, _cases_files, _cases_finetune, _cases_quantize, _cases_tables, _cases_text,
)
from ._case import CASES, Case

__all__ = ["CASES", "Case", "families"]


def families() -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in CASES.values():
        counts[c.family] = counts.get(c.family, 0) + 1
    return counts


if __name__ == "__main__":
    for c in CASES.values():
        print(f"{c.family:9} {c.name:40} exit {c.exit}  {c.command}")
    print(f"{len(CASES)} cases: " + ", ".join(f"{k} {v}" for k, v in families().items()))
