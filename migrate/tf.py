"""TensorFlow for the other ckptkit packages: ``from migrate.tf import tensorflow, tf_keras``.

The functions import TensorFlow (tf_keras, tf_slim) on their first call, with
legacy Keras (tf_keras) switched on first; importing this module imports nothing heavy.
The switch itself lives in ``migrate._tf``, the one place TensorFlow is imported.
"""
from ._tf import _quiet_native_stderr as quiet_native_stderr
from ._tf import tensorflow as tensorflow
from ._tf import tf_keras as tf_keras
from .tf1_nets._slim import slim as tf_slim

__all__ = ["quiet_native_stderr", "tensorflow", "tf_keras", "tf_slim"]
