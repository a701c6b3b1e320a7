"""``serving_default`` functions with the OD API exporter's input types (``exporter_main_v2.py --input_type``).

Every input type ends in the images training saw: float32 ``[N, H, W, 3]``
in [-1, 1] at the model's size (0..255 pixels scaled to [0, 1], resized,
mapped to [-1, 1], as ``finetune.data`` prepares them).

* ``image_tensor``: uint8 ``[N, h, w, 3]`` (``input_tensor``);
* ``float_image_tensor``: float32 ``[N, h, w, 3]``, still 0..255;
* ``encoded_image_string_tensor``: string ``[N]``, each a JPEG or PNG;
* ``tf_example``: string ``[N]``, each a serialized ``tf.train.Example``
  with the image in ``image/encoded`` (the OD API's TFRecord layout).

Outputs: detection, the OD API's exported-model convention after
``finetune.tasks.ssd.postprocess`` (``detection_boxes [N, M, 4]`` clipped,
``detection_classes [N, M]`` 1-based label-map ids as float32,
``detection_scores``, ``num_detections`` as float32); classification,
``probabilities [N, classes]`` and ``classes [N]`` (the label map's ids).
"""
from __future__ import annotations

import numpy as np

from finetune.data import fit_and_pad
from migrate.tf import tensorflow

SERVING_INPUT_TYPES = ("image_tensor", "float_image_tensor", "encoded_image_string_tensor", "tf_example")


def preprocess(images, image_size):
    """0..255 images (uint8 or float) of any size -> float32 ``[N, H, W, 3]`` in [-1, 1], as training feeds them."""
    tf = tensorflow()
    images = tf.cast(images, tf.float32) * (1.0 / 255.0)  # what convert_image_dtype does for uint8
    images = tf.image.resize(images, list(image_size))
    return images * 2.0 - 1.0


def _input_signature(input_type: str):
    tf = tensorflow()
    if input_type == "image_tensor":
        return tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")
    if input_type == "float_image_tensor":
        return tf.TensorSpec([None, None, None, 3], tf.float32, name="input_tensor")
    if input_type in ("encoded_image_string_tensor", "tf_example"):
        return tf.TensorSpec([None], tf.string, name="input_tensor")
    raise ValueError(f"input_type {input_type!r}: expected one of {', '.join(SERVING_INPUT_TYPES)}")


def model_images(input_tensor, input_type: str, image_size, keep_aspect=None):
    """(the model's input for ``input_tensor`` of ``input_type`` (see the module docstring), and the share
    ``[N, 2]`` of each image's frame the picture fills: 1 unless ``keep_aspect`` ``(min_dimension,
    max_dimension)`` fits each image into that square and pads it, as training did)."""
    tf = tensorflow()
    if input_type in ("image_tensor", "float_image_tensor") and keep_aspect is None:
        images = preprocess(input_tensor, image_size)
        return images, tf.ones([tf.shape(images)[0], 2])
    encoded = input_tensor
    if input_type == "tf_example":
        features = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
        encoded = tf.io.parse_example(input_tensor, features)["image/encoded"]

    def one(data):  # each image at its own size, resized before the batch is stacked
        image = data if data.dtype != tf.string else tf.ensure_shape(
            tf.io.decode_image(data, channels=3, expand_animations=False), [None, None, 3])
        if keep_aspect is None:
            return preprocess(image[None], image_size)[0], tf.ones([2])
        image, _, frame = fit_and_pad(tf.cast(image, tf.float32) / 255.0, tf.zeros([0, 4]), *keep_aspect)
        return image * 2.0 - 1.0, frame

    height, width = image_size
    return tf.map_fn(one, encoded, fn_output_signature=(tf.TensorSpec([height, width, 3], tf.float32),
                                                        tf.TensorSpec([2], tf.float32)))


def detection_serving(model, anchors, config, image_size, input_type: str = "image_tensor"):
    """The SSD's ``serving_default`` tf.function; ``model`` (the SSD's graph, possibly pruned or quantized) is
    tracked by the caller."""
    tf = tensorflow()
    from finetune.tasks.ssd import postprocess  # noqa: PLC0415

    anchors = tf.constant(np.asarray(anchors, np.float32))

    def detect(images):
        outputs = model(images, training=False)
        return postprocess(outputs["box_encodings"], outputs["class_predictions_with_background"], anchors,
                           config.postprocess, config.box_coder)

    return detector_serving(detect, image_size, input_type)


def detector_serving(detect, image_size, input_type: str = "image_tensor", keep_aspect=None):
    """A detector's ``serving_default`` tf.function around ``detect`` (training-time images -> ``boxes``,
    ``classes``, ``scores``, ``num_detections``: any task's ``detect``), with the OD API's output names; boxes
    are normalised to each input image (out of the padding ``keep_aspect`` adds)."""
    tf = tensorflow()

    @tf.function(input_signature=[_input_signature(input_type)])
    def serve(input_tensor):
        images, frames = model_images(input_tensor, input_type, image_size, keep_aspect)
        found = detect(images)
        boxes = tf.clip_by_value(found["boxes"] / tf.tile(frames, [1, 2])[:, None, :], 0.0, 1.0)
        return {"detection_boxes": boxes,
                "detection_classes": tf.cast(found["classes"], tf.float32),
                "detection_scores": tf.identity(found["scores"]),
                "num_detections": tf.cast(found["num_detections"], tf.float32)}

    return serve


def classification_serving(model, label_ids, image_size, input_type: str = "image_tensor"):
    """A classifier's ``serving_default``: ``probabilities`` over the label map's classes and the best ``classes``
    (label-map ids)."""
    tf = tensorflow()
    ids = tf.constant(np.asarray(label_ids, np.int64))

    @tf.function(input_signature=[_input_signature(input_type)])
    def serve(input_tensor):
        logits = model(model_images(input_tensor, input_type, image_size)[0], training=False)["logits"]
        probabilities = tf.nn.softmax(logits, axis=-1)
        return {"probabilities": probabilities, "classes": tf.gather(ids, tf.argmax(probabilities, axis=-1))}

    return serve
