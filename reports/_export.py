"""Typed result of ``ckpt-finetune export`` (the OD API exporter's contract) and its text rendering."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportReport:
    """What ``export`` wrote into ``out``: ``saved_model`` (``serving_default`` for ``input_type``),
    ``checkpoint/ckpt-0`` and ``pipeline.config``, from ``checkpoint`` (step ``step``).  ``outputs`` are the
    signature's output names; ``checked_images`` how many images the reloaded SavedModel was compared on
    against the model it was exported from (identical outputs, or export fails)."""

    task: str
    source: str  # the run directory or checkpoint exported
    checkpoint: str
    step: int
    out: str
    input_type: str
    outputs: tuple[str, ...]
    config: str = ""  # the pipeline.config copied beside it ("" when every setting came from flags)
    checked_images: int = 0
    warnings: tuple[str, ...] = ()

    kind = "export"


def export_text(r: ExportReport, markdown: bool) -> str:
    out = [f"{'# ' if markdown else ''}Export: {r.task} from {r.source} (step {r.step})",
           f"checkpoint: {r.checkpoint}",
           f"SavedModel: {r.out}/saved_model   serving_default input: {r.input_type}   outputs: "
           f"{', '.join(r.outputs)}",
           f"checkpoint: {r.out}/checkpoint/ckpt-0 (the layout the run's checkpoints have)   "
           f"config: {r.out}/pipeline.config",
           f"verified: the reloaded SavedModel gives the exported model's outputs on {r.checked_images} images"]
    if r.warnings:
        out += ["", f"{'## ' if markdown else ''}Warnings ({len(r.warnings)})"] + [f"- {w}" for w in r.warnings]
    return "\n".join(out)
