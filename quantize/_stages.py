"""Pruned and QAT models on disk between commands: ``DIR/model/`` (``model.h5`` + ``result.json``), staged.

The engine's checkpoints stay in ``DIR`` itself (a killed ``prune`` / ``qat``
resumes from them); the finished model appears as ``DIR/model`` only once it
is whole.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

from migrate.staging import Staging, output_errors

from ._errors import QuantizeError
from ._sparsity import LayerSparsity

MODEL_DIR = "model"


def save(result, work_dir, kind: str) -> Path:
    """Write ``result.model`` and what was measured; returns ``work_dir/model``."""
    out = Path(work_dir) / MODEL_DIR
    info = {"kind": kind, "steps": result.steps,
            "layers": [asdict(row) for row in getattr(result, "layers", ())],
            "overall_sparsity": getattr(result, "overall_sparsity", None),
            "skipped": [list(x) for x in getattr(result, "skipped", ())],
            "annotated": list(getattr(result, "annotated", ())),
            "unsupported": [list(x) for x in getattr(result, "unsupported", ())],
            "preserve_sparsity": getattr(result, "preserve_sparsity", False)}
    with output_errors(out), Staging(out, overwrite=True) as staging:
        if kind == "pruned":
            result.model.save(str(staging.tmp / "model.h5"), include_optimizer=False)
        else:
            import tensorflow_model_optimization as tfmot  # noqa: PLC0415

            with tfmot.quantization.keras.quantize_scope():
                result.model.save(str(staging.tmp / "model.h5"), include_optimizer=False)
        (staging.tmp / "result.json").write_text(json.dumps(info, indent=2) + "\n")
        staging.commit()
    return out


def load(work_dir, kind: str):
    """What :func:`save` wrote, as an object with the fields export needs (model, layers, unsupported)."""
    from ._source import load_keras_model  # noqa: PLC0415

    directory = Path(work_dir)
    model_dir = directory / MODEL_DIR if (directory / MODEL_DIR).is_dir() else directory
    info_path = model_dir / "result.json"
    if not info_path.is_file():
        raise QuantizeError(f"{directory}: no finished {kind} model (no {MODEL_DIR}/result.json); run "
                            f"ckpt-quantize {'prune' if kind == 'pruned' else 'qat'} --out {directory} first")
    try:
        info = json.loads(info_path.read_text())
    except ValueError as e:
        raise QuantizeError(f"{info_path}: unreadable ({e}); run the step again") from None
    if info.get("kind") != kind:
        raise QuantizeError(f"{directory}: holds a {info.get('kind')!r} model, expected {kind!r}")
    model = load_keras_model(model_dir / "model.h5")
    return SimpleNamespace(model=model, steps=info["steps"], layers=tuple(LayerSparsity(**r) for r in info["layers"]),
                           overall_sparsity=info.get("overall_sparsity"),
                           skipped=tuple(tuple(x) for x in info.get("skipped", ())),
                           annotated=tuple(info.get("annotated", ())),
                           unsupported=tuple(tuple(x) for x in info.get("unsupported", ())),
                           preserve_sparsity=info.get("preserve_sparsity", False))
