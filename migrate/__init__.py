"""Read, audit, map and convert legacy TensorFlow checkpoints.

    >>> import migrate
    >>> migrate.inspect("ckpts/resnet_v1_50").totals.parameters                          # doctest: +SKIP
    >>> migrate.map_checkpoint("ckpts/resnet_v1_50", migrate.TargetSpec("auto")).complete  # doctest: +SKIP
    >>> migrate.convert("ckpts/resnet_v1_50", "out/resnet", target=migrate.TargetSpec("auto"))  # doctest: +SKIP

Importing this package never imports TensorFlow: ``convert``,
``map_checkpoint`` and ``zoo`` load their modules on first use.  Other
packages share ``migrate.tf`` (TensorFlow, tf_keras), ``migrate.formats``
(wire-format primitives), ``migrate.staging`` (atomic outputs) and
``migrate.lazy`` (lazy front doors).
"""
from ._arch import detect as detect_architecture
from ._formats import CheckpointReader, TensorSpec, locate, open_checkpoint
from ._inspect import inspect
from ._lazy import lazy_exports
from ._roles import classify as classify_role
from ._select import SelectOptions
from ._targets import TargetSpec
from .errors import CheckpointFormatError, CheckpointNotFoundError, ChecksumError, CkptkitError, UnsupportedFeatureError

_LAZY = {
    "convert": "._convert",
    "map_checkpoint": "._map",
    "run_zoo": "._zoo",
}

__all__ = [
    "CheckpointFormatError", "CheckpointNotFoundError", "CheckpointReader", "ChecksumError", "CkptkitError",
    "SelectOptions", "TargetSpec", "TensorSpec", "UnsupportedFeatureError", "classify_role", "convert",
    "detect_architecture", "inspect", "locate", "map_checkpoint", "open_checkpoint", "run_zoo", "zoo",
]

_exports = lazy_exports(__name__, _LAZY)


def __getattr__(name: str):
    return _exports("run_zoo" if name == "zoo" else name)  # zoo: the command's name for run_zoo
