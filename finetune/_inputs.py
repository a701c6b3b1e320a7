"""The splits of a run, checked up front: train, eval (validation), test and the unlabeled target domain.

Every split goes through the data layer's record check before any model is
built, so bad data fails in seconds.  The test split is ``--test-input-path``,
else a second ``eval_input_reader``, else none (the final validation is the
test result).  Batches reach the engine in the tasks' conventions: detection
batches as the data layer makes them, classification batches with ``label``
the 0-based class index.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from finetune.config import ConfigError, PipelineConfig, schema
from finetune.data import InputData, LabelMap, classification_dataset, detection_dataset, load_label_map
from finetune.engine import EpochStream

from ._settings import Backbone

_CROPS = (schema.RandomCropImage, schema.SSDRandomCrop)


@dataclass(frozen=True, eq=False)
class Inputs:
    label_map: LabelMap
    train: Optional[InputData]
    eval: Optional[InputData]
    eval_batches: Optional[int]  # eval_config.num_examples as batches; None: every batch
    test: Optional[InputData]
    test_name: str
    target: Optional[InputData] = None  # domain-adversarial: unlabeled target-domain images

    def splits(self) -> list[tuple[str, InputData]]:
        named = [("train", self.train), ("eval", self.eval), ("test", self.test), ("target", self.target)]
        return [(name, data) for name, data in named if data is not None]


def label_map_of(config: PipelineConfig, task: str) -> LabelMap:
    label_map = load_label_map(config.path("train_input_reader.label_map_path"))
    if task == "detection":
        label_map.check_num_classes(config.model.num_classes, config.source or "the flags")
    return label_map


def build_inputs(config: PipelineConfig, task: str, backbone: Backbone, *, train: bool = True,
                 skip_bad_records: bool = False, seed: int = 0, test_paths=None, target_paths=None,
                 warnings: list[str]) -> Inputs:
    """Check and index every split the run needs (``train=False``: evaluation only)."""
    label_map = label_map_of(config, task)
    tc = config.train_config
    common = {"image_size": backbone.image_size, "skip_bad_records": skip_bad_records}
    if backbone.keep_aspect is not None:  # detection only (Faster R-CNN's keep_aspect_ratio_resizer)
        common["keep_aspect"] = backbone.keep_aspect
    make = _detection if task == "detection" else _classification
    train_data = target = None
    if train:
        reader = config.train_input_reader
        augment = _augmentations(tc.data_augmentation_options, task, warnings)
        train_data = make(config.input_files("train"), label_map, reader, batch_size=tc.batch_size, augment=augment,
                          shuffle_seed=seed if reader.shuffle else None, max_boxes=tc.max_number_of_boxes, **common)
        if target_paths:
            target = detection_dataset(_paths(target_paths), label_map, batch_size=tc.batch_size,
                                       shuffle_seed=seed + 1, max_boxes=1, **common)
    eval_data = eval_batches = None
    if config.eval_input_reader:
        reader = config.eval_input_reader[0]
        eval_map = _eval_label_map(config, task, label_map)
        eval_data = make(config.input_files("eval"), eval_map, reader, batch_size=config.eval_config.batch_size,
                         max_boxes=reader.max_number_of_boxes, **common)
        eval_batches = math.ceil(config.eval_config.num_examples / config.eval_config.batch_size) \
            if config.eval_config.num_examples < eval_data.num_examples else None
    test, test_name = _test_split(config, task, label_map, test_paths, make, common)
    return Inputs(label_map, train_data, eval_data, eval_batches, test, test_name, target)


def _detection(paths, label_map, reader, *, batch_size, augment=(), shuffle_seed=None, max_boxes=100, **common):
    return detection_dataset(paths, label_map, batch_size=batch_size, augment=augment, shuffle_seed=shuffle_seed,
                             max_boxes=max_boxes, use_display_name=reader.use_display_name, **common)


def _classification(paths, label_map, reader, *, batch_size, augment=(), shuffle_seed=None, max_boxes=0, **common):
    return classification_dataset(paths, label_map, batch_size=batch_size, augment=augment,
                                  shuffle_seed=shuffle_seed, **common)


def _augmentations(options, task: str, warnings: list[str]) -> tuple:
    if task == "detection":
        return tuple(options)
    crops = [o.PROTO for o in options if isinstance(o, _CROPS)]
    if crops:
        warnings.append(f"classification: {', '.join(crops)} left out (a crop can cut the object out of the image)")
    return tuple(o for o in options if not isinstance(o, _CROPS))


def _eval_label_map(config: PipelineConfig, task: str, train_map: LabelMap) -> LabelMap:
    path = config.path("eval_input_reader.label_map_path")
    if Path(train_map.source).resolve() == path.resolve():
        return train_map
    label_map = load_label_map(path)
    if task == "detection":
        label_map.check_num_classes(config.model.num_classes, config.source or "the flags")
    if label_map.ids != train_map.ids:
        raise ConfigError(f"{path}: the eval label map has ids {list(label_map.ids)} but the train label map "
                          f"{train_map.source} has {list(train_map.ids)}; use one label map for both")
    return train_map


def _test_split(config, task, label_map, test_paths, make, common):
    reader = config.eval_input_reader[0] if config.eval_input_reader else schema.InputReader(shuffle=False)
    if test_paths:
        paths = _paths(test_paths)
        name = ", ".join(Path(p).name for p in paths)
    elif len(config.eval_input_reader) > 1:
        reader = config.eval_input_reader[1]
        patterns = reader.tf_record_input_reader.input_path
        if not patterns:
            raise ConfigError(f"{config.source}: the second eval_input_reader has no input_path; set it or pass "
                              "--test-input-path")
        base = Path(config.source).parent if config.source else Path.cwd()
        paths = [str(base / p) for p in patterns]
        name = ", ".join(Path(p).name for p in patterns)
    else:
        return None, ""
    return make(paths, label_map, reader, batch_size=config.eval_config.batch_size,
                max_boxes=reader.max_number_of_boxes, **common), name


def _paths(value) -> list[str]:
    items = [value] if isinstance(value, (str, Path)) else list(value)
    return [str(Path(p).expanduser()) for p in items]


# ----------------------------------------------------------------- batches for the engine
def train_fn(inputs: Inputs, task: str, *, features=None):
    """The engine's training batches: an ``EpochStream`` over the records, or ``epoch -> dataset``.
    ``features``: a ClassificationTask in feature mode, whose frozen-backbone embeddings are computed
    once and replace the images."""
    data = inputs.train
    if features is not None:
        return _EmbeddingCache(features, data).epoch
    stream = EpochStream.of(data)
    if task == "detection":
        return stream
    if inputs.target is None:
        return stream.map(_relabel)

    def with_target(epoch: int):
        from migrate.tf import tensorflow  # noqa: PLC0415

        tf = tensorflow()
        target = inputs.target.dataset_for_epoch(epoch).map(lambda b: b["image"]).repeat()
        return tf.data.Dataset.zip((data.dataset_for_epoch(epoch).map(_relabel), target)).map(
            lambda batch, image: {**batch, "target_image": image})

    return with_target


def eval_dataset(data: InputData, task: str, batches: Optional[int] = None):
    dataset = data.dataset_for_epoch(0)
    if batches is not None:
        dataset = dataset.take(batches)
    return dataset if task == "detection" else dataset.map(_relabel)


def _relabel(batch: dict) -> dict:
    """Classification tasks take ``label`` as the 0-based class index."""
    return {**batch, "label": batch["class_index"]}


class _EmbeddingCache:
    """Feature extraction: the backbone runs once over the (unaugmented, unshuffled) training images."""

    def __init__(self, task, data: InputData):
        self.task, self.data = task, data
        self.embeddings = self.labels = None

    def epoch(self, epoch: int):
        from migrate.tf import tensorflow  # noqa: PLC0415

        tf = tensorflow()
        if self.embeddings is None:
            plain = dataclasses.replace(self.data, augment=(), shuffle_seed=None, drop_remainder=False)
            self.embeddings, self.labels, _ = self.task.extract_features(plain.dataset_for_epoch(0).map(_relabel))
        order = self.data.order(epoch)
        dataset = tf.data.Dataset.from_tensor_slices({"image": self.embeddings[order], "label": self.labels[order]})
        return dataset.batch(self.data.batch_size, drop_remainder=self.data.drop_remainder)
