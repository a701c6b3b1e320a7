"""TFLite conversion recipes (float32, dynamic range, full-integer int8, float16) and calibration data.

    >>> data = calibration(task, limit=100)                  # doctest: +SKIP
    >>> flatbuffer = convert(task, model, RECIPES["int8"], data, int8_io=True)   # doctest: +SKIP

A task may supply its own converter (``task.tflite_converter(model)``, e.g.
detection with post-processing inside); the recipe is then set on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from migrate.tf import tensorflow

from ._errors import QuantizeError


@dataclass(frozen=True)
class Recipe:
    name: str
    optimize: bool = False  # Optimize.DEFAULT: int8 weights (dynamic range), or with data full-integer
    full_integer: bool = False  # every op int8; needs representative data
    float16: bool = False

    @property
    def needs_data(self) -> bool:
        return self.full_integer


RECIPES = {
    "float32": Recipe("float32"),
    "dynamic": Recipe("dynamic", optimize=True),
    "int8": Recipe("int8", optimize=True, full_integer=True),
    "float16": Recipe("float16", optimize=True, float16=True),
}


@dataclass(frozen=True)
class Calibration:
    """Representative images for full-integer quantization, already checked against the model's input."""

    source: str
    images: tuple  # float32 [1, H, W, C] arrays

    def __call__(self):
        for image in self.images:
            yield [image]


def calibration(task, limit: int = 100, path=None) -> Calibration:
    """``limit`` images from the task's training TFRecords, or from ``path`` (an ``.npy`` of ``[N, H, W, C]``)."""
    if limit < 1:
        raise QuantizeError(f"representative examples {limit}: expected at least 1")
    if path is not None:
        source, images = str(path), _from_npy(Path(path), limit)
    else:
        train = getattr(getattr(task, "source", None), "train", None)
        source = ", ".join(train.index.paths) if train is not None else "the training split"
        images = [np.asarray(image, np.float32) for image in task.representative_images(limit)]
    if not images:
        raise QuantizeError(f"{source}: the representative data set is empty; full-integer quantization needs "
                            "calibration images (pass training TFRecords with examples, or --representative-data)")
    expected = (1, *task.image_size, 3)
    for i, image in enumerate(images):
        if tuple(image.shape) != expected:
            raise QuantizeError(f"{source}: representative example {i} has shape {tuple(image.shape)}; the model "
                                f"takes {expected} (float32 images preprocessed as in training)")
        if not np.isfinite(image).all():
            raise QuantizeError(f"{source}: representative example {i} holds NaN or infinite values")
    return Calibration(source, tuple(images))


def _from_npy(path: Path, limit: int) -> list:
    try:  # memory-mapped: a header that claims more than the file holds fails here, before anything is allocated
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise QuantizeError(f"{path}: not a readable .npy array of calibration images ({e})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        found = f"dtype {array.dtype}" if isinstance(array, np.ndarray) else "an .npz archive"
        raise QuantizeError(f"{path}: representative data holds {found}; expected numeric [N, H, W, C] images")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise QuantizeError(f"{path}: representative data has shape {array.shape}; expected [N, H, W, C] images")
    return [np.asarray(a, np.float32)[None] for a in array[:limit]]


def converter_for(task, model):
    hook = getattr(task, "tflite_converter", None)
    if hook is not None:
        return hook(model)
    return tensorflow().lite.TFLiteConverter.from_keras_model(task.export_model(model))


def convert(task, model, recipe: Recipe, data: Calibration | None = None, *, int8_io: bool = False,
            per_channel: bool = True, label: str | None = None) -> bytes:
    """The ``.tflite`` flatbuffer of ``model`` under ``recipe`` (QAT models: ``recipe`` int8 uses their ranges)."""
    tf = tensorflow()
    converter = converter_for(task, model)
    if recipe.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if recipe.float16:
        converter.target_spec.supported_types = [tf.float16]
    if recipe.full_integer:
        if data is None:
            raise QuantizeError(f"{label or recipe.name}: full-integer quantization needs representative data")
        converter.representative_dataset = data
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if not per_channel:  # one scale per tensor: no per-channel scale/zero-point arrays in the file
            converter._experimental_disable_per_channel = True  # noqa: SLF001 - the converter's only switch
        if int8_io:
            converter.inference_input_type = tf.int8
            if getattr(task, "int8_output", True):  # detection: boxes, class ids and counts stay float
                converter.inference_output_type = tf.int8
    try:
        return converter.convert()
    except Exception as e:  # noqa: BLE001 - the converter raises many types (ConverterError, ValueError, ...)
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise QuantizeError(f"{label or recipe.name}: the TFLite converter failed ({first[:300]}); see --debug "
                            "for its log") from e
