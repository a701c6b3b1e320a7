"""The one place TensorFlow is imported.

ckptkit models are tf_keras (Keras 2) models: tensorflow-model-optimization
rejects Keras 3 models, and TF >= 2.16 binds ``tf.keras`` to Keras 3 unless
``TF_USE_LEGACY_KERAS=1`` is set *before* TensorFlow is first imported.
Every module that needs TensorFlow calls :func:`tensorflow` instead of
``import tensorflow``, so the switch can never come too late.  Fast paths
(reading indexes and shards, inspection) never call it.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys


@functools.lru_cache(maxsize=None)
def tensorflow():
    """Return the ``tensorflow`` module with legacy Keras (tf_keras) selected."""
    tf = import_tensorflow()
    with _quiet_native_stderr():
        tf.config.list_physical_devices()  # device start-up logs happen here, not at the first op
    return tf


def import_tensorflow():
    """Import TensorFlow's modules (legacy Keras selected) without starting a device or a thread pool: what a
    process that forks workers may load first."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN reorders float sums: training one step (fixtures, fine-tuning tests)
    # would give values that differ between runs and processes.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    from reports import private_matplotlib_cache  # noqa: PLC0415

    private_matplotlib_cache()  # Keras 3, loaded beside TensorFlow, imports matplotlib when it is installed
    with _quiet_native_stderr():
        import tensorflow as tf  # noqa: PLC0415 - deliberately lazy
    return tf


def tf_keras():
    """Return the tf_keras package (Keras 2), after selecting it for TensorFlow."""
    tensorflow()
    import tf_keras  # noqa: PLC0415

    return tf_keras


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what TensorFlow's C++ prints to fd 2 before its logging is set up.

    Those lines (CUDA probing, oneDNN notices) would break the promise of one
    clear line per error.  Python exceptions are unaffected; set
    CKPTKIT_TF_LOGS=1 to see the native output.
    """
    if os.environ.get("CKPTKIT_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
