"""Detector parity: the TF1 OD API SSD graph and the converted TF2 detector on the same images.

Both sides give raw box encodings and class predictions per feature map
(before anchors and post-processing).  The TF1 side is
:func:`migrate.tf1_nets.ssd.ssd_mobilenet` with its variables restored from
the source checkpoint; the TF2 side is the converted detector holding what was
written.  Each feature map's two heads are compared as in :mod:`._parity`
(error relative to the largest value, and how far the reference moves across
the images), so a wrong layer anywhere upstream shows in the first map it
feeds, and constant outputs make the verdict ``inconclusive``.
"""
from __future__ import annotations

import warnings

import numpy as np

from reports import ParityReport

from ._parity import INPUTS, THRESHOLD, _error, _restore, _verdict, parity_images

HEADS = ("class_predictions_with_background", "box_encodings")
REFERENCE = "builder migrate.tf1_nets.ssd.ssd_mobilenet (the OD API's TF1 SSD graph, inference mode)"


def detector_parity(reader, model, fields: dict, options, extras: bool = True, heads: bool = True,
                    layers: bool = False, threshold: float = THRESHOLD) -> ParityReport:
    """Compare the TF1 graph of ``reader``'s SSD (``fields``: :func:`migrate._odapi.ssd_fields`) with
    ``model`` (the converted detector, loaded): the backbone's two feature maps, the four generated ones when
    ``extras`` were converted, and both heads when ``heads`` were (not re-initialised)."""
    from ._tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    size = model.spec.image_size
    images = parity_images(size)
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*layer.apply.*")  # tf_slim on TF 2.x; harmless
        from .tf1_nets.ssd import ssd_mobilenet  # noqa: PLC0415 - imports tf_slim

        inputs = tf.compat.v1.placeholder(tf.float32, [len(images), size, size, 3], name="parity_images")
        reference = ssd_mobilenet(inputs, **fields)
    with tf.compat.v1.Session(graph=graph) as sess:
        _restore(tf, sess, graph, reader, options.use_ema)
        theirs = sess.run(reference, {inputs: images})
    ours = model(images, training=False)["per_feature_map"]
    compared = ("feature_maps", "box_encodings", "class_predictions_with_background") if heads else ("feature_maps",)
    maps = len(theirs["feature_maps"]) if extras else 2
    per_map = [_error(f"{kind}[{i}]", np.asarray(theirs[kind][i]), np.asarray(ours[kind][i]))  # map by map
               for i in range(maps) for kind in compared]
    kinds = HEADS if heads else ("feature_maps",)
    totals = [_error(kind, _joined(theirs[kind][:maps]), _joined(ours[kind][:maps])) for kind in kinds]
    verdict, first, reason = _verdict([totals[0], *per_map, *totals[1:]], threshold, len(images))
    shown = per_map if layers else [e for e in per_map if not e.max_rel <= threshold]
    return ParityReport(REFERENCE, INPUTS.format(size=size), tuple(totals), tuple(shown), threshold,
                        verdict == "passed", first, reason, verdict)


def _joined(parts) -> np.ndarray:
    """Per-map arrays as one: predictions along the anchor axis, feature maps flattened per image."""
    arrays = [np.asarray(p) for p in parts]
    return np.concatenate([a.reshape(a.shape[0], -1) for a in arrays], axis=1)


FASTER_RCNN_REFERENCE = ("builder migrate.tf1_nets.faster_rcnn.faster_rcnn_resnet (the OD API's TF1 Faster R-CNN "
                         "networks, inference mode)")
PARITY_BOXES = ((0.0, 0.0, 1.0, 1.0), (0.25, 0.25, 0.75, 0.75), (0.0, 0.5, 0.5, 1.0), (0.6, 0.1, 0.9, 0.8))
FASTER_RCNN_SIZE = 128  # any size works; 8x8 block3 features


def faster_rcnn_parity(reader, model, fields: dict, options, heads: bool = True, layers: bool = False,
                       threshold: float = THRESHOLD) -> ParityReport:
    """Compare the TF1 Faster R-CNN networks of ``reader`` (``fields``: :func:`migrate._odapi.faster_rcnn_fields`)
    with ``model`` (the converted detector, loaded): block3's features, the RPN's box codes and objectness,
    and, when ``heads`` were converted, the box classifier's outputs on four fixed boxes per image (the proposal
    step between the stages is not a network; both sides crop the same boxes)."""
    from ._tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    size = model.spec.image_size[0] if model.spec.image_size else FASTER_RCNN_SIZE
    images = parity_images(size)
    boxes = np.tile(np.asarray(PARITY_BOXES, np.float32)[None], (len(images), 1, 1))
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*layer.apply.*")  # tf_slim on TF 2.x; harmless
        from .tf1_nets.faster_rcnn import faster_rcnn_resnet  # noqa: PLC0415 - imports tf_slim

        inputs = tf.compat.v1.placeholder(tf.float32, [len(images), size, size, 3], name="parity_images")
        reference = faster_rcnn_resnet(inputs, tf.constant(boxes), **fields)
    with tf.compat.v1.Session(graph=graph) as sess:
        _restore(tf, sess, graph, reader, options.use_ema)
        theirs = sess.run(reference, {inputs: images})
    ours = model((images, boxes), training=False)
    outputs = ("rpn_box_encodings", "rpn_objectness") + (HEADS[::-1] if heads else ())
    errors = [_error(name, np.asarray(theirs[name]), np.asarray(ours[name])) for name in ("features", *outputs)]
    verdict, first, reason = _verdict([errors[1], errors[0], *errors[2:]], threshold, len(images))
    shown = errors[:1] if layers else [e for e in errors[:1] if not e.max_rel <= threshold]
    return ParityReport(FASTER_RCNN_REFERENCE, INPUTS.format(size=size) + f"; {len(PARITY_BOXES)} boxes each",
                        tuple(errors[1:]), tuple(shown), threshold, verdict == "passed", first, reason, verdict)
