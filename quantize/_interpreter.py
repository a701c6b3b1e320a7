"""Run a ``.tflite`` model: the LiteRT interpreter (``ai-edge-litert``), else ``tf.lite.Interpreter``.

    >>> runner = Runner("model_int8.tflite", num_threads=1)      # doctest: +SKIP
    >>> probabilities, = runner(images)                           # float32 in, float32 out

A :class:`Runner` takes float32 inputs and returns float32 outputs whatever
the model's I/O types: int8/uint8 inputs are quantized with the input's scale
and zero point, quantized outputs dequantized.  Images are fed one at a time
when the model's batch dimension is fixed at 1 (TFLite's usual export).  A
file that is not a loadable ``.tflite`` raises :class:`QuantizeError` naming
it.  Task-agnostic: classification and detection evaluators both use it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._errors import QuantizeError

BACKENDS = ("litert", "tf.lite")


def interpreter_class(backend: str | None = None):
    """``(class, backend name)``: LiteRT when importable (or asked for), else TensorFlow's interpreter."""
    if backend not in (None, *BACKENDS):
        raise QuantizeError(f"interpreter backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend in (None, "litert"):
        try:
            from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

            return Interpreter, "litert"
        except ImportError:
            if backend == "litert":
                raise QuantizeError("the LiteRT interpreter is not installed: pip install ai-edge-litert") from None
    from migrate.tf import tensorflow  # noqa: PLC0415

    return tensorflow().lite.Interpreter, "tf.lite"


class Runner:
    """One loaded ``.tflite`` with ``num_threads`` threads; call it with float32 arrays, one per input."""

    def __init__(self, path, num_threads: int = 1, backend: str | None = None):
        self.path = Path(path)
        self.num_threads = int(num_threads)
        if not self.path.is_file():
            raise QuantizeError(f"{self.path}: no such .tflite file; export the model first (ckpt-quantize export)")
        cls, self.backend = interpreter_class(backend)
        try:
            self.interpreter = cls(model_path=os.fspath(self.path), num_threads=self.num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise QuantizeError(f"{self.path}: not a loadable .tflite model ({first}); re-export it with "
                                "ckpt-quantize export") from None
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        self.output_names = [d["name"] for d in self.outputs]

    @property
    def input_shape(self) -> tuple:
        return tuple(int(d) for d in self.inputs[0]["shape"])

    @property
    def input_dtype(self):
        return self.inputs[0]["dtype"]

    def __call__(self, *arrays) -> list:
        """float32 outputs for float32 ``arrays``; a batch is run image by image when the model's batch is 1."""
        if len(arrays) != len(self.inputs):
            raise QuantizeError(f"{self.path}: the model takes {len(self.inputs)} input(s), got {len(arrays)}")
        arrays = [np.asarray(a, np.float32) for a in arrays]
        batch = arrays[0].shape[0] if arrays[0].ndim else 1
        fixed = self.inputs[0]["shape"][0] == 1 and batch != 1
        if not fixed:
            return self._invoke(arrays)
        parts = [self._invoke([a[i:i + 1] for a in arrays]) for i in range(batch)]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(self.outputs))]

    def invoke_only(self) -> None:
        """Invoke on the inputs already set (latency measurement)."""
        self.interpreter.invoke()

    def set_inputs(self, arrays) -> None:
        for detail, array in zip(self.inputs, arrays):
            value = quantize_array(np.asarray(array, np.float32), detail)
            if tuple(value.shape) != tuple(detail["shape"]):
                try:
                    self.interpreter.resize_tensor_input(detail["index"], list(value.shape))
                    self.interpreter.allocate_tensors()
                except (ValueError, RuntimeError) as e:
                    raise QuantizeError(f"{self.path}: input {detail['name']!r} expects shape "
                                        f"{tuple(detail['shape'])}, got {tuple(value.shape)} ({e})") from None
            self.interpreter.set_tensor(detail["index"], value)

    def _invoke(self, arrays) -> list:
        self.set_inputs(arrays)
        self.interpreter.invoke()
        return [dequantize_array(self.interpreter.get_tensor(d["index"]), d) for d in self.outputs]


def quantize_array(value: np.ndarray, detail: dict) -> np.ndarray:
    """float32 -> the tensor's type (int8/uint8 with its scale and zero point; float types cast)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu":
        scale, zero_point = detail["quantization"]
        if not scale:
            return value.astype(dtype)
        info = np.iinfo(dtype)
        return np.clip(np.round(value / scale + zero_point), info.min, info.max).astype(dtype)
    return value.astype(dtype)


def dequantize_array(value: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu":
        scale, zero_point = detail["quantization"]
        if scale:
            return ((value.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return value.astype(np.float32)
