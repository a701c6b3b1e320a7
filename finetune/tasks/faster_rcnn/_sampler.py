"""The OD API's ``BalancedPositiveNegativeSampler``, batched and seeded.

Of each row's candidates, up to ``size * positive_fraction`` positives are
drawn at random, then negatives fill the rest of ``size``.  Draws come from a
stateless generator seeded by the caller (the training step), so a resumed run
draws what the uninterrupted one drew.
"""
from __future__ import annotations

from migrate.tf import tensorflow


def balanced_sample(candidates, positives, size: int, positive_fraction: float, seed):
    """bool ``[B, N]``: the sampled entries of ``candidates`` (bool ``[B, N]``), ``positives`` marking the
    positive ones; ``seed`` is a stateless seed (int32 ``[2]``)."""
    tf = tensorflow()
    candidates = tf.cast(candidates, tf.bool)
    positive = candidates & tf.cast(positives, tf.bool)
    negative = candidates & ~positive
    keys = tf.random.stateless_uniform(tf.shape(candidates), seed)
    wanted_positive = tf.minimum(_count(positive), int(size * positive_fraction))
    sampled_positive = _first(positive, keys, wanted_positive)
    sampled_negative = _first(negative, keys, size - wanted_positive)
    return sampled_positive | sampled_negative


def _count(mask):
    tf = tensorflow()
    return tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)


def _first(mask, keys, counts):
    """The ``counts`` entries of ``mask`` with the smallest ``keys``, per row."""
    tf = tensorflow()
    ranked = tf.where(mask, keys, 2.0)  # keys are in [0, 1): entries outside the mask rank last
    rank = tf.argsort(tf.argsort(ranked, axis=1, stable=True), axis=1, stable=True)
    return mask & (rank < counts[:, None])
