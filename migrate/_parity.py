"""Parity: the original TF1 graph and the converted model on the same inputs.

The TF1 side is the source's ``.meta`` graph when it is there, else the known
slim builder named by the rule set.  Its variables are restored from the
source checkpoint itself (EMA shadows with --use-ema).  Outputs are compared
as max absolute error and that error relative to the output's largest value,
and so is every mapped convolution/matmul output, in the target's layer order,
so a failure names the first layer that diverges.

Agreement proves something only where the compared values depend on the
input: a network with dead or collapsed activations gives the same output for
every image, and any two such networks agree.  Each comparison therefore
records how far the reference moves across the inputs (``spread``) and its
share of zeros; an output that does not move makes the verdict
``inconclusive``, never ``passed``.  Per-layer comparisons catch a wrong
network (a stride in another place changes a layer's shape) even then.
"""
from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np

from reports import LayerError, ParityReport

from ._arch import detect
from ._derive import derived, substitute
from ._select import EMA_SUFFIX
from .errors import CkptkitError

THRESHOLD = 1e-4
MIN_SPREAD = 1e-3  # below this (relative) the output does not depend on the input: agreement proves nothing
INPUTS = "4 images {size}x{size} in [-1, 1]: 2 uniform noise (seed 0), a colour ramp, colour blocks"
_COMPUTE_OPS = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}
_TF_ACTIVATIONS = {"relu": "Relu", "relu6": "Relu6", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}


class ParityError(CkptkitError, RuntimeError):
    """The converted model does not compute what the original graph computed."""

    exit_code = 1

    def __init__(self, message: str, report):
        super().__init__(message)
        self.report = report


def run_parity(reader, plan, options, layers: bool = False, threshold: float = THRESHOLD) -> ParityReport:
    """Run the TF1 reference and the converted model on the same inputs.  Every mapped layer is compared;
    ``layers`` lists all of them in the report (else only the divergent ones)."""
    from ._tf import tensorflow, tf_keras  # noqa: PLC0415

    tf, keras = tensorflow(), tf_keras()
    specs = reader.specs()
    config = plan.ruleset.parity_for(detect(specs).name, plan.target.spec)
    if not config:
        raise CkptkitError(f"rule set {plan.ruleset.name!r} has no parity reference for {detect(specs).name} into "
                           f"{plan.target.spec}; rerun without --parity")
    size = plan.model.input_shape[1] or 224
    images = parity_images(size)
    graph, inputs, output, reference = _tf1_graph(tf, reader, config, substitute(config.get("builder_args", {}),
                                                                                derived(plan.ruleset, specs)),
                                                  size, len(images))
    pairs = _layer_pairs(graph, plan)
    with tf.compat.v1.Session(graph=graph) as sess:
        _restore(tf, sess, graph, reader, options.use_ema)
        fetched = sess.run([output] + [t for _, t in pairs], {inputs: images})
    keras_names = [config.get("keras_output", "output")] + [name for name, _ in pairs]
    final = plan.model.get_layer(config["keras_output"]).output if "keras_output" in config else plan.model.outputs[0]
    probe = keras.Model(plan.model.inputs, [final] + [plan.model.get_layer(n).output for n, _ in pairs])
    ours = probe(images, training=False)
    ours = [np.asarray(o) for o in (ours if isinstance(ours, (list, tuple)) else [ours])]
    errors = [_error(name, ref, got) for name, ref, got in zip(keras_names, fetched, ours)]
    verdict, first, reason = _verdict(errors, threshold, len(images))
    note = plan.ruleset.notes.get(plan.target.spec) if verdict == "failed" else None
    shown = errors[1:] if layers else [e for e in errors[1:] if not e.max_rel <= threshold]
    return ParityReport(reference, INPUTS.format(size=size), (errors[0],), tuple(shown), threshold,
                        verdict == "passed", first, reason or note, verdict)


def parity_images(size: int) -> np.ndarray:
    """Inputs that differ in what a network sees: fine texture (two noise images), a smooth colour ramp and
    flat colour blocks with hard edges, in the [-1, 1] range slim and Keras models are fed."""
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1.0, 1.0, (2, size, size, 3))
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    ramp = np.stack([2 * x - 1, 2 * y - 1, 1 - x - y], axis=-1)
    cells = (np.floor(x * 4) + 2 * np.floor(y * 4)) % 3
    blocks = np.stack([cells - 1, 1 - cells, (cells == 1) * 2.0 - 1], axis=-1)
    return np.concatenate([noise, ramp[None], blocks[None]]).astype(np.float32)


def _verdict(errors: list[LayerError], threshold: float, count: int) -> tuple[str, str | None, str | None]:
    """(verdict, first divergent comparison, why it is inconclusive); NaN never passes."""
    output = errors[0]
    divergent = next((e for e in errors[1:] if not e.max_rel <= threshold), None)
    if divergent is not None or not output.max_rel <= threshold:
        return "failed", (divergent or output).name, None
    if not (output.spread or 0.0) >= MIN_SPREAD:
        live = sum((e.spread or 0.0) >= MIN_SPREAD for e in errors[1:])
        return "inconclusive", None, (
            f"the reference output {output.name} does not depend on its input: it moves by {output.spread or 0:.2g} "
            f"of its largest value across {count} different images ({output.zero_fraction or 0:.0%} zeros), so any "
            f"two networks agree on it; dead or collapsed activations (untrained or damaged weights?). "
            f"{live} of {len(errors) - 1} compared layers do depend on the input and agree")
    return "passed", None, None


def _tf1_graph(tf, reader, config: dict, args: dict, size: int, count: int):
    """The reference graph: the named builder in inference mode, else the source's .meta graph."""
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*layer.apply.*")  # tf_slim on TF 2.x; harmless
        if config.get("builder"):
            inputs = tf.compat.v1.placeholder(tf.float32, [count, size, size, 3], name="parity_images")
            module_name, _, attr = config["builder"].rpartition(".")
            output = getattr(importlib.import_module(module_name), attr)(inputs, **args)
            output = output[0] if isinstance(output, tuple) else output
            return graph, inputs, output, f"builder {config['builder']}"
        meta = Path(f"{reader.path}.meta")
        if not meta.is_file():
            raise CkptkitError(f"{reader.path}: no reference builder and no .meta graph beside it; rerun without --parity")
        tf.compat.v1.train.import_meta_graph(str(meta), clear_devices=True)
        inputs = graph.get_operation_by_name(config["input"]).inputs[0]
        return graph, inputs, graph.get_tensor_by_name(config["output"] + ":0"), "meta graph"


def _restore(tf, sess, graph, reader, use_ema: bool) -> None:
    names = set(reader.keys())
    var_list = {}
    for variable in graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES):
        name = variable.op.name
        if use_ema and name + EMA_SUFFIX in names:
            var_list[name + EMA_SUFFIX] = variable
        elif name in names:
            var_list[name] = variable
    sess.run(tf.compat.v1.global_variables_initializer())
    tf.compat.v1.train.Saver(var_list=var_list).restore(sess, str(reader.path))


def _layer_pairs(graph, plan) -> list[tuple[str, object]]:
    """(Keras layer, TF1 tensor) for every mapped weight that feeds a convolution or matmul."""
    pairs, order = [], {layer.name: i for i, layer in enumerate(plan.model.layers)}
    for target, item in plan.planned.items():
        layer = target.split("/")[0]
        if layer not in order or not target.endswith(("kernel", "depthwise_kernel")):
            continue
        op = _consumer(graph, item.item.name)
        if op is not None:
            pairs.append((layer, _through_activation(op, plan.model.get_layer(layer)).outputs[0]))
    return sorted(pairs, key=lambda p: order[p[0]])


def _through_activation(op, layer):
    """The TF1 op to compare ``layer``'s output with.

    A Keras layer with a built-in activation (VGG's ``Conv2D(activation="relu")``)
    outputs after it, so step past the same activation in the TF1 graph.
    """
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if name == "linear":
        return op
    after = op.outputs[0].consumers()
    return after[0] if len(after) == 1 and after[0].type == _TF_ACTIVATIONS.get(name) else op


def _consumer(graph, variable: str):
    try:
        frontier = [graph.get_operation_by_name(variable)]
    except KeyError:
        return None
    for _ in range(4):  # variable -> read/Identity -> (cast) -> op
        nxt = [c for op in frontier for out in op.outputs for c in out.consumers()]
        for op in nxt:
            if op.type in _COMPUTE_OPS:
                after = op.outputs[0].consumers()
                return after[0] if len(after) == 1 and after[0].type == "BiasAdd" else op
        frontier = [op for op in nxt if op.type in ("Identity", "Cast", "ReadVariableOp")]
    return None


def _error(name: str, reference, got) -> LayerError:
    ref = np.asarray(reference, dtype=np.float64).reshape(reference.shape[0], -1)
    out = np.asarray(got, dtype=np.float64).reshape(got.shape[0], -1)
    if ref.shape[1] == out.shape[1] + 1:  # 1001 background-inclusive logits vs 1000
        ref = ref[:, 1:]
    scale = max(float(np.max(np.abs(ref))), 1e-12) if ref.size else 1.0
    spread = float(np.max(ref.max(axis=0) - ref.min(axis=0))) / scale if ref.size else 0.0
    zeros = float(np.mean(ref == 0)) if ref.size else 1.0
    if ref.shape != out.shape or not (np.isfinite(ref).all() and np.isfinite(out).all()):
        return LayerError(name, float("inf"), float("inf"), spread, zeros)
    diff = float(np.max(np.abs(ref - out))) if ref.size else 0.0
    return LayerError(name, diff, diff / scale, spread, zeros)
