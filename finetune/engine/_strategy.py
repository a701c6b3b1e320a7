"""The distribution strategy for this machine, and the mixed-precision policy models are built under.

Default strategy on one device, MirroredStrategy over several GPUs,
MultiWorkerMirroredStrategy when ``TF_CONFIG`` names a cluster.
"""
from __future__ import annotations

import contextlib
import json
import os

from migrate.tf import tensorflow, tf_keras

from ._errors import EngineConfigError

PRECISIONS = {None: "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def choose_strategy():
    """The strategy this process should train under.

    Call it once per process, first thing: MultiWorkerMirroredStrategy starts
    a server and must exist before any other TensorFlow op runs.
    """
    tf = tensorflow()
    if _cluster_workers() > 0:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def _cluster_workers() -> int:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError) as e:
        raise EngineConfigError(f"TF_CONFIG is not JSON ({e}); expected "
                                '{"cluster": {"worker": ["host:port", ...]}, '
                                '"task": {"type": "worker", "index": 0}}') from e
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def is_chief(strategy) -> bool:
    """Whether this worker writes checkpoints and summaries for the job."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())


def worker_index(strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id or 0) if resolver is not None and resolver.cluster_spec().as_dict() else 0


def strategy_name(strategy) -> str:
    """The public name: ``default``, ``MirroredStrategy``, ``MultiWorkerMirroredStrategy``, ..."""
    name = type(strategy).__name__
    if name.startswith("_Default"):
        return "default"
    return {"CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy"}.get(name, name)


def gpu_present() -> bool:
    return bool(tensorflow().config.list_physical_devices("GPU"))


def check_precision(mixed_precision) -> str:
    if mixed_precision not in PRECISIONS:
        raise EngineConfigError(f"mixed_precision {mixed_precision!r}: choose None, 'bfloat16' or 'float16'")
    return PRECISIONS[mixed_precision]


@contextlib.contextmanager
def precision_policy(mixed_precision):
    """Build models inside this block to compute in ``mixed_precision`` (None, 'bfloat16', 'float16')."""
    keras = tf_keras()
    wanted = check_precision(mixed_precision)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(wanted)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def model_precision(model) -> str | None:
    """The mixed precision the model's layers compute in (None: float32)."""
    dtypes = {getattr(layer, "compute_dtype", None) for layer in model.submodules if hasattr(layer, "compute_dtype")}
    for mode in ("bfloat16", "float16"):
        if mode in dtypes:
            return mode
    return None
