"""The OD API's ``faster_rcnn_box_coder``: boxes relative to anchors.

For a box with centre ``(y, x)`` and size ``(h, w)`` and an anchor with
``(ya, xa, ha, wa)`` the code is::

    ty = y_scale * (y - ya) / ha          tx = x_scale * (x - xa) / wa
    th = height_scale * log(h / ha)       tw = width_scale * log(w / wa)

with ``EPSILON`` added to every size before encoding (degenerate boxes stay
finite), as the OD API does.  Both functions broadcast over leading
dimensions: boxes ``[..., 4]`` against anchors ``[..., 4]`` (e.g. ``[B, A, 4]``
against ``[A, 4]``), coordinates ``(ymin, xmin, ymax, xmax)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from migrate.tf import tensorflow

EPSILON = 1e-8


@dataclass(frozen=True)
class BoxCoder:
    """``faster_rcnn_box_coder`` with its scale factors (SSD uses 10, 10, 5, 5)."""

    y_scale: float = 10.0
    x_scale: float = 10.0
    height_scale: float = 5.0
    width_scale: float = 5.0

    code_size = 4

    def encode(self, boxes, anchors):
        """Codes ``[..., 4]`` (ty, tx, th, tw) of ``boxes`` relative to ``anchors``."""
        tf = tensorflow()
        yc, xc, h, w = _center_size(boxes)
        yca, xca, ha, wa = _center_size(anchors)
        ha, wa, h, w = ha + EPSILON, wa + EPSILON, h + EPSILON, w + EPSILON
        ty = (yc - yca) / ha * self.y_scale
        tx = (xc - xca) / wa * self.x_scale
        th = tf.math.log(h / ha) * self.height_scale
        tw = tf.math.log(w / wa) * self.width_scale
        return tf.stack([ty, tx, th, tw], axis=-1)

    def decode(self, codes, anchors):
        """Boxes ``[..., 4]`` (ymin, xmin, ymax, xmax) that ``codes`` describe relative to ``anchors``."""
        tf = tensorflow()
        codes = tf.convert_to_tensor(codes, tf.float32)
        yca, xca, ha, wa = _center_size(anchors)
        ty, tx, th, tw = tf.unstack(codes, axis=-1)
        h = tf.exp(th / self.height_scale) * ha
        w = tf.exp(tw / self.width_scale) * wa
        yc = ty / self.y_scale * ha + yca
        xc = tx / self.x_scale * wa + xca
        return tf.stack([yc - h / 2.0, xc - w / 2.0, yc + h / 2.0, xc + w / 2.0], axis=-1)


def _center_size(boxes):
    tf = tensorflow()
    ymin, xmin, ymax, xmax = tf.unstack(tf.convert_to_tensor(boxes, tf.float32), axis=-1)
    return (ymin + ymax) / 2.0, (xmin + xmax) / 2.0, ymax - ymin, xmax - xmin
