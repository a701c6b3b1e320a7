"""Keras (tf_keras) re-implementations of the networks legacy checkpoints were trained with.

A checkpoint can only be migrated onto a model that computes what the original
graph computed; Keras' own applications often match in shapes but not in
function (see :mod:`migrate.models.slim_resnet_v1`).  Each builder names its
layers after the original variable scopes, with "/" written as ".".
Importing this package never imports TensorFlow; building a model does.
"""
from ._faster_rcnn import FasterRCNNSpec as FasterRCNNSpec
from ._faster_rcnn import faster_rcnn as faster_rcnn
from ._odapi_ssd import SSDSpec as SSDSpec
from ._odapi_ssd import functional as odapi_ssd_functional
from ._odapi_ssd import odapi_ssd as odapi_ssd
from ._slim_resnet_v1 import slim_resnet_v1 as slim_resnet_v1
from ._slim_resnet_v2 import slim_resnet_v2 as slim_resnet_v2
from ._slim_vgg import slim_vgg as slim_vgg

__all__ = ["FasterRCNNSpec", "SSDSpec", "faster_rcnn", "odapi_ssd", "odapi_ssd_functional", "slim_resnet_v1", "slim_resnet_v2", "slim_vgg"]
