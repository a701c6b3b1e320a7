"""Export a trained SSD: a SavedModel with ``serving_default``, and ``.tflite`` variants with the post-process inside.

    >>> from quantize.detection import export_detection_saved_model, export_detection_tflite
    >>> export_detection_saved_model(task, "out/saved_model")                             # doctest: +SKIP
    >>> export_detection_tflite(task, "out/ssd_int8.tflite", "int8",
    ...                         representative_images=images)                            # doctest: +SKIP

``task`` is a :class:`finetune.tasks.SSDTask` (its anchors, ``SSDConfig`` and
model); ``model=`` exports another tf_keras model of the same structure
(a stripped pruned or QAT model).  Outputs are staged beside their
destination and renamed into place when complete; an existing destination is
refused unless ``overwrite``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from migrate.staging import Staging, output_errors

from .._errors import QuantizeError
from . import _graph
from ._evaluate import load_detection_saved_model, open_detection_tflite, tflite_detections

#: TFLite variants: post-training recipes of the TFLite converter.
METHODS = ("float32", "dynamic", "float16", "int8")
SIGNATURE = "serving_default"


def _image_size(task) -> tuple[int, int]:
    shape = task.model.input_shape
    return int(shape[1]), int(shape[2])


def export_detection_saved_model(task, out_dir, *, model=None, input_type: str = "image_tensor",
                                 overwrite: bool = False) -> Path:
    """Write a SavedModel whose ``serving_default`` maps images to post-processed detections.

    ``input_type``: ``image_tensor`` (uint8 ``[N, h, w, 3]``) or ``float_image_tensor``
    (float32, still 0..255); any image size is resized to the model's.  Outputs:
    ``detection_boxes``, ``detection_classes`` (1-based), ``detection_scores``,
    ``num_detections`` (see :mod:`quantize.detection._graph`).
    """
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    from finetune import SERVING_INPUT_TYPES, detection_serving  # noqa: PLC0415

    if input_type not in SERVING_INPUT_TYPES:
        raise QuantizeError(f"input_type {input_type!r}: expected one of {', '.join(SERVING_INPUT_TYPES)}")
    model = model if model is not None else task.model
    module = tf.Module()
    module.model = model  # tracked: the variables are saved with the module
    module.serve = detection_serving(model, task.anchors, task.config, _image_size(task), input_type)
    out = Path(out_dir)
    with output_errors(out), Staging(out, overwrite=overwrite) as staging:
        tf.saved_model.save(module, os.fspath(staging.tmp), signatures={SIGNATURE: module.serve})
        load_detection_saved_model(staging.tmp)  # re-read: it loads and has the signature and its outputs
        staging.commit()
    return out


def detection_tflite_converter(task, *, model=None, nms: str = "per_class", max_detections: int | None = None):
    """A ``tf.lite.TFLiteConverter`` over the TFLite graph (``TFLite_Detection_PostProcess`` inside).

    No quantization recipe is set: :func:`apply_recipe` (or the caller) does.
    ``nms`` (:data:`quantize.detection._graph.NMS_MODES`): ``per_class`` by
    default, the detections TensorFlow's post-processing (and the SavedModel)
    gives, at any interpreter thread count; ``fast`` is the OD API's fast
    NMS, ``regular`` the op's own per-class NMS, which drops the last class
    with exactly 2 interpreter threads (tensorflow/tensorflow#56058, still so
    in LiteRT 2.3 / TF 2.21).
    """
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    model = model if model is not None else task.model
    module = tf.Module()
    module.model = model
    module.detect = _graph.tflite_function(model, task.anchors, task.config, _image_size(task), nms, max_detections)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.detect.get_concrete_function()], module)
    converter.allow_custom_ops = True  # the fused post-process is a custom op the standard resolver registers
    return converter


def apply_recipe(converter, method: str, representative_images: Iterable | None = None):
    """Set ``method``'s post-training recipe on ``converter`` (see :data:`METHODS`) and return it.

    ``int8``: full-integer quantization of every op but the post-process (which
    the op keeps in float), calibrated on ``representative_images``
    (float32 ``[1, H, W, 3]`` in [-1, 1]); input and outputs stay float32.
    """
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    if method not in METHODS:
        raise QuantizeError(f"TFLite method {method!r}: expected one of {', '.join(METHODS)}")
    if method == "float32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if method == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif method == "int8":
        if representative_images is None:
            raise QuantizeError("int8 quantization needs representative images (from the training TFRecords) "
                                "to calibrate activation ranges; pass representative_images")
        images = list(representative_images)
        if not images:
            raise QuantizeError("int8 quantization: the representative data set is empty; check the training "
                                "TFRecords")
        converter.representative_dataset = lambda: ([image] for image in images)
        # as quantize._convert's int8 recipe: every builtin op int8 (the custom op is allowed and stays float)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def export_detection_tflite(task, path, method: str = "float32", *, representative_images: Iterable | None = None,
                            model=None, nms: str = "per_class", overwrite: bool = False) -> Path:
    """Convert ``task``'s SSD to a ``.tflite`` with ``method``'s recipe; returns ``path``."""
    converter = apply_recipe(detection_tflite_converter(task, model=model, nms=nms),
                             method, representative_images)
    path = Path(path)
    if path.exists() and not overwrite:
        raise QuantizeError(f"{path}: output exists; pass overwrite=True (--overwrite) to replace it")
    try:
        data = converter.convert()
    except Exception as e:  # noqa: BLE001 - the converter raises ConverterError, RuntimeError, ValueError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise QuantizeError(f"{path.name}: the TFLite converter failed for method {method!r} ({first})") from e
    with output_errors(path):
        write_verified(path, data, _image_size(task))
    return path


def write_verified(path: Path, data: bytes, image_size) -> None:
    """Write ``data`` beside ``path``, re-open it with the interpreter, run it on a blank image and rename it
    into place: a ``.tflite`` that does not load or run never replaces anything."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        tflite_detections(open_detection_tflite(tmp), np.zeros((1, *image_size, 3), np.float32))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
