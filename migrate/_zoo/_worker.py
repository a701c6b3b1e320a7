"""Convert one zoo item; runs in a worker process and never raises."""
from __future__ import annotations

import atexit
import os
import sys
import time

from .._arch import detect
from .._convert import convert
from .._inspect import inspect
from .._plan import MappingError, default_target, misfit
from .._rulesets import for_architecture
from .._select import SelectOptions
from .._targets import TargetSpec
from ..errors import CkptkitError
from ._remote import local_output, local_source

SELECT_KEYS = ("keep_optimizer", "use_ema", "keep_global_step", "join_partitions")


def convert_item(source: str, output: str, options: dict) -> dict:
    """Inspect, choose the target, convert, verify (and run parity when a builder is known): a report row."""
    started, cpu_started = time.perf_counter(), time.process_time()
    row: dict = {"status": "failed"}
    try:
        audit = inspect(source)
        row.update(format=audit.format, architecture=audit.architecture.name,
                   parameters=audit.totals.parameters, bytes=audit.totals.bytes)
        target, parity = choose_target(audit.architecture.name, options)
        select = SelectOptions(**{k: bool(options[k]) for k in SELECT_KEYS if k in options})
        with local_output(output) as written, local_source(source, written) as read:
            report, row["fallback"] = _convert(read, written, target, parity, select, options)
        row.update(status="converted", target=report.mode, **_mapping_counts(report.mapping))
        if report.parity is not None:
            row.update(parity_max_rel=report.parity.outputs[0].max_rel, parity_passed=report.parity.passed,
                       parity_verdict=report.parity.verdict)
    except CkptkitError as e:
        row.update(reason=str(e), reason_kind=type(e).__name__)
        inner = getattr(e, "report", None)
        mapping = getattr(inner, "mapping", inner)
        if mapping is not None and hasattr(mapping, "summary"):
            row.update(target=mapping.target, **_mapping_counts(mapping))
    except Exception as e:  # noqa: BLE001 - one bad checkpoint must not stop the zoo
        row.update(reason=f"unexpected {type(e).__name__}: {e}", reason_kind="internal error")
    row["seconds"] = round(time.perf_counter() - started, 3)
    row["cpu_seconds"] = round(time.process_time() - cpu_started, 3)
    return row


def pool_item(source: str, output: str, options: dict) -> dict:
    """:func:`convert_item` in a local pool's worker, which ends without TensorFlow's teardown (see below)."""
    try:
        return convert_item(source, output, options)
    finally:
        _skip_teardown_once_tensorflow_is_loaded()


_skipping_teardown = False


def _skip_teardown_once_tensorflow_is_loaded() -> None:
    """A pool worker that imported TensorFlow spends about 0.8 s in the interpreter's teardown (TensorFlow's own
    exit handlers) when the pool closes, at the end of every zoo run.  Its results are already sent by then,
    so an exit handler registered after TensorFlow's, and run before them, ends the process at once."""
    global _skipping_teardown
    if not _skipping_teardown and "tensorflow" in sys.modules:
        atexit.register(_exit_now)
        _skipping_teardown = True


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _convert(source: str, output: str, target, parity: bool, select: SelectOptions, options: dict):
    """The conversion's report, and why it fell back to generic (None: it did not)."""
    try:
        return convert(source, output, target=target, restore=options.get("restore", "full"), overwrite=True,
                       options=select, parity=parity), None
    except MappingError as e:
        if target is None or options.get("target"):  # a target the manifest asked for: its failure stands
            raise
        # the rule set's default model does not fit (a narrower net than Keras' fixed widths): the
        # checkpoint is still served, generically, and the report says why
        fallback = f"{e.report.target} did not fit: {misfit(e.report)}"
        return convert(source, output, overwrite=True, options=select), fallback


def converts_into_a_model(specs, options: dict) -> bool:
    """Does this checkpoint convert into a model (so its worker needs TensorFlow), as :func:`convert_item` will
    decide?  The parent asks before it starts the workers."""
    return choose_target(detect(specs).name, options)[0] is not None


def choose_target(architecture: str, options: dict) -> tuple[TargetSpec | None, bool]:
    """The manifest's target, else the rule set's default for the architecture, else generic."""
    wanted = options.get("target")
    if wanted == "generic":
        return None, False
    try:
        ruleset = for_architecture(architecture)
    except CkptkitError:
        if wanted:
            return TargetSpec(wanted, options.get("classes")), False
        return None, False
    spec = wanted or (default_target(ruleset, architecture) or ("auto",))[0]
    parity = bool(options.get("parity", True)) and ruleset.parity_for(architecture, spec) is not None
    return TargetSpec(wanted or "auto", options.get("classes")), parity


def _mapping_counts(mapping) -> dict:
    s = mapping.summary
    return {"mapped": s["mapped"], "unmapped": s["unmapped_source"] + s["unmapped_target"],
            "mismatched": s["shape_mismatches"] + s["ambiguous"]}
