"""Native readers of the checkpoint formats (no TensorFlow import)."""
from ._base import CheckpointReader, ChecksumProblem, TensorSpec
from ._locate import locate, open_checkpoint
from ._storage import location

__all__ = ["CheckpointReader", "ChecksumProblem", "TensorSpec", "locate", "location", "open_checkpoint"]
