"""The fine-tune checkpoint: used as it is (TF2), or converted first (legacy TF1), and the restore type.

A TF2 object-based checkpoint (a TF2 zoo tarball's ``checkpoint/ckpt-0``, a
ckptkit conversion or run) is restored as it is: the SSD has the TF2 OD API's
layout.  A TF1 checkpoint is converted into ``MODEL_DIR/converted`` first:

* an OD API detection checkpoint with ``fine_tune_checkpoint_type`` detection
  or full: the whole detector, ``ckpt-migrate convert SRC --target auto
  --use-ema`` (its shapes read off the checkpoint or its pipeline.config);
* otherwise the backbone, ``--target keras:MobileNet[V2] --use-ema`` at the
  config's depth multiplier and input size, restored as ``classification``.

A checkpoint that does not fit fails at conversion with the mapping report.
A fingerprint of the source and the options (``converted-source.json``) lets
a rerun reuse the output.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from migrate import detect_architecture, open_checkpoint
from migrate.errors import CkptkitError
from reports import render, to_data

from ._errors import FinetuneError
from ._settings import Backbone

CONVERTED = "converted"
FINGERPRINT = "converted-source.json"
FAILED = "conversion-failed"  # .json / .md: the mapping report of a conversion that did not fit
LEGACY_FORMATS = ("tf1-v1", "tf1-v2")
DETECTORS = ("od/",)  # architectures converted whole into the TF2 OD API's detector
DETECTOR = {"spec": "auto"}  # what --target auto gives them: migrate.models.odapi_ssd, fields off the checkpoint


@dataclass(frozen=True)
class Prepared:
    """What the engine restores: ``path`` (a TF2 object-based checkpoint) with ``restore_type``."""

    source: str
    source_format: str
    path: str
    converted: bool
    restore_type: str
    warnings: tuple[str, ...] = ()


def prepare(source: Path, backbone: Backbone, checkpoint_type: str, model_dir: Path) -> Prepared:
    """The checkpoint to restore for ``source``, converting a legacy one into ``model_dir/converted``."""
    with open_checkpoint(source) as reader:
        fmt, files = reader.format, reader.files()
        architecture = detect_architecture(reader.specs()).name if fmt in LEGACY_FORMATS else ""
        located = str(reader.path)
    if fmt == "tf2-object":
        return Prepared(str(source), fmt, located, False, checkpoint_type)
    if fmt not in LEGACY_FORMATS:
        raise FinetuneError(f"{source}: fine_tune_checkpoint is a {fmt} file; expected a TF1 checkpoint (converted "
                            "here) or a TF2 object-based checkpoint; convert it with ckpt-migrate convert first")
    if not backbone.fits(architecture):
        raise FinetuneError(f"{source}: fine_tune_checkpoint holds {architecture}, but the model's backbone is "
                            f"{backbone.kind}; use a {backbone.kind} checkpoint or set feature_extractor.type "
                            "to match it")
    out = model_dir / CONVERTED
    whole = checkpoint_type in ("detection", "full") and architecture.startswith(DETECTORS)
    target = DETECTOR if whole else _backbone_target(backbone)
    fingerprint = _fingerprint(located, files, target)
    if not _reusable(out, model_dir / FINGERPRINT, fingerprint):
        _convert(located, out, target, backbone, model_dir)
        (model_dir / FINGERPRINT).write_text(json.dumps(fingerprint, indent=2) + "\n")
    warnings = list(_conversion_warnings(out))
    restore_type = checkpoint_type
    if checkpoint_type in ("detection", "full") and not whole:
        restore_type = "classification"
        warnings.append(f"fine_tune_checkpoint_type {checkpoint_type!r}: a TF1 {architecture} checkpoint holds "
                        "a backbone only; the extra feature layers and the box predictor start from fresh "
                        "initial values")
    return Prepared(str(source), fmt, str(out), True, restore_type, tuple(warnings))


def _misfit(report) -> str:
    parts = []
    if report.shape_mismatches:
        m = report.shape_mismatches[0]
        parts.append(f"{len(report.shape_mismatches)} shape mismatches (first: {m.target} is "
                     f"{list(m.target_shape)} in the model, {m.source} {list(m.source_shape)} in the checkpoint)")
    if report.unmapped_target:
        parts.append(f"{len(report.unmapped_target)} model weights have no source (first: {report.unmapped_target[0]})")
    if report.ambiguous:
        parts.append(f"{len(report.ambiguous)} ambiguous mappings")
    return "; ".join(parts) or "the mapping is incomplete"


def _conversion_warnings(out: Path) -> tuple[str, ...]:
    """What the conversion said about EMA shadows (taken or missing): it decides the starting weights."""
    from reports import load_report  # noqa: PLC0415

    try:
        report = load_report(out / "conversion.json")
    except (OSError, ValueError):
        return ()
    return tuple(f"conversion with --use-ema: {w.removeprefix('--use-ema: ')}" for w in report.mapping.warnings
                 if "--use-ema" in w)


def _backbone_target(backbone: Backbone) -> dict:
    if backbone.kind.startswith("resnet_v1_"):  # slim's ResNet, as its rule set builds it
        return {"spec": "auto"}
    return {"spec": f"keras:{backbone.keras_application}", "include_top": False,
            "input_size": _input_size(backbone), "extra": {"alpha": backbone.depth_multiplier}}


def _fingerprint(located: str, files, target: dict) -> dict:
    stats = {str(f): [f.stat().st_size, f.stat().st_mtime_ns] for f in map(Path, files)}
    return {"source": located, "files": stats, "target": target, "use_ema": True}


def _reusable(out: Path, record: Path, fingerprint: dict) -> bool:
    if not (out / "checkpoint").is_file() or not record.is_file():
        return False
    try:
        return json.loads(record.read_text()) == fingerprint
    except (OSError, ValueError):
        return False


def _input_size(backbone: Backbone) -> int | None:
    height, width = backbone.image_size
    return height if height == width else None


def _convert(located: str, out: Path, target: dict, backbone: Backbone, model_dir: Path) -> None:
    """``convert SRC --out OUT --target <target> --use-ema``: the whole detector, or the backbone alone at the
    config's depth multiplier and input size."""
    from migrate import SelectOptions, TargetSpec, convert  # noqa: PLC0415 - convert imports TensorFlow

    model_dir.mkdir(parents=True, exist_ok=True)
    try:
        convert(located, out, target=TargetSpec(**target), options=SelectOptions(use_ema=True), overwrite=True)
    except CkptkitError as e:
        report = getattr(e, "report", None)
        if report is None:
            raise
        where = model_dir / FAILED
        where.with_suffix(".json").write_text(json.dumps(to_data(report), indent=2, default=str))
        where.with_suffix(".md").write_text(render(report, "markdown"), errors="backslashreplace")
        into = "whole detector" if target is DETECTOR else f"{backbone.describe()} backbone this config builds"
        raise FinetuneError(f"fine_tune_checkpoint {located} does not fit the {into}: {_misfit(report)}; use a "
                            "checkpoint of this architecture and depth multiplier, or set "
                            "feature_extractor.depth_multiplier (--depth-multiplier) to the checkpoint's; mapping "
                            f"report: {where}.md", report) from e
    for name in (".json", ".md"):
        (model_dir / FAILED).with_suffix(name).unlink(missing_ok=True)
