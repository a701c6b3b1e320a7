"""Export: the float SavedModel (serving signature) and one ``.tflite`` per variant, written whole or not at all.

    >>> result = export(task, "out/export", pruned=pruned, qat=qat_result, int8_io=True)   # doctest: +SKIP
    >>> result.variants["int8"].file                                                    # doctest: +SKIP

Variants (``VARIANTS``): ``float32``, ``dynamic``, ``int8``, ``float16`` from
the float model; ``pruned`` and ``pruned_int8`` from a :class:`PruneResult`;
``qat_int8`` from a :class:`QatResult`; ``prune_qat_int8`` from a
sparsity-preserving QAT result.  Everything goes into a staging directory
beside ``out``; each ``.tflite`` is re-opened with the interpreter and run
once, the SavedModel re-loaded and its signature checked, and only then is the
directory renamed into place with its manifest ``export.json``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from migrate.staging import Staging, output_errors
from reports.console import progress

from ._convert import RECIPES, calibration, convert
from ._errors import QuantizeError
from ._interpreter import Runner
from ._sparsity import measure, overall

MANIFEST = "export.json"
SAVED_MODEL = "saved_model"
BASIC = ("float32", "dynamic", "int8", "float16")
VARIANTS = BASIC + ("pruned", "pruned_int8", "qat_int8", "prune_qat_int8")
_METHODS = {
    "float32": "TFLite float32, no optimization",
    "dynamic": "post-training dynamic range (int8 weights, float activations)",
    "int8": "post-training full integer int8 (calibrated on the training TFRecords)",
    "float16": "post-training float16 weights",
    "pruned": "magnitude pruning fine-tuned through the engine, strip_pruning, TFLite float32",
    "pruned_int8": "pruned as above, then full integer int8 PTQ",
    "qat_int8": "quantization-aware training through the engine, converted to full integer int8",
    "prune_qat_int8": "pruned, then sparsity-preserving QAT (Default8BitPrunePreserveQuantizeScheme), int8",
}


@dataclass(frozen=True)
class ExportedVariant:
    name: str
    file: str
    method: str
    recipe: str
    sparsity: float
    input_type: str
    output_type: str
    layers: tuple = ()  # measured per-layer sparsity rows (dicts)
    unsupported_layers: tuple = ()  # QAT: (layer, reason)


@dataclass(frozen=True)
class ExportResult:
    out: str
    task: str
    metric: str
    image_size: tuple
    saved_model: str
    calibration: str
    calibration_examples: int
    variants: dict = field(default_factory=dict)  # name -> ExportedVariant

    def manifest(self) -> dict:
        data = asdict(self)
        data["variants"] = [asdict(v) for v in self.variants.values()]
        return data


def _bases(task, pruned, qat, prune_qat) -> dict:
    float_model = task.float_model()
    return {"float32": (float_model, None), "dynamic": (float_model, None), "int8": (float_model, None),
            "float16": (float_model, None),
            "pruned": (pruned.model, pruned) if pruned else None, "pruned_int8": (pruned.model, pruned) if pruned else None,
            "qat_int8": (qat.model, qat) if qat else None,
            "prune_qat_int8": (prune_qat.model, prune_qat) if prune_qat else None}


def _wanted(variants, bases) -> list[str]:
    if variants is None:
        return [v for v in VARIANTS if bases[v] is not None]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise QuantizeError(f"variant(s) {', '.join(unknown)}: expected some of {', '.join(VARIANTS)}")
    missing = [v for v in variants if bases[v] is None]
    if missing:
        raise QuantizeError(f"variant(s) {', '.join(missing)} need a pruned / QAT model: run prune / qat first "
                            "(or pass --pruned / --qat / --prune-qat)")
    return list(variants)


def export(task, out, *, variants=None, pruned=None, qat=None, prune_qat=None, int8_io: bool = False,
           per_channel: bool = True, representative_examples: int = 100, representative_data=None,
           saved_model: bool = True, overwrite: bool = False) -> ExportResult:
    """Write the variants of ``task``'s model (and the given pruned / QAT models) into ``out``.

    ``per_channel=False``: int8 variants use one scale per tensor (smaller files: no per-channel scale and
    zero-point arrays; check the accuracy drop in the report)."""
    out = Path(out)
    bases = _bases(task, pruned, qat, prune_qat)
    wanted = _wanted(variants, bases)
    data = calibration(task, representative_examples, representative_data) \
        if any(RECIPES[_recipe(v)].needs_data for v in wanted) else None
    with output_errors(out), Staging(out, overwrite=overwrite) as staging:
        saved = _saved_model(task, task.float_model(), staging.tmp / SAVED_MODEL) if saved_model else ""
        exported = {}
        for name in progress(len(wanted), "export", "variant", iterable=wanted):
            model, result = bases[name]
            exported[name] = _variant(task, name, model, result, data, int8_io, per_channel, staging.tmp)
        result = ExportResult(str(out), task.kind, task.metric, tuple(task.image_size),
                              SAVED_MODEL if saved else "", data.source if data else "",
                              len(data.images) if data else 0, exported)
        (staging.tmp / MANIFEST).write_text(json.dumps(result.manifest(), indent=2) + "\n")
        staging.commit()
    return result


def _recipe(name: str) -> str:
    return {"pruned": "float32", "pruned_int8": "int8", "qat_int8": "int8", "prune_qat_int8": "int8"}.get(name, name)


def _variant(task, name, model, result, data, int8_io, per_channel, directory: Path) -> ExportedVariant:
    recipe = RECIPES[_recipe(name)]
    flatbuffer = convert(task, model, recipe, data, int8_io=int8_io and recipe.full_integer,
                         per_channel=per_channel, label=name)
    path = directory / f"{name}.tflite"
    path.write_bytes(flatbuffer)
    runner = _verify(path, task)
    layers = tuple(asdict(row) for row in getattr(result, "layers", ()))
    measured = measure(model)
    sparsity = overall(getattr(result, "layers", ())) if layers else overall(measured, pruned_only=False)
    method = _METHODS[name] + ("" if per_channel or not recipe.full_integer else ", per-tensor scales")
    return ExportedVariant(name, path.name, method, recipe.name, sparsity,
                           np.dtype(runner.inputs[0]["dtype"]).name, np.dtype(runner.outputs[0]["dtype"]).name,
                           layers, tuple(getattr(result, "unsupported", ())))


def _verify(path: Path, task) -> Runner:
    """Re-open the written ``.tflite`` and run it once on a zero image: it must load and give finite outputs."""
    runner = Runner(path)
    outputs = runner(np.zeros((1, *task.image_size, 3), np.float32))
    bad = [runner.output_names[i] for i, o in enumerate(outputs) if not np.isfinite(o).all()]
    if bad:
        raise QuantizeError(f"{path.name}: the converted model gives non-finite values in {', '.join(bad)}")
    return runner


def _saved_model(task, model, directory: Path) -> str:
    """The float model with a ``serving_default`` signature (the task's, or ``images -> outputs``)."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    hook = getattr(task, "saved_model_signatures", None)
    exported = task.export_model(model)
    if hook is not None:
        signatures = hook(model)
    else:
        @tf.function(input_signature=[tf.TensorSpec([None, *task.image_size, 3], tf.float32, name="images")])
        def serve(images):
            outputs = exported(images, training=False)
            return outputs if isinstance(outputs, dict) else {"probabilities": outputs}
        signatures = {"serving_default": serve}
    tf.saved_model.save(exported, str(directory), signatures=signatures)
    check_signature(directory)
    return str(directory)


def check_signature(directory, key: str = "serving_default") -> None:
    """A SavedModel must load and have ``key``; otherwise one line naming the directory and the signatures found."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    directory = Path(directory)
    if not (directory / "saved_model.pb").is_file():
        raise QuantizeError(f"{directory}: not a SavedModel (no saved_model.pb)")
    try:
        loaded = tensorflow().saved_model.load(str(directory))
    except Exception as e:  # noqa: BLE001 - TF raises many types for broken SavedModels
        raise QuantizeError(f"{directory}: the SavedModel does not load ({str(e).splitlines()[0][:200]})") from None
    found = sorted(loaded.signatures.keys())
    if key not in found:
        raise QuantizeError(f"{directory}: the SavedModel has no {key!r} signature (found: "
                            f"{', '.join(found) or 'none'}); save it with signatures={{'{key}': ...}}")


def read_manifest(directory) -> dict:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise QuantizeError(f"{directory}: no {MANIFEST}; not an export directory (run ckpt-quantize export)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise QuantizeError(f"{path}: unreadable export manifest ({e}); export again") from None
    variants = manifest.get("variants") if isinstance(manifest, dict) else None
    if not isinstance(variants, list) or not all(
            isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("name", "file", "method")) for v in variants):
        raise QuantizeError(f"{path}: not an export manifest (expected an object whose 'variants' is a list of "
                            "objects with a name, a file and a method); export again")
    for entry in variants:
        name = entry["file"]
        if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
            raise QuantizeError(f"{path}: variant file {name!r} is not a file name inside the export directory; "
                                "export again")
    return manifest
