"""OD API examples: writing them, and the tf.data input pipelines that read them.

Keys are the Object Detection API's (``image/encoded``, ``image/format``,
``image/height``, ``image/width``, ``image/filename``, ``image/source_id``,
``image/object/bbox/{xmin,xmax,ymin,ymax}``, ``image/object/class/{label,text}``)
and, for classification, slim's ``image/class/{label,text}``.

:func:`detection_dataset` / :func:`classification_dataset` check every record
first (:mod:`._validate`), then return an :class:`InputData` whose
``dataset_for_epoch(epoch)`` is one pass in an order fixed by the shuffle
seed and the epoch.  Batches are dicts:

* ``image`` float32 ``[B, H, W, 3]`` in [-1, 1] (MobileNet/SSD preprocessing);
* detection: ``boxes`` float32 ``[B, max_boxes, 4]`` normalised (ymin, xmin, ymax,
  xmax), ``classes`` int32 ``[B, max_boxes]`` label-map ids (0 = padding),
  ``mask`` bool ``[B, max_boxes]``, ``num_boxes`` int32 ``[B]``;
* classification: ``label`` int32 ``[B]`` (label-map id), ``class_index`` int32
  ``[B]`` (its 0-based position among the label map's ids);
* both: ``source_id`` string ``[B]``, ``record_id`` int64 ``[B]`` (position among
  the usable records, stable across epochs).
"""
from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from migrate.tf import tensorflow

from . import _augment
from ._label_map import LabelMap, load_label_map
from ._resize import fit_and_pad
from ._tfrecord import DataError, encode_example, read_record, write_records
from ._validate import KEYS, RecordIndex, RecordStats, parse_record, scan

write_examples = write_records  # a TFRecord file of serialised examples


def encode_image(pixels: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """``[H, W, 3]`` uint8 pixels as JPEG or PNG bytes (TensorFlow's encoders)."""
    tf = tensorflow()
    if fmt == "jpeg":
        return tf.io.encode_jpeg(pixels, quality=quality, chroma_downsampling=False).numpy()
    if fmt == "png":
        return tf.io.encode_png(pixels).numpy()
    raise ValueError(f"image format must be 'jpeg' or 'png', got {fmt!r}")


def _image_features(image: bytes, fmt: str, height: int, width: int, filename: str, source_id: str) -> dict:
    return {KEYS["encoded"]: ("bytes", [image]), KEYS["format"]: ("bytes", [fmt]),
            KEYS["height"]: ("int64", [height]), KEYS["width"]: ("int64", [width]),
            KEYS["filename"]: ("bytes", [filename]), KEYS["source_id"]: ("bytes", [source_id or filename])}


def detection_example(image: bytes, *, height: int, width: int, boxes, classes: Sequence[int],
                      texts: Sequence[str] = (), fmt: str = "jpeg", filename: str = "", source_id: str = "") -> bytes:
    """A serialised OD API example; ``boxes`` ``[N, 4]`` normalised (ymin, xmin, ymax, xmax)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    features = _image_features(image, fmt, height, width, filename, source_id)
    for column, key in enumerate(("ymin", "xmin", "ymax", "xmax")):
        features[KEYS[key]] = ("float", boxes[:, column].tolist())
    features[KEYS["label"]] = ("int64", [int(c) for c in classes])
    features[KEYS["text"]] = ("bytes", list(texts))
    return encode_example(features)


def classification_example(image: bytes, *, height: int, width: int, label: int, text: str = "",
                           fmt: str = "jpeg", filename: str = "", source_id: str = "") -> bytes:
    """A serialised classification example (``image/class/label``, as slim's datasets)."""
    features = _image_features(image, fmt, height, width, filename, source_id)
    features[KEYS["class_label"]] = ("int64", [int(label)])
    if text:
        features[KEYS["class_text"]] = ("bytes", [text])
    return encode_example(features)


# ----------------------------------------------------------------- input pipelines
def expand_paths(paths) -> list[str]:
    """Files and glob patterns -> sorted unique files; patterns matching nothing raise DataError."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out, missing = [], []
    for item in map(os.fspath, items):
        matches = sorted(glob.glob(item)) if glob.has_magic(item) else ([item] if os.path.isfile(item) else [])
        (out.extend(matches) if matches else missing.append(item))
    if missing:
        raise DataError(f"TFRecord path(s) not found: {', '.join(missing)}; check input_path or the files")
    return list(dict.fromkeys(out))


@dataclass(frozen=True, eq=False)
class InputData:
    """Checked records and how to batch them; ``stats`` is the counter to report."""

    kind: str  # detection | classification
    index: RecordIndex
    stats: RecordStats
    label_map: LabelMap
    batch_size: int
    image_size: tuple[int, int]
    augment: tuple = ()
    shuffle_seed: Optional[int] = None
    max_boxes: int = 100
    drop_remainder: bool = True
    use_display_name: bool = False
    keep_aspect: Optional[tuple[int, int]] = None  # (min_dimension, max_dimension): see _resize.fit_and_pad

    @property
    def num_examples(self) -> int:
        return len(self.index)

    @property
    def steps_per_epoch(self) -> int:
        n, b = self.num_examples, self.batch_size
        return n // b if self.drop_remainder else math.ceil(n / b)

    def order(self, epoch: int) -> np.ndarray:
        """Record positions of one epoch: a permutation fixed by (shuffle_seed, epoch), or file order."""
        if self.shuffle_seed is None:
            return np.arange(self.num_examples)
        return np.random.default_rng([self.shuffle_seed, epoch]).permutation(self.num_examples)

    def dataset_for_epoch(self, epoch: int = 0, start_step: int = 0):
        """One pass over the records as batches; ``start_step`` batches are skipped before any
        image is decoded (resuming), and every later batch is what an uninterrupted run saw."""
        tf = tensorflow()
        return self._epoch_batches(epoch, start_step * self.batch_size).prefetch(tf.data.AUTOTUNE)

    def stream(self, epoch: int = 0, start_step: int = 0):
        """Every epoch's batches from ``epoch`` on, endlessly, as one pipeline: epoch ``e`` yields what
        ``dataset_for_epoch(e)`` yields, and the first ``start_step`` batches are skipped.

        Its functions are traced once, and batches keep coming across epoch ends, where a new
        ``dataset_for_epoch`` per epoch costs a trace and an empty pipeline (about 2 s for the demo's SSD
        with augmentation, as long as its 9 steps of batch 16 take to train)."""
        tf = tensorflow()
        first, skip = int(epoch), int(start_step) * self.batch_size

        def one_epoch(e):
            return self._epoch_batches(e, tf.where(e == first, tf.constant(skip, tf.int64), 0))

        return tf.data.Dataset.range(first, 2 ** 62).flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)

    def _epoch_batches(self, epoch, skip):
        """Epoch ``epoch``'s batches without its first ``skip`` records (both ints or int64 tensors)."""
        tf = tensorflow()
        signature = (tf.TensorSpec([], tf.string), tf.TensorSpec([None, 4], tf.float32),
                     tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32),
                     tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.int64))
        dataset = tf.data.Dataset.from_generator(self._epoch_records, output_signature=signature,
                                                 args=(epoch, skip))
        dataset = dataset.map(self._prepare_fn(), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.batch(self.batch_size, drop_remainder=self.drop_remainder)

    def _epoch_records(self, epoch, skip):
        """The records of one epoch in its order, each with the epoch's augmentation seed."""
        epoch = int(epoch)
        seed = np.int64(np.random.default_rng([self.shuffle_seed or 0, epoch, 7]).integers(2 ** 31))
        for record in self._records(self.order(epoch)[int(skip):]):
            yield (*record, seed)

    def _records(self, order: np.ndarray):
        handles: dict = {}
        try:
            for position in order:
                file_id = int(self.index.file_ids[position])
                handle = handles.get(file_id) or handles.setdefault(file_id, open(self.index.paths[file_id], "rb"))
                data = read_record(handle, int(self.index.offsets[position]), int(self.index.lengths[position]))
                try:
                    parsed = parse_record(data, self.kind, self.label_map, self.use_display_name)
                except ValueError as e:
                    raise DataError(f"{self.index.paths[file_id]}: changed since it was checked ({e}); "
                                    "rebuild the input pipeline") from None
                label = self.label_map.dense_index(parsed.label) if self.kind == "classification" else 0
                yield (parsed.image, parsed.boxes, parsed.classes, np.int32(label),
                       parsed.source_id, np.int64(position))
        finally:
            for handle in handles.values():
                handle.close()

    def _prepare_fn(self):
        tf = tensorflow()
        height, width = self.image_size
        max_boxes, options, kind, keep_aspect = self.max_boxes, self.augment, self.kind, self.keep_aspect
        ids = tf.constant(self.label_map.ids, tf.int32)

        def prepare(encoded, boxes, classes, class_index, source_id, record_id, epoch_seed):
            seed = tf.stack([epoch_seed, record_id])
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            image = tf.image.convert_image_dtype(tf.ensure_shape(image, [None, None, 3]), tf.float32)
            image, boxes, classes = _augment.apply(options, image, boxes, classes, seed)
            if keep_aspect is None:
                image = tf.image.resize(image, [height, width])
            else:
                image, boxes, _ = fit_and_pad(image, boxes, *keep_aspect)
            image = image * 2.0 - 1.0
            out = {"image": tf.ensure_shape(image, [height, width, 3]), "source_id": source_id,
                   "record_id": record_id}
            if kind == "classification":
                out.update(label=tf.gather(ids, class_index), class_index=class_index)
                return out
            n = tf.minimum(tf.shape(classes)[0], max_boxes)
            out["boxes"] = tf.ensure_shape(tf.pad(boxes[:n], [[0, max_boxes - n], [0, 0]]), [max_boxes, 4])
            out["classes"] = tf.ensure_shape(tf.pad(classes[:n], [[0, max_boxes - n]]), [max_boxes])
            out["mask"] = tf.range(max_boxes) < n
            out["num_boxes"] = n
            return out

        return prepare


def _size(image_size) -> tuple[int, int]:
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return int(height), int(width)


def _build(kind: str, paths, label_map, batch_size: int, image_size, augment, shuffle_seed, skip_bad_records: bool,
           max_boxes: int, verify_images: bool, drop_remainder: Optional[bool], use_display_name: bool,
           keep_aspect: Optional[tuple[int, int]] = None) -> InputData:
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if not isinstance(label_map, LabelMap):
        label_map = load_label_map(label_map)
    index, stats = scan(expand_paths(paths), label_map, kind, skip_bad_records=skip_bad_records,
                        verify_images=verify_images, max_boxes=max_boxes, use_display_name=use_display_name)
    drop = shuffle_seed is not None if drop_remainder is None else drop_remainder
    if drop and len(index) < batch_size:
        raise DataError(f"{', '.join(index.paths)}: {len(index)} usable records, fewer than one batch of "
                        f"{batch_size}; lower the batch size or add data")
    if keep_aspect is not None:
        image_size = (keep_aspect[1], keep_aspect[1])
    return InputData(kind, index, stats, label_map, batch_size, _size(image_size), _augment.as_options(augment),
                     shuffle_seed, max_boxes, drop, use_display_name, keep_aspect)


def detection_dataset(paths, label_map: Union[LabelMap, str, Path], *, batch_size: int, image_size,
                      augment: Iterable = (), shuffle_seed: Optional[int] = None, skip_bad_records: bool = False,
                      max_boxes: int = 100, verify_images: bool = True, drop_remainder: Optional[bool] = None,
                      use_display_name: bool = False, keep_aspect: Optional[tuple[int, int]] = None) -> InputData:
    """The detection input pipeline over TFRecord ``paths`` (files or globs).

    ``augment``: ``data_augmentation_options`` settings or their names;
    ``shuffle_seed`` None keeps file order (evaluation); ``drop_remainder``
    defaults to True when shuffling; ``verify_images`` decodes every image
    once up front (False: header checks only, for large data sets).  ``keep_aspect`` ``(min_dimension,
    max_dimension)``: the OD API's ``keep_aspect_ratio_resizer`` padded to ``max_dimension`` square
    (``image_size`` is then that square) instead of resizing to ``image_size``.
    """
    return _build("detection", paths, label_map, batch_size, image_size, augment, shuffle_seed, skip_bad_records,
                  max_boxes, verify_images, drop_remainder, use_display_name, keep_aspect)


def classification_dataset(paths, label_map: Union[LabelMap, str, Path], *, batch_size: int, image_size,
                           augment: Iterable = (), shuffle_seed: Optional[int] = None,
                           skip_bad_records: bool = False, verify_images: bool = True,
                           drop_remainder: Optional[bool] = None) -> InputData:
    """The classification input pipeline over ``image/class/label`` records (see :func:`detection_dataset`)."""
    return _build("classification", paths, label_map, batch_size, image_size, augment, shuffle_seed,
                  skip_bad_records, 0, verify_images, drop_remainder, False)


def dataset_from_config(config, split: str = "train", *, shuffle_seed: Optional[int] = 0,
                        skip_bad_records: bool = False, verify_images: bool = True) -> InputData:
    """The detection pipeline a ``PipelineConfig`` describes for ``split`` ("train" or "eval").

    Train: ``train_config`` batch size, augmentations and box maximum, shuffled
    with ``shuffle_seed`` (unless the reader says ``shuffle: false``).  Eval:
    ``eval_config.batch_size``, no augmentation, file order, every record kept.
    The label map must cover the model's ``num_classes``.
    """
    from finetune.config import ConfigError  # noqa: PLC0415 - config needs no data, data needs config here

    if config.model is None or config.model.PROTO != "ssd":
        raise ConfigError(f"{config.source or 'pipeline.config'}: the model is not an SSD model; this reads SSD "
                          "pipelines only (see the config's findings; Faster R-CNN inputs are not wired here yet)")
    train = split == "train"
    reader = config.train_input_reader if train else (config.eval_input_reader or (None,))[0]
    label_map = load_label_map(config.path(f"{'train_input_reader' if train else 'eval_input_reader'}.label_map_path"))
    label_map.check_num_classes(config.model.num_classes, config.source or "pipeline.config")
    resizer = config.model.image_resizer
    return detection_dataset(
        config.input_files(split), label_map,
        batch_size=config.train_config.batch_size if train else config.eval_config.batch_size,
        image_size=(resizer.height, resizer.width),
        augment=config.train_config.data_augmentation_options if train else (),
        shuffle_seed=shuffle_seed if train and reader.shuffle else None,
        skip_bad_records=skip_bad_records, verify_images=verify_images,
        max_boxes=config.train_config.max_number_of_boxes if train else reader.max_number_of_boxes,
        use_display_name=reader.use_display_name)
