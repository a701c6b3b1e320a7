"""``inspect``: audit a checkpoint without changing it."""
from __future__ import annotations

from reports import Finding, InspectReport, TensorInfo, TensorStats, totals_of

from ._arch import detect
from ._formats import CheckpointReader, location, open_checkpoint
from ._roles import classify
from ._stats import StatsAccumulator, has_numbers
from .errors import ChecksumError, CheckpointFormatError


def inspect(path, *, stats: bool = False, verify: bool = False, progress=None) -> InspectReport:
    """Audit the checkpoint at ``path``; reads tensor bytes only for ``stats``/``verify``.

    Raises :class:`~migrate.errors.CkptkitError` subclasses for unusable input
    (including checksum failures found by ``stats``/``verify``).
    """
    with open_checkpoint(path) as reader:
        specs = reader.specs()
        if verify and not stats:
            _raise_checksum_problems(reader)
        computed = _all_stats(reader, specs, progress) if stats else {}
        tensors = tuple(_tensor_info(spec, computed.get(name)) for name, spec in specs.items())
        return InspectReport(
            path=str(location(path)),  # a URL stays one
            format=reader.format,
            files=tuple(str(f) for f in reader.files()),
            tensors=tensors,
            totals=totals_of(tensors),
            architecture=detect(specs),
            findings=tuple(_findings(tensors)),
        )


def _tensor_info(spec, stats: TensorStats | None) -> TensorInfo:
    role = classify(spec.name, spec.dtype)
    return TensorInfo(spec.name, spec.shape, spec.dtype, role.role, spec.nbytes, role.optimizer, stats)


def _raise_checksum_problems(reader: CheckpointReader) -> None:
    problems = reader.verify()
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ChecksumError(f"{first.detail}{more}" if first.detail.startswith(first.file) else f"{first.file}: {first.detail}{more}")


def _all_stats(reader: CheckpointReader, specs, progress) -> dict[str, TensorStats]:
    out, failures = {}, []
    names = [n for n, spec in specs.items() if has_numbers(spec.dtype)]
    for i, name in enumerate(names):
        spec = specs[name]
        for ahead in names[i : i + 2] if i == 0 else names[i + 1 : i + 2]:
            reader.prefetch(ahead)  # disk reads the next tensor while this one is computed
        acc = StatsAccumulator()
        try:
            for chunk in reader.iter_chunks(name):
                acc.add(chunk)
        except CheckpointFormatError as e:
            failures.append(str(e))
            continue
        finally:
            if progress:
                progress(spec.nbytes)
        out[name] = acc.result()
    if failures:
        more = f" (and {len(failures) - 1} more tensors)" if len(failures) > 1 else ""
        raise ChecksumError(failures[0] + more)
    return out


def _findings(tensors) -> list[Finding]:
    found = _content_findings(tensors)
    slots = [t for t in tensors if t.role == "optimizer_slot"]
    if slots:
        optimizers = ", ".join(sorted({t.optimizer or "unknown" for t in slots}))
        found.append(Finding("info", "optimizer-slots", f"{len(slots)} optimizer slot tensors ({optimizers}); convert drops them unless --keep-optimizer"))
    averages = [t for t in tensors if t.role == "moving_average"]
    if averages:
        found.append(Finding("info", "ema-shadows", f"{len(averages)} ExponentialMovingAverage shadows; convert --use-ema takes weights from them"))
    return found


def _content_findings(tensors) -> list[Finding]:
    found = []
    for t in tensors:
        s = t.stats
        if s is None:
            continue
        if s.nan or s.inf:
            found.append(Finding("error", "non-finite", f"{t.name}: {s.nan} NaN and {s.inf} Inf values", t.name))
        elif t.size > 1 and s.zero_fraction == 1.0:
            found.append(Finding("warning", "all-zero", f"{t.name}: every value is zero", t.name))
        elif t.size > 1 and s.min == s.max:
            found.append(Finding("warning", "constant", f"{t.name}: every value is {s.min:g}", t.name))
    return found
