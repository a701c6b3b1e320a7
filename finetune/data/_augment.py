"""Training-time augmentation with the OD API's ``data_augmentation_options`` semantics.

Every operation is a pure function of ``(image, boxes, classes, seed)``:
``image`` float32 ``[H, W, 3]`` in [0, 1], ``boxes`` ``[N, 4]`` normalised
(ymin, xmin, ymax, xmax), ``classes`` ``[N]``, ``seed`` a ``[2]`` int tensor.
Randomness is stateless (``tf.random.stateless_*``), so a record gets the
same augmentation for the same seed and epoch whatever the parallelism, and
a resumed run sees exactly what an uninterrupted one would have.

Crops keep boxes consistent: boxes are re-expressed in the crop window,
those whose overlap with it (intersection over the box's area) is below
``overlap_thresh`` are dropped, the rest are clipped to [0, 1].  A crop
that would drop every box of an image that had some is not applied (the
OD API would train on an empty image; here a labelled image stays labelled).
"""
from __future__ import annotations

from typing import Callable, Iterable, Union

from finetune.config import schema
from migrate.tf import tensorflow

Op = Callable  # (image, boxes, classes, seed) -> (image, boxes, classes)

BY_NAME = {cls.PROTO: cls for cls in (
    schema.RandomHorizontalFlip, schema.RandomVerticalFlip, schema.RandomAdjustBrightness,
    schema.RandomAdjustContrast, schema.RandomAdjustSaturation, schema.RandomAdjustHue,
    schema.RandomCropImage, schema.SSDRandomCrop)}


def as_options(augment: Iterable[Union[str, object]]) -> tuple:
    """Augmentation settings from config dataclasses or their proto names (default settings)."""
    out = []
    for item in augment or ():
        if isinstance(item, str):
            if item not in BY_NAME:
                raise ValueError(f"unknown augmentation {item!r}; known: {', '.join(BY_NAME)}")
            item = BY_NAME[item]()
        elif type(item) not in BY_NAME.values():
            raise TypeError(f"augmentation must be a name or one of {', '.join(c.__name__ for c in BY_NAME.values())}, "
                            f"got {type(item).__name__}")
        out.append(item)
    return tuple(out)


def _uniform(seed, low=0.0, high=1.0):
    return tensorflow().random.stateless_uniform([], seed, minval=low, maxval=high)


def _flip(option, image, boxes, classes, seed, horizontal: bool):
    tf = tensorflow()

    def flipped():
        if horizontal:
            return tf.image.flip_left_right(image), tf.stack(
                [boxes[:, 0], 1.0 - boxes[:, 3], boxes[:, 2], 1.0 - boxes[:, 1]], axis=1)
        return tf.image.flip_up_down(image), tf.stack(
            [1.0 - boxes[:, 2], boxes[:, 1], 1.0 - boxes[:, 0], boxes[:, 3]], axis=1)

    image, boxes = tf.cond(_uniform(seed) < option.probability, flipped, lambda: (image, boxes))
    return image, boxes, classes


def _photometric(option, image, boxes, classes, seed):
    tf = tensorflow()
    name = option.PROTO
    if name == "random_adjust_brightness":
        image = image + _uniform(seed, -option.max_delta, option.max_delta)
    elif name == "random_adjust_contrast":
        image = tf.image.adjust_contrast(image, _uniform(seed, option.min_delta, option.max_delta))
    elif name == "random_adjust_saturation":
        image = tf.image.adjust_saturation(image, _uniform(seed, option.min_delta, option.max_delta))
    else:  # random_adjust_hue
        image = tf.image.adjust_hue(image, _uniform(seed, -option.max_delta, option.max_delta))
    return tf.clip_by_value(image, 0.0, 1.0), boxes, classes


def crop_boxes(boxes, classes, window, overlap_thresh: float, clip: bool = True):
    """Boxes re-expressed in ``window`` (ymin, xmin, ymax, xmax); those overlapping it less than
    ``overlap_thresh`` (intersection over box area), or not at all, are dropped."""
    tf = tensorflow()
    wy0, wx0, wy1, wx1 = tf.unstack(window)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
    inter_h = tf.maximum(0.0, tf.minimum(ymax, wy1) - tf.maximum(ymin, wy0))
    inter_w = tf.maximum(0.0, tf.minimum(xmax, wx1) - tf.maximum(xmin, wx0))
    area = tf.maximum((ymax - ymin) * (xmax - xmin), 1e-12)
    overlap = inter_h * inter_w / area
    keep = (overlap > 0.0) & (overlap >= overlap_thresh)
    h, w = tf.maximum(wy1 - wy0, 1e-12), tf.maximum(wx1 - wx0, 1e-12)
    moved = tf.stack([(ymin - wy0) / h, (xmin - wx0) / w, (ymax - wy0) / h, (xmax - wx0) / w], axis=1)
    if clip:
        moved = tf.clip_by_value(moved, 0.0, 1.0)
    return tf.boolean_mask(moved, keep), tf.boolean_mask(classes, keep)


def _crop_with(op, image, boxes, classes, seed):
    """One crop operation (random_crop_image or an ssd_random_crop operation)."""
    tf = tensorflow()
    seeds = tf.random.experimental.stateless_split(seed, 2)
    begin, size, window = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.reshape(boxes, [1, -1, 4]), seed=seeds[0],
        min_object_covered=op.min_object_covered,
        aspect_ratio_range=(op.min_aspect_ratio, op.max_aspect_ratio),
        area_range=(op.min_area, op.max_area), max_attempts=100, use_image_if_no_bounding_boxes=True)
    new_boxes, new_classes = crop_boxes(boxes, classes, window[0, 0], op.overlap_thresh, op.clip_boxes)
    cropped = tf.slice(image, begin, size)
    usable = (tf.size(new_classes) > 0) | (tf.size(classes) == 0)
    apply = usable & (_uniform(seeds[1]) >= op.random_coef)
    return tf.cond(apply, lambda: (cropped, new_boxes, new_classes), lambda: (image, boxes, classes))


def _ssd_crop(option, image, boxes, classes, seed):
    tf = tensorflow()
    operations = option.effective_operations()
    seeds = tf.random.experimental.stateless_split(seed, 2)
    choice = tf.random.stateless_uniform([], seeds[0], 0, len(operations), dtype=tf.int32)
    branches = [lambda op=op: _crop_with(op, image, boxes, classes, seeds[1]) for op in operations]
    image, boxes, classes = tf.switch_case(choice, branches)
    return image, boxes, classes


def apply(options: tuple, image, boxes, classes, seed):
    """Apply ``options`` in order (as the OD API does), each with its own seed."""
    if not options:
        return image, boxes, classes
    tf = tensorflow()
    seeds = tf.random.experimental.stateless_split(seed, len(options))
    for option, op_seed in zip(options, tf.unstack(seeds)):
        name = option.PROTO
        if name in ("random_horizontal_flip", "random_vertical_flip"):
            image, boxes, classes = _flip(option, image, boxes, classes, op_seed, name == "random_horizontal_flip")
        elif name == "random_crop_image":
            image, boxes, classes = _crop_with(option, image, boxes, classes, op_seed)
        elif name == "ssd_random_crop":
            image, boxes, classes = _ssd_crop(option, image, boxes, classes, op_seed)
        else:
            image, boxes, classes = _photometric(option, image, boxes, classes, op_seed)
    return image, boxes, classes
