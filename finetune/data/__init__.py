"""Input data for fine-tuning: label maps, TFRecords of OD API examples, tf.data pipelines.

    >>> from finetune.data import detection_dataset, load_label_map
    >>> data = detection_dataset("train.record", "label_map.pbtxt", batch_size=8,
    ...                          image_size=128, augment=["random_horizontal_flip"],
    ...                          shuffle_seed=0, skip_bad_records=True)   # doctest: +SKIP
    >>> print(data.stats.summary())                                       # doctest: +SKIP
    >>> for batch in data.dataset_for_epoch(epoch, start_step=done): ...  # doctest: +SKIP

Label maps and record framing are read natively; TensorFlow is imported only
to decode images (checks and pipelines) and to encode them.
"""
from ._examples import InputData as InputData
from ._examples import classification_dataset as classification_dataset
from ._examples import classification_example as classification_example
from ._examples import dataset_from_config as dataset_from_config
from ._examples import detection_dataset as detection_dataset
from ._examples import detection_example as detection_example
from ._examples import encode_image as encode_image
from ._examples import expand_paths as expand_paths
from ._examples import write_examples as write_examples
from ._resize import fit_and_pad as fit_and_pad
from ._label_map import LabelMap as LabelMap
from ._label_map import LabelMapError as LabelMapError
from ._label_map import LabelMapItem as LabelMapItem
from ._label_map import load_label_map as load_label_map
from ._label_map import read_label_map as read_label_map
from ._tfrecord import DataError as DataError
from ._tfrecord import decode_example as decode_example
from ._tfrecord import encode_example as encode_example
from ._tfrecord import iter_records as iter_records
from ._tfrecord import write_records as write_records
from ._validate import KEYS as KEYS
from ._validate import RecordStats as RecordStats
from ._validate import scan as scan

__all__ = [
    "KEYS", "DataError", "InputData", "LabelMap", "LabelMapError", "LabelMapItem", "RecordStats",
    "classification_dataset", "classification_example", "dataset_from_config", "decode_example",
    "detection_dataset", "detection_example", "encode_example", "encode_image", "expand_paths", "fit_and_pad",
    "iter_records", "load_label_map", "read_label_map", "scan", "write_examples", "write_records",
]
