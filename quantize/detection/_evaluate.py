"""Detections of exported SSDs, and their COCO metrics on a TFRecord split.

    >>> metrics = evaluate_detection_tflite("ssd_int8.tflite", "test.record", "label_map.pbtxt")  # doctest: +SKIP
    >>> metrics["mAP@0.5"], metrics["mAP"], metrics["AP@0.5/circle"]                            # doctest: +SKIP

Every path ends in one convention (that of ``SSDTask.detect`` and the
SavedModel): ``boxes [B, M, 4]`` normalised and clipped to the unit square,
``classes [B, M]`` int32 1-based label ids, ``scores [B, M]``,
``num_detections [B]`` int32.  Metrics are :class:`finetune.tasks.ssd.CocoEvaluator`'s
(``mAP@0.5``, ``mAP``, ``mAP@0.75``, ..., ``AP@0.5/<class>``).  Images come
from the TFRecord through the fine-tuning data layer without augmentation
(decoded, resized to the model's size, in [-1, 1]).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._errors import QuantizeError
from ._graph import OUTPUTS

SIGNATURE = "serving_default"
# output tensor names of a TF1-style export (``export_tflite_ssd_graph``), in the op's output order
_OP_TENSORS = ("TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1", "TFLite_Detection_PostProcess:2",
               "TFLite_Detection_PostProcess:3")


# ----------------------------------------------------------------- SavedModel
def load_detection_saved_model(path, signature: str = SIGNATURE):
    """The ``signature`` function of the SavedModel at ``path``; a clear QuantizeError when there is none."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise QuantizeError(f"{path}: not a SavedModel directory (no saved_model.pb); export one with "
                            "export_detection_saved_model or ckpt-quantize export")
    try:
        loaded = tf.saved_model.load(os.fspath(path))
    except Exception as e:  # noqa: BLE001 - TensorFlow raises many types for a damaged SavedModel
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise QuantizeError(f"{path}: the SavedModel does not load ({first})") from e
    if signature not in loaded.signatures:
        found = ", ".join(sorted(loaded.signatures)) or "none"
        raise QuantizeError(f"{path}: the SavedModel has no {signature!r} signature (signatures: {found}); "
                            f"re-export it with a {signature!r} signature (export_detection_saved_model)")
    function = loaded.signatures[signature]
    missing = [name for name in OUTPUTS if name not in function.structured_outputs]
    if missing:
        raise QuantizeError(f"{path}: signature {signature!r} has no output {', '.join(missing)} (outputs: "
                            f"{', '.join(sorted(function.structured_outputs))}); expected a detection model's")
    function._ckptkit_owner = loaded  # noqa: SLF001 - keeps the loaded object (and its variables) alive
    return function


def saved_model_detections(function, images) -> dict:
    """Detections of a loaded ``serving_default`` for float32 images in [-1, 1] (what the data layer gives)."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    name, spec = next(iter(function.structured_input_signature[1].items()))
    pixels = np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255)
    out = function(**{name: tf.constant(pixels.astype(spec.dtype.as_numpy_dtype))})
    return {"boxes": out["detection_boxes"].numpy(), "classes": out["detection_classes"].numpy().astype(np.int32),
            "scores": out["detection_scores"].numpy(), "num_detections": out["num_detections"].numpy().astype(np.int32)}


# ----------------------------------------------------------------- TFLite
def open_detection_tflite(path, num_threads: int = 1, backend: str | None = None):
    """A :class:`quantize._interpreter.Runner` over a detection ``.tflite`` with its outputs named
    (``runner.detection_outputs``: output position -> one of ``detection_boxes``, ...)."""
    from .._interpreter import Runner  # noqa: PLC0415

    runner = Runner(path, num_threads=num_threads, backend=backend)
    runner.detection_outputs = _output_names(runner)
    return runner


def _output_names(runner) -> list[str]:
    by_index = {}
    try:
        signatures = runner.interpreter.get_signature_list()
        if signatures:
            details = runner.interpreter.get_signature_runner(next(iter(signatures))).get_output_details()
            by_index = {detail["index"]: name for name, detail in details.items()}
    except (ValueError, RuntimeError):
        by_index = {}
    names = [by_index.get(d["index"]) for d in runner.outputs]
    if not set(OUTPUTS) <= set(names):
        op_names = dict(zip(_OP_TENSORS, OUTPUTS))
        names = [op_names.get(d["name"]) for d in runner.outputs]
    if not set(OUTPUTS) <= set(names):
        found = ", ".join(d["name"] for d in runner.outputs)
        raise QuantizeError(f"{runner.path}: not a detection model: expected outputs {', '.join(OUTPUTS)} (or the "
                            f"{_OP_TENSORS[0]} op's four), found {found}; export it with export_detection_tflite")
    return names


def tflite_detections(runner, images) -> dict:
    """Detections of a detection ``.tflite`` (a :class:`quantize._interpreter.Runner`) for float32 images in [-1, 1]:
    the op's 0-based classes become label ids, boxes are clipped, rows past ``num_detections`` zeroed."""
    names = getattr(runner, "detection_outputs", None)
    if names is None:
        names = runner.detection_outputs = _output_names(runner)
    named = dict(zip(names, runner(np.asarray(images, np.float32))))
    num = np.round(named["num_detections"].reshape(-1)).astype(np.int32)
    real = np.arange(named["detection_scores"].shape[1])[None, :] < num[:, None]
    # rows past num_detections are whatever the op left there (NaN included): zero them before any cast
    boxes = np.where(real[..., None], np.nan_to_num(named["detection_boxes"]), 0.0)
    classes = np.where(real, np.nan_to_num(named["detection_classes"]), -1.0)
    scores = np.where(real, np.nan_to_num(named["detection_scores"]), 0.0)
    return {"boxes": np.clip(boxes, 0.0, 1.0).astype(np.float32), "classes": np.round(classes).astype(np.int32) + 1,
            "scores": scores.astype(np.float32), "num_detections": num}


# ----------------------------------------------------------------- metrics
def detection_batches(records, label_map, image_size, batch_size: int = 8, max_boxes: int = 100):
    """The evaluation ``InputData`` (batches of ``image`` in [-1, 1], ``boxes``, ``classes``, ``num_boxes``) of
    TFRecord ``records`` (paths or globs), file order, no augmentation; ``label_map`` a path or ``LabelMap``."""
    from finetune.data import DataError, detection_dataset  # noqa: PLC0415

    try:
        return detection_dataset([str(p) for p in _paths(records)], label_map, batch_size=batch_size,
                                 image_size=tuple(image_size), shuffle_seed=None, drop_remainder=False,
                                 max_boxes=max_boxes)
    except (DataError, ValueError) as e:  # LabelMapError is a ValueError
        raise QuantizeError(f"evaluation data: {e}") from e


def _paths(records) -> list:
    return [records] if isinstance(records, (str, os.PathLike)) else list(records)


def evaluate_detections(detect, data, num_classes: int | None = None) -> dict:
    """COCO metrics of ``detect(images) -> detections`` (the convention above) over every batch of ``data``
    (a ``finetune.data.InputData`` in file order), plus ``examples``; ``num_classes`` defaults to the
    label map's largest id."""
    from finetune.tasks.ssd import CocoEvaluator  # noqa: PLC0415

    label_map = data.label_map
    evaluator = CocoEvaluator(num_classes or label_map.max_id, {item.id: item.name for item in label_map.items})
    for batch in data.dataset_for_epoch(0):
        evaluator.add_batch({k: np.asarray(batch[k]) for k in ("image", "boxes", "classes", "num_boxes")},
                            detect(np.asarray(batch["image"], np.float32)))
    metrics = evaluator.result()
    metrics["examples"] = float(data.num_examples)
    return metrics


def evaluate_detection_tflite(tflite_path, test_record, label_map, *, num_threads: int = 1,
                              backend: str | None = None, batch_size: int = 8, max_boxes: int = 100) -> dict:
    """COCO metrics (``mAP@0.5``, ``mAP``, per class ``AP@0.5/<name>``, ...) of a detection ``.tflite``
    (exported by :func:`~quantize.detection.export_detection_tflite`) on ``test_record``."""
    runner = open_detection_tflite(tflite_path, num_threads=num_threads, backend=backend)
    data = detection_batches(test_record, label_map, runner.input_shape[1:3], batch_size, max_boxes)
    return evaluate_detections(lambda images: tflite_detections(runner, images), data)


def evaluate_detection_saved_model(saved_model_dir, test_record, label_map, image_size, *,
                                   signature: str = SIGNATURE, batch_size: int = 8, max_boxes: int = 100) -> dict:
    """The same metrics for an exported SavedModel (its ``serving_default``), images resized to ``image_size``."""
    function = load_detection_saved_model(saved_model_dir, signature)
    data = detection_batches(test_record, label_map, image_size, batch_size, max_boxes)
    return evaluate_detections(lambda images: saved_model_detections(function, images), data)
