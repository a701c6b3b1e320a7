"""Quantization-aware training through the engine: annotate the layers tfmot supports, fine-tune, keep the rest float.

    >>> result = qat(task, "runs/qat", steps=100)                                    # doctest: +SKIP
    >>> result.unsupported                     # (("my_layer", "MyLayer: not in ..."),)  # doctest: +SKIP

``quantize_model`` fails on the first layer it cannot handle; here each layer
is checked against tfmot's default 8-bit registry first, only supported ones
are annotated, and the others are listed by name and reason (they stay float
in the QAT model; int8 conversion calibrates them).  ``strict=True`` turns any
unsupported layer into a :class:`QuantizeError` naming them all.
``preserve_sparsity=True`` (prune then QAT) uses tfmot's
``Default8BitPrunePreserveQuantizeScheme`` so the zeros survive.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ._errors import QuantizeError
from ._training import fresh_copy, train_wrapped

# layers that carry no computation to quantize; tfmot passes them through
_PASSIVE = ("InputLayer",)
_FOLDED = ("BatchNormalization",)
_FOLDS_INTO = ("Conv2D", "DepthwiseConv2D", "Dense")


def _inbound_kinds(layer) -> list[str]:
    kinds = []
    for node in getattr(layer, "_inbound_nodes", []):
        for inbound in getattr(node, "inbound_layers", []) if isinstance(getattr(node, "inbound_layers", []), list) \
                else [node.inbound_layers]:
            kinds.append(type(inbound).__name__)
    return kinds


@dataclass(frozen=True)
class QatResult:
    model: object  # the QAT tf_keras model (fake-quant wrappers; convert with Optimize.DEFAULT)
    annotated: tuple[str, ...]
    unsupported: tuple[tuple[str, str], ...]  # (layer, reason)
    steps: int
    preserve_sparsity: bool = False
    train_report: object = field(default=None, compare=False)


def unsupported_reason(layer, registry, task=None) -> str | None:
    """Why tfmot's default 8-bit scheme cannot quantize ``layer``, or None when it can."""
    kind = type(layer).__name__
    if kind in _PASSIVE:
        return None
    hook = getattr(task, "qat_unsupported", None)
    reason = hook(layer) if hook is not None else None
    if reason:
        return reason
    if hasattr(layer, "layers") and not isinstance(layer, type(None)) and kind in ("Functional", "Sequential", "Model"):
        return f"{kind}: nested models cannot be annotated; flatten the model first"
    if kind in _FOLDED:
        inbound = _inbound_kinds(layer)
        if inbound and all(k in _FOLDS_INTO for k in inbound):
            return None  # folded into the preceding layer by tfmot's transforms
        return (f"{kind}: tfmot folds it only into a preceding {'/'.join(_FOLDS_INTO)}; here it follows "
                f"{', '.join(inbound) or 'the input'}")
    if kind == "Lambda":
        return "Lambda: arbitrary Python code, tfmot cannot quantize it"
    try:
        supported = registry.supports(layer)
    except Exception as e:  # noqa: BLE001 - the registry inspects layer internals
        return f"{kind}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    return None if supported else f"{kind}: not in tfmot's default 8-bit quantize registry"


def annotate(model, *, task=None, strict: bool = False, preserve_sparsity: bool = False):
    """``(QAT model, annotated names, unsupported (name, reason) pairs)``; the input model is left untouched."""
    import tensorflow_model_optimization as tfmot  # noqa: PLC0415
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: PLC0415
        default_8bit_quantize_registry,
    )
    from migrate.tf import tf_keras  # noqa: PLC0415

    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    q = tfmot.quantization.keras
    annotated, unsupported = [], []

    def clone(layer):
        if type(layer).__name__ in _PASSIVE:
            return layer
        reason = unsupported_reason(layer, registry, task)
        if reason:
            unsupported.append((layer.name, reason))
            return layer
        annotated.append(layer.name)
        return q.quantize_annotate_layer(layer)

    source = fresh_copy(model)
    if not hasattr(source, "_is_graph_network") or not source._is_graph_network:  # noqa: SLF001
        raise QuantizeError(f"model {model.name!r}: a subclassed model; QAT needs a functional or Sequential model")
    marked = tf_keras().models.clone_model(source, clone_function=clone)
    if unsupported and (strict or not annotated):
        listed = "; ".join(f"{name} ({reason})" for name, reason in unsupported)
        why = "strict mode" if annotated else "no layer is supported"
        raise QuantizeError(f"model {model.name!r}: {len(unsupported)} layer(s) tfmot cannot quantize ({why}): "
                            f"{listed}; replace them with supported layers or drop --strict")
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() if preserve_sparsity else None
    try:
        with q.quantize_scope():
            quantized = q.quantize_apply(marked, scheme) if scheme else q.quantize_apply(marked)
    except (ValueError, TypeError, RuntimeError) as e:
        listed = "; ".join(f"{name} ({reason})" for name, reason in unsupported) or "none found by the registry"
        raise QuantizeError(f"model {model.name!r}: tfmot could not apply quantization "
                            f"({str(e).splitlines()[0][:160]}...); unsupported layers: {listed}") from None
    return quantized, tuple(annotated), tuple(unsupported)


def qat(task, work_dir, *, steps: int, learning_rate: float = 1e-5, model=None, strict: bool = False,
        preserve_sparsity: bool = False, tensorboard: bool = False, checkpoint_every: int = 0) -> QatResult:
    """QAT-fine-tune ``model`` (default: the task's float model; a stripped pruned model for prune+QAT)."""
    base = model if model is not None else task.float_model()
    quantized, annotated, unsupported = annotate(base, task=task, strict=strict, preserve_sparsity=preserve_sparsity)
    report = train_wrapped(task, quantized, Path(work_dir), steps=steps, learning_rate=learning_rate,
                           tensorboard=tensorboard, checkpoint_every=checkpoint_every)
    return QatResult(quantized, annotated, unsupported, steps, preserve_sparsity, report)
