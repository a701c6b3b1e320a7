"""``convert``: write a TF2 checkpoint from a legacy one, verified, atomically."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from reports import ConvertReport, TranslatedConfig, render, to_data

from ._formats import open_checkpoint
from ._formats._bundle import BundleReader, shard_path
from ._formats._bundle_writer import BundleWriter
from ._formats._objgraph import saved_counter
from ._formats._storage import is_url
from ._generic import COUNTER_KEY, generic_mapping, source_value, write_generic
from ._model_convert import LAYOUTS, load_written, verify_written, write_model
from ._odapi import faster_rcnn_fields, ssd_fields
from ._plan import plan_model, require_complete
from ._select import SelectOptions, select
from ._staging import Staging, output_errors, write_state_file
from ._targets import TargetSpec
from ._verify import verify_against
from .errors import CkptkitError, UnsupportedFeatureError

PREFIX = "ckpt-0"
ODAPI_SSD = "module:migrate.models:odapi_ssd"  # the TF2 OD API detector target: gets a pipeline.config
FASTER_RCNN = "module:migrate.models:faster_rcnn"  # its parity runs both stages' networks


def convert(source, output, *, target: TargetSpec | None = None, rules: Path | None = None, restore: str = "full",
            layout: str = "object", options: SelectOptions = SelectOptions(), overwrite: bool = False,
            copy: bool = False, parity: bool = False, parity_layers: bool = False,
            progress: Callable[[str], None] | None = None) -> ConvertReport:
    """Convert ``source`` into directory ``output``: generic without ``target``, else into that model.

    The output holds a ``checkpoint`` state file (``weights.h5`` for layout h5),
    the checkpoint and the conversion report (``conversion.json`` / ``.md``).
    Nothing appears at ``output`` unless every tensor verified.  ``progress`` is
    called with the name of each stage as it starts (:func:`convert_stages` lists them).
    """
    if layout not in LAYOUTS:
        raise CkptkitError(f"layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if is_url(source):  # reading works (inspect, map); writing reuses and links local shards
        raise UnsupportedFeatureError(f"{source}: convert does not take remote sources yet; download the checkpoint first")
    started = time.perf_counter()
    with open_checkpoint(source) as reader, output_errors(Path(output)):
        with Staging(Path(output), overwrite, inputs=reader.files()) as stage:
            step = progress or (lambda name: None)
            if target is None:
                report = _generic(reader, stage.tmp, options, copy, str(source), str(output), step)
            else:
                report = _into_model(reader, stage.tmp, target, rules, restore, layout, options, parity, parity_layers,
                                     str(source), str(output), step)
            report = _with_time(report, time.perf_counter() - started)
            _write_report(stage.tmp, report)
            stage.commit()
    return report


def convert_stages(target: TargetSpec | None, parity: bool = False) -> tuple[str, ...]:
    """The stages :func:`convert` reports to its ``progress`` callback, in order."""
    if target is None:
        return ("write", "verify")
    return ("map", "write", "verify") + (("parity",) if parity else ())


def _generic(reader, tmp: Path, options, copy: bool, source: str, output: str, step) -> ConvertReport:
    step("write")
    selection = select(reader.specs(), options)
    prefix = tmp / PREFIX
    reuse = reader.files()[1:] if isinstance(reader, BundleReader) else []
    writer = BundleWriter(prefix, reuse, copy=copy)
    try:
        keys = write_generic(reader, selection, writer)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    write_state_file(tmp, PREFIX)
    step("verify")
    verified = _verify_generic(prefix, reader, selection, keys, writer)
    return ConvertReport(source, output, "generic", "object", generic_mapping(source, selection, keys), verified,
                         _shard_kinds(prefix, writer), sum(Path(p).stat().st_size for p in reuse), writer.bytes_written, 0.0)


def _into_model(reader, tmp: Path, target, rules, restore, layout, options, parity, parity_layers,
                source: str, output: str, step) -> ConvertReport:
    step("map")
    plan = plan_model(reader, target, rules, restore, options)
    require_complete(plan.report)
    step("write")
    if restore in ("backbone", "classification") and hasattr(plan.model, "classification_only"):
        plan.model.classification_only = True  # the layout the OD API's `classification` type reads
    path, written = write_model(plan, reader, tmp, layout, PREFIX)  # streamed: the model's variables stay as built
    if layout != "h5":
        write_state_file(tmp, PREFIX)
    step("verify")
    verified = verify_written(written, path, layout)
    fields = ssd_fields(reader.specs()) if plan.target.spec == ODAPI_SSD else None  # the OD API detector's model
    config = _odapi_pipeline_config(reader, fields, plan, tmp, Path(output).resolve() / path.name, restore) \
        if fields and layout == "object" else None  # the OD API reads the object layout only
    parity_report = None
    if parity:
        step("parity")
        load_written(plan.model, path, layout)  # the converted model is what was written
        parity_report = _parity(reader, plan, fields, options, parity_layers)
    written = sum(p.stat().st_size for p in tmp.iterdir() if p.is_file())
    report = ConvertReport(source, output, plan.target.spec, layout, plan.report, verified,
                           {p.name: "written" for p in sorted(tmp.iterdir()) if ".data-" in p.name or p.suffix == ".h5"},
                           0, written, 0.0, parity_report, config)
    if parity_report is not None and parity_report.verdict == "failed":  # inconclusive: verified output, kept
        from ._parity import ParityError  # noqa: PLC0415

        worst = max(parity_report.outputs + parity_report.layers, key=lambda e: e.max_rel)
        raise ParityError(f"parity FAILED for {plan.target.spec}: max relative error {worst.max_rel:.3g} ({worst.name}) > "
                          f"{parity_report.threshold:g}; first divergent layer: {parity_report.first_divergence or 'n/a'}"
                          + (f"; {parity_report.explanation}" if parity_report.explanation else "")
                          + "; no output written", report)
    return report


def _parity(reader, plan, ssd: dict | None, options, layers: bool):
    """Run the TF1 reference and the written model: a detector's networks, else the mapped layers.  What was
    re-initialised (``--restore``, ``--classes``) is not compared."""
    left_out = plan.report.left_out_target
    if ssd:
        from ._odapi_parity import detector_parity  # noqa: PLC0415

        extras = not any(t.startswith("feature_extractor/feature_map_generator/") for t in left_out)
        heads = extras and not any(t.startswith("box_predictor/") for t in left_out)
        return detector_parity(reader, plan.model, ssd, options, extras, heads, layers)
    if plan.target.spec == FASTER_RCNN:
        from ._odapi_parity import faster_rcnn_parity  # noqa: PLC0415

        heads = not any(t.startswith("SecondStageBoxPredictor/") for t in left_out)
        return faster_rcnn_parity(reader, plan.model, faster_rcnn_fields(reader.specs()), options, heads, layers)
    from ._parity import run_parity  # noqa: PLC0415 - imports TF1 graph machinery

    return run_parity(reader, plan, options, layers=layers)


def _odapi_pipeline_config(reader, fields: dict, plan, tmp: Path, prefix: Path, restore: str):
    """An OD API detector's TF2 pipeline.config, translated from the TF1 one beside the checkpoint, else made
    from the checkpoint's ``fields``."""
    from ._odapi_config import CONFIG_NAME, beside, translate  # noqa: PLC0415

    source = beside(reader.path)
    checkpoint_type = "classification" if restore in ("backbone", "classification") else "detection"
    result = translate(source, fields, str(prefix), checkpoint_type, plan.target.classes)
    if result.text:
        (tmp / CONFIG_NAME).write_text(result.text, encoding="utf-8")
    return TranslatedConfig(str(prefix.parent / CONFIG_NAME) if result.text else "", result.source, result.changes,
                            result.errors)


def _with_time(report: ConvertReport, seconds: float) -> ConvertReport:
    from dataclasses import replace  # noqa: PLC0415

    return replace(report, seconds=round(seconds, 3))


def _verify_generic(prefix: Path, reader, selection, keys: dict[str, str], writer: BundleWriter) -> int:
    expected, reused = {}, {}
    for key, name in keys.items():
        item = selection.kept[name]
        expected[key] = lambda item=item: source_value(reader, item)
        if writer.reuse and len(item.sources) == 1 and not reader.entry(item.sources[0]).slices:
            reused[key] = item.sources[0]
    expected.setdefault(COUNTER_KEY, saved_counter)  # added by write_generic unless the source kept its own
    with BundleReader(prefix) as written:
        return verify_against(written, expected, reader, reused)


def _shard_kinds(prefix: Path, writer: BundleWriter) -> dict[str, str]:
    kinds = {shard_path(prefix, i, writer.num_shards).name: kind for i, kind in writer.reuse.items()}
    kinds[shard_path(prefix, writer.num_shards - 1, writer.num_shards).name] = "written"
    return kinds


def _write_report(directory: Path, report: ConvertReport) -> None:
    (directory / "conversion.json").write_text(json.dumps(to_data(report), indent=2))
    (directory / "conversion.md").write_text(render(report, "markdown"), errors="backslashreplace")  # non-UTF-8 names
