"""The OD API's ``keep_aspect_ratio_resizer`` (``resize_to_range``), padded to ``max_dimension`` square.

The shorter side goes to ``min_dimension`` unless the longer would then pass
``max_dimension``, in which case the longer side goes to ``max_dimension``;
the image is then padded at the bottom and right with zeros, so every image
of a batch has one shape (``pad_to_max_dimension``).  Normalised boxes move
into the padded frame; ``frame`` is the share of it the image fills, which
maps detections back onto the image.
"""
from __future__ import annotations

from migrate.tf import tensorflow


def fit_and_pad(image, boxes, min_dimension: int, max_dimension: int):
    """(image ``[max, max, C]``, boxes ``[N, 4]`` in the padded frame, frame ``[2]`` (height, width share))."""
    tf = tensorflow()
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = min_dimension / tf.reduce_min(size)
    scale = tf.where(tf.reduce_max(tf.round(size * scale)) > max_dimension, max_dimension / tf.reduce_max(size),
                     scale)
    new = tf.minimum(tf.cast(tf.round(size * scale), tf.int32), max_dimension)
    image = tf.image.pad_to_bounding_box(tf.image.resize(image, new), 0, 0, max_dimension, max_dimension)
    frame = tf.cast(new, tf.float32) / max_dimension
    return image, boxes * tf.tile(frame, [2]), frame
