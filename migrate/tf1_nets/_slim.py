"""tf_slim, patched for TensorFlow 2.21, and TensorFlow for the TF1 builders."""
from __future__ import annotations

import functools

from .._tf import tensorflow as tf


@functools.lru_cache(maxsize=None)
def slim():
    """Return tf_slim (with its nets).

    tf_slim 1.1.0 (its last release, 2020) still reads ``ops.Tensor``, which
    TensorFlow has since removed from ``tensorflow.python.framework.ops``;
    putting the alias back is the only change.
    """
    tf_mod = tf()
    from tensorflow.python.framework import ops  # noqa: PLC0415

    if not hasattr(ops, "Tensor"):
        ops.Tensor = tf_mod.Tensor
    import tf_slim  # noqa: PLC0415
    import tf_slim.nets  # noqa: F401, PLC0415 - not imported by tf_slim itself

    return tf_slim
