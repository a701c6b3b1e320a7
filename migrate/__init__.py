"""Read, audit, map and convert legacy TensorFlow checkpoints.

Importing this package never imports TensorFlow.
"""
from ._arch import detect as detect_architecture
from ._formats import CheckpointReader, TensorSpec, locate, open_checkpoint
from ._inspect import inspect
from ._roles import classify as classify_role
from .errors import CheckpointFormatError, CheckpointNotFoundError, ChecksumError, CkptkitError, UnsupportedFeatureError

__all__ = [
    "CheckpointFormatError", "CheckpointNotFoundError", "CheckpointReader", "ChecksumError", "CkptkitError",
    "TensorSpec", "UnsupportedFeatureError", "classify_role", "detect_architecture", "inspect", "locate",
    "open_checkpoint",
]
