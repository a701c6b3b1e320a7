"""A tiny classification task and seeded in-memory data for exercising the engine (tests, benchmarks).

Importing this module does not import TensorFlow; building a model or a dataset does.
"""
from ._testing import TinyClassifier as TinyClassifier
from ._testing import epoch_datasets as epoch_datasets
from ._testing import eval_dataset as eval_dataset
from ._testing import synthetic as synthetic
from ._testing import weights_bytes as weights_bytes

__all__ = ["TinyClassifier", "epoch_datasets", "eval_dataset", "synthetic", "weights_bytes"]
