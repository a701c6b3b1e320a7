"""SSD losses as in the OD API's ``core/losses.py``, ``hard_example_miner`` and ``SSDMetaArch.loss``.

Per-anchor losses take predictions and targets ``[B, A, ...]`` and weights
``[B, A]`` and return ``[B, A, K]`` (sigmoid, focal) or ``[B, A]`` (softmax,
smooth L1).  :func:`ssd_loss` combines them: classification summed over
classes, optional hard example mining, sums over the batch, then division by
the number of matched anchors in the batch (``normalize_loss_by_num_matches``,
at least 1) and by the code size for localisation when asked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from migrate.tf import tensorflow

CLASSIFICATION_LOSSES = ("sigmoid", "softmax", "focal")
MINING_LOSS_TYPES = ("classification", "localization", "both")


@dataclass(frozen=True)
class HardExampleMinerConfig:
    """``hard_example_miner``; defaults are those of the ssd_mobilenet_v1 zoo config.

    ``None`` stands for the proto's 0 ("no limit") in ``num_hard_examples`` and
    ``max_negatives_per_positive``.  With ``loss_type="both"`` the image loss is
    ``classification_weight * cls + localization_weight * loc`` (the OD API
    passes the loss weights to the miner).
    """

    num_hard_examples: int | None = 3000
    iou_threshold: float = 0.99
    loss_type: str = "classification"
    max_negatives_per_positive: int | None = 3
    min_negatives_per_image: int = 0

    def __post_init__(self):
        if self.loss_type not in MINING_LOSS_TYPES:
            raise ValueError(f"hard_example_miner: expected loss_type in {MINING_LOSS_TYPES}, "
                             f"got {self.loss_type!r}")


@dataclass(frozen=True)
class LossConfig:
    """The ``loss`` block of an SSD pipeline.config plus the two normalisation flags."""

    classification: str = "sigmoid"  # weighted_sigmoid | weighted_softmax | weighted_sigmoid_focal
    focal_gamma: float = 2.0
    focal_alpha: float | None = 0.25
    logit_scale: float = 1.0  # weighted_softmax only
    smooth_l1_delta: float = 1.0
    classification_weight: float = 1.0
    localization_weight: float = 1.0
    normalize_loss_by_num_matches: bool = True
    normalize_loc_loss_by_codesize: bool = False
    hard_example_miner: HardExampleMinerConfig | None = field(default_factory=HardExampleMinerConfig)

    def __post_init__(self):
        if self.classification not in CLASSIFICATION_LOSSES:
            raise ValueError(f"loss: expected classification in {CLASSIFICATION_LOSSES}, "
                             f"got {self.classification!r}")


def sigmoid_classification_loss(logits, targets, weights):
    """``WeightedSigmoidClassificationLoss``: per-entry sigmoid cross entropy ``[B, A, K]``."""
    tf = tensorflow()
    per_entry = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    return per_entry * _per_class(weights)


def softmax_classification_loss(logits, targets, weights, logit_scale: float = 1.0):
    """``WeightedSoftmaxClassificationLoss``: softmax cross entropy per anchor ``[B, A]``."""
    tf = tensorflow()
    per_row = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits / logit_scale)
    return per_row * weights


def sigmoid_focal_loss(logits, targets, weights, gamma: float = 2.0, alpha: float | None = 0.25):
    """``SigmoidFocalClassificationLoss``: ``alpha_t * (1 - p_t) ** gamma * CE`` per entry ``[B, A, K]``."""
    tf = tensorflow()
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    probabilities = tf.sigmoid(logits)
    p_t = targets * probabilities + (1.0 - targets) * (1.0 - probabilities)
    modulating = tf.pow(1.0 - p_t, gamma) if gamma else 1.0
    alpha_weight = targets * alpha + (1.0 - targets) * (1.0 - alpha) if alpha is not None else 1.0
    return modulating * alpha_weight * cross_entropy * _per_class(weights)


def smooth_l1_localization_loss(predictions, targets, weights, delta: float = 1.0):
    """``WeightedSmoothL1LocalizationLoss`` (Huber with ``delta``) summed over the code ``[B, A]``."""
    tf = tensorflow()
    error = tf.abs(predictions - targets)
    quadratic = tf.minimum(error, delta)
    huber = 0.5 * quadratic * quadratic + delta * (error - quadratic)
    return tf.reduce_sum(huber * weights[..., None], axis=-1)


def _per_class(weights):
    tf = tensorflow()
    weights = tf.convert_to_tensor(weights, tf.float32)
    return weights[..., None] if weights.shape.rank == 2 else weights


def hard_example_mask(cls_losses, loc_losses, decoded_boxes, positive, negative,
                      config: HardExampleMinerConfig, cls_weight: float = 1.0, loc_weight: float = 1.0):
    """Which anchors ``[B, A]`` (float 0/1) the OD API's ``HardExampleMiner`` keeps.

    Per image: non-maximum suppression over the predicted boxes ranked by loss
    (``num_hard_examples``, ``iou_threshold``), then every selected positive and
    the first ``max(min_negatives_per_image, max_negatives_per_positive *
    num_positives)`` selected negatives in loss order.
    """
    tf = tensorflow()
    if config.loss_type == "classification":
        image_losses = cls_losses
    elif config.loss_type == "localization":
        image_losses = loc_losses
    else:
        image_losses = cls_losses * cls_weight + loc_losses * loc_weight
    cls_losses = tf.convert_to_tensor(cls_losses, tf.float32)
    batch_size = tf.shape(cls_losses)[0]
    num_anchors = cls_losses.shape[1]  # static in practice: then XLA can compile the NMS below
    if num_anchors is None:
        num_anchors = tf.shape(cls_losses)[1]
        limit = num_anchors if config.num_hard_examples is None else \
            tf.minimum(num_anchors, config.num_hard_examples)
    else:
        limit = min(num_anchors, config.num_hard_examples or num_anchors)
    # Batched NMS: the selected indices [B, limit] of each image in descending loss order.
    selected, num_selected = tf.image.non_max_suppression_padded(
        tf.stop_gradient(decoded_boxes), tf.stop_gradient(image_losses), limit, config.iou_threshold,
        pad_to_max_output_size=True)
    keep = tf.range(tf.shape(selected)[1])[None, :] < num_selected[:, None]
    if config.max_negatives_per_positive is not None:
        pos = tf.gather(tf.cast(positive, tf.bool), selected, batch_dims=1) & keep
        neg = tf.gather(tf.cast(negative, tf.bool), selected, batch_dims=1) & keep
        num_pos = tf.reduce_sum(tf.cast(pos, tf.float32), axis=1)
        max_neg = tf.maximum(config.min_negatives_per_image,
                             tf.cast(config.max_negatives_per_positive * num_pos, tf.int32))
        keep &= pos | (tf.cumsum(tf.cast(neg, tf.int32), axis=1) <= max_neg[:, None])
    rows = tf.broadcast_to(tf.range(batch_size)[:, None], tf.shape(selected))
    mask = tf.tensor_scatter_nd_max(tf.zeros([batch_size, num_anchors]), tf.stack([rows, selected], axis=-1),
                                    tf.cast(keep, tf.float32))
    return tf.stop_gradient(mask)


def ssd_loss(box_encodings, class_logits, targets, decoded_boxes, config: LossConfig, code_size: int = 4):
    """``{"localization", "classification"}`` losses of a batch, weighted and normalised.

    ``targets`` is a :class:`~._matcher.Targets`; ``decoded_boxes`` ``[B, A, 4]``
    (predicted boxes) are only used by hard example mining.
    """
    tf = tensorflow()
    loc_losses = smooth_l1_localization_loss(box_encodings, targets.reg_targets, targets.reg_weights,
                                             config.smooth_l1_delta)
    cls_losses = _classification_losses(class_logits, targets, config)
    miner = config.hard_example_miner
    if miner is not None:
        mask = hard_example_mask(cls_losses, loc_losses, decoded_boxes, targets.matches >= 0,
                                 targets.matches == -1, miner,
                                 config.classification_weight, config.localization_weight)
        loc_losses, cls_losses = loc_losses * mask, cls_losses * mask
    normalizer = tf.constant(1.0)
    if config.normalize_loss_by_num_matches:
        normalizer = tf.maximum(tf.reduce_sum(targets.reg_weights), 1.0)
    loc_normalizer = normalizer * code_size if config.normalize_loc_loss_by_codesize else normalizer
    return {
        "localization": config.localization_weight / loc_normalizer * tf.reduce_sum(loc_losses),
        "classification": config.classification_weight / normalizer * tf.reduce_sum(cls_losses),
    }


def _classification_losses(class_logits, targets, config: LossConfig):
    """Per-anchor classification losses ``[B, A]`` (summed over classes for sigmoid and focal)."""
    tf = tensorflow()
    if config.classification == "softmax":
        return softmax_classification_loss(class_logits, targets.cls_targets, targets.cls_weights,
                                           config.logit_scale)
    if config.classification == "focal":
        per_entry = sigmoid_focal_loss(class_logits, targets.cls_targets, targets.cls_weights,
                                       config.focal_gamma, config.focal_alpha)
    else:
        per_entry = sigmoid_classification_loss(class_logits, targets.cls_targets, targets.cls_weights)
    return tf.reduce_sum(per_entry, axis=-1)
