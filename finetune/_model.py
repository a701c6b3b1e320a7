"""Building the task a run trains.

Classification: the backbone ``ckpt-migrate convert --target keras:MobileNet[V2]``
builds (``tf_keras.applications.MobileNet`` / ``MobileNetV2`` without its top,
at the config's depth multiplier and image size), so a converted checkpoint
restores into it by name and shape, and the head on top.  Detection: the SSD
in the TF2 OD API's layout (:mod:`finetune.tasks.ssd`), which builds its own
backbone.
"""
from __future__ import annotations

import re

from migrate.tf import tf_keras

from ._settings import Backbone

TASKS = ("detection", "classification")
MODES = ("finetune", "features", "domain_adversarial")


def build_backbone(backbone: Backbone, seed: int = 0):
    """A freshly initialised (seeded) tf_keras MobileNet/MobileNetV2 without its top."""
    keras = tf_keras()
    keras.utils.set_random_seed(seed)
    keras.backend.reset_uids()
    application = getattr(keras.applications, backbone.keras_application)
    height, width = backbone.image_size
    return application(input_shape=(height, width, 3), alpha=backbone.depth_multiplier, include_top=False,
                       weights=None)


def build_detection(detector_config, label_map=None, seed: int = 0):
    """The detector the settings describe (an SSD in the TF2 OD API's layout, or a Faster R-CNN ResNet),
    freshly initialised (seeded)."""
    from finetune.tasks import FasterRCNNConfig, FasterRCNNTask, SSDTask  # noqa: PLC0415

    keras = tf_keras()
    keras.utils.set_random_seed(seed)
    keras.backend.reset_uids()
    names = {item.id: item.name for item in label_map.items} if label_map else {}
    if isinstance(detector_config, FasterRCNNConfig):
        return FasterRCNNTask(detector_config, names)
    return SSDTask(detector_config, names)


def build_classification(backbone: Backbone, label_map, mode: str, *, total_steps: int,
                         freeze_batchnorm: bool = False, seed: int = 0):
    from finetune.tasks import ClassificationConfig, ClassificationTask, DomainAdversarialConfig  # noqa: PLC0415

    adversarial = DomainAdversarialConfig(total_steps=total_steps) if mode == "domain_adversarial" else None
    config = ClassificationConfig(num_classes=len(label_map.items),
                                  mode="features" if mode == "features" else "finetune",
                                  freeze_batchnorm=freeze_batchnorm, domain_adversarial=adversarial)
    return ClassificationTask(build_backbone(backbone, seed), config)


def backbone_pattern(task) -> str:
    """One regex matching every backbone variable name (``^(?:conv1|conv1_bn|...)/``): feature mode freezes it."""
    names = [layer.name for layer in task.backbone.layers if layer.weights]
    return "^(?:" + "|".join(re.escape(n) for n in names) + ")/"
