"""``FasterRCNNTask``: Faster R-CNN ResNet fine-tuning behind the engine's task interface."""
from __future__ import annotations

import numpy as np

from migrate.tf import tensorflow

from .._base import freeze_batchnorm, split_variables
from ..ssd._coco_eval import draw_detections, evaluate_detector, odapi_tag
from ._config import FasterRCNNConfig
from ._detect import detections, proposals
from ._losses import box_classifier_loss, existing, rpn_loss, sample_proposals

MEAN_RGB = (123.68, 116.779, 103.939)  # the ResNet extractors' preprocessing: channel means off 0..255 pixels
LOSS_TAGS = {"loss/rpn_localization": "Loss/RPNLoss/localization_loss",
             "loss/rpn_objectness": "Loss/RPNLoss/objectness_loss",
             "loss/localization": "Loss/BoxClassifierLoss/localization_loss",
             "loss/classification": "Loss/BoxClassifierLoss/classification_loss"}


def tensorboard_tag(name: str) -> str:
    """The OD API's TensorBoard tag for a Faster R-CNN loss or COCO metric."""
    return LOSS_TAGS.get(name) or odapi_tag(name)


class FasterRCNNTask:
    """Faster R-CNN on slim's ResNet v1 (:func:`migrate.models.faster_rcnn`), so a converted TF1 zoo checkpoint
    restores into it and computes what it computed.

    ``forward`` runs the first stage and the proposals; in inference it also
    runs the box classifier on every proposal.  In training the box classifier
    runs inside ``loss``, on the proposals sampled against the batch's ground
    truth, as the OD API samples them.  Batches are the data layer's detection
    batches (``image`` [B, H, W, 3] in [-1, 1], ``boxes`` [B, N, 4] normalised,
    ``classes`` [B, N] 1-based, ``num_boxes`` [B]).
    """

    tensorboard_tag = staticmethod(tensorboard_tag)

    def __init__(self, config: FasterRCNNConfig, category_names: dict[int, str] | None = None):
        from dataclasses import asdict  # noqa: PLC0415

        from migrate.models import faster_rcnn  # noqa: PLC0415

        tf = tensorflow()
        self.config = config
        self.category_names = dict(category_names or {})
        spec = asdict(config.spec())
        self.model = faster_rcnn(spec.pop("num_classes"), spec.pop("depth"), **spec)
        if config.freeze_batchnorm:
            freeze_batchnorm(self.model)
        self.checkpoint_model = self.model
        self.backbone = self.model.feature_extractors
        height, width = config.image_size
        features = self.model.first_stage(tf.zeros([1, height, width, 3]))["features"]
        grid = tuple(int(d) for d in features.shape[1:3])
        anchors = config.anchors.generate(grid, (height, width))
        inside = np.all((anchors >= 0.0) & (anchors <= 1.0), axis=1)
        if config.clip_anchors_to_image or not inside.any():
            anchors, inside = np.clip(anchors, 0.0, 1.0), np.ones(len(anchors), bool)
        self.anchors = anchors
        self._anchors = tf.constant(anchors)
        self._usable = tf.constant(inside)  # anchors the RPN's sample may take (the OD API prunes the others)
        self._step = tf.Variable(0, dtype=tf.int32, trainable=False, name="sampler_step")

    def on_train_step(self, step: int) -> None:
        """Seed this step's samples with the engine's step (restored on resume: the same draws again)."""
        self._step.assign(int(step))

    def preprocess(self, images):
        """[-1, 1] images as the ResNet extractors take them: 0..255 less the channel means."""
        tf = tensorflow()
        return (tf.convert_to_tensor(images, tf.float32) + 1.0) * 127.5 - tf.constant(MEAN_RGB)

    def forward(self, images, training: bool):
        first = self.model.first_stage(self.preprocess(images), training=training)
        boxes, count = proposals(first["rpn_box_encodings"], first["rpn_objectness"], self._anchors, self.config)
        outputs = {**first, "proposals": boxes, "num_proposals": count}
        if not training:
            outputs.update(self.model.second_stage(first["features"], boxes, training=False))
        return outputs

    def loss(self, batch: dict, outputs, training: bool) -> dict:
        """``{"total", "rpn_localization", "rpn_objectness", "localization", "classification",
        "regularization"}``; the last two stages' names are the box classifier's."""
        tf = tensorflow()
        seed = tf.stack([self._step, 0])
        losses = rpn_loss(outputs, batch, self._anchors, self._usable, self.config, seed)
        if training:
            boxes, valid = sample_proposals(outputs["proposals"], outputs["num_proposals"], batch, self.config,
                                            seed + [0, 1])
            second = self.model.second_stage(outputs["features"], boxes, training=True)
        else:
            boxes, second = outputs["proposals"], outputs
            valid = existing(outputs["num_proposals"], tf.shape(boxes)[1])
        losses.update(box_classifier_loss(second, boxes, valid, batch, self.config))
        losses["regularization"] = self.regularization()
        losses["total"] = tf.add_n(list(losses.values()))
        return losses

    def regularization(self):
        """``l2_weight * sum(w ** 2) / 2`` over the trainable kernels (slim's l2_regularizer)."""
        tf = tensorflow()
        kernels = [v for v in self.model.trainable_variables if v.name.split("/")[-1].startswith("kernel")]
        if not self.config.l2_weight or not kernels:
            return tf.constant(0.0)
        return self.config.l2_weight * tf.add_n([tf.nn.l2_loss(v) for v in kernels])

    def postprocess(self, outputs) -> dict:
        """Detections from inference outputs: boxes, classes (1-based), scores, num_detections."""
        return detections(outputs["box_encodings"], outputs["class_predictions_with_background"],
                          outputs["proposals"], outputs["num_proposals"], self.config)

    def detect(self, images) -> dict:
        return self.postprocess(self.forward(images, training=False))

    def draw_predictions(self, batch: dict, outputs, max_images: int = 4, min_score: float = 0.3):
        """Images ``[N, H, W, 3]`` in [0, 1] with ground truth (green) and detections (red) drawn."""
        found = self.postprocess({k: v[:max_images] for k, v in outputs.items()})
        return draw_detections(batch, found, max_images, min_score)

    def evaluate(self, dataset) -> dict[str, float]:
        """COCO metrics and the mean losses (``loss/<part>``) over a split."""
        return evaluate_detector(self, dataset)

    def backbone_variables(self) -> list:
        return split_variables(self.model, self.backbone)[0]

    def head_variables(self) -> list:
        return split_variables(self.model, self.backbone)[1]

    def feature_extractor_variables(self) -> list:
        """What a ``detection`` checkpoint restores, as the OD API's Faster R-CNN does: both feature
        extractors, not the RPN nor the box classifier."""
        return [v for extractor in self.backbone for v in extractor.trainable_variables]
