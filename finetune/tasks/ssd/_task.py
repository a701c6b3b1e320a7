"""``SSDTask``: SSD detection fine-tuning behind the engine's :class:`~finetune.tasks.Task` interface."""
from __future__ import annotations

from migrate.tf import tensorflow

from .._base import split_variables
from ._coco_eval import draw_detections, evaluate_detector, odapi_tag
from ._losses import ssd_loss
from ._matcher import assign_targets
from ._model import SSDConfig, build_ssd
from ._postprocess import postprocess


class SSDTask:
    """SSD MobileNet v1/v2 (and SSDLite) in the TF2 OD API's layout (see :mod:`._model`).

    ``model`` is the functional graph that trains; ``checkpoint_model`` the
    OD API structure over the same variables, which the engine writes and
    restores (``model/_feature_extractor/...``, ``model/_box_predictor/...``).
    Batches are the data layer's detection batches: ``image`` [B, H, W, 3] in
    [-1, 1], ``boxes`` [B, N, 4] normalised, ``classes`` [B, N] 1-based (0 =
    padding), ``num_boxes`` [B].
    """

    def __init__(self, config: SSDConfig, category_names: dict[int, str] | None = None):
        self.config = config
        self.category_names = dict(category_names or {})
        self.detector = build_ssd(config)
        self.model = self.detector.model
        self.checkpoint_model = self.detector.trackable
        self.backbone = self.detector.backbone
        self.anchors = self.detector.anchors
        self._anchors = tensorflow().constant(self.anchors)

    tensorboard_tag = staticmethod(odapi_tag)  # TensorBoard tags as the OD API names them (Loss/total_loss, ...)

    def forward(self, images, training: bool):
        return self.model(images, training=training)

    def loss(self, batch: dict, outputs, training: bool) -> dict:
        """``{"total", "localization", "classification", "regularization"}``, each a scalar."""
        tf = tensorflow()
        cfg = self.config
        box_encodings = outputs["box_encodings"]
        class_logits = outputs["class_predictions_with_background"]
        targets = assign_targets(self._anchors, batch["boxes"], batch["classes"], batch.get("num_boxes"),
                                 cfg.num_classes, cfg.matcher, cfg.box_coder)
        decoded = cfg.box_coder.decode(box_encodings, self._anchors) if cfg.loss.hard_example_miner else None
        losses = ssd_loss(box_encodings, class_logits, targets, decoded, cfg.loss, cfg.box_coder.code_size)
        losses["regularization"] = self.regularization()
        losses["total"] = tf.add_n([losses["localization"], losses["classification"], losses["regularization"]])
        return losses

    def regularization(self):
        """``l2_weight * sum(w ** 2) / 2`` over the model's trainable kernels (slim's l2_regularizer)."""
        tf = tensorflow()
        kernels = [v for v in self.model.trainable_variables if v.name.split("/")[-1].startswith(
            ("kernel", "depthwise_kernel"))]
        if not self.config.l2_weight or not kernels:
            return tf.constant(0.0)
        return self.config.l2_weight * tf.add_n([tf.nn.l2_loss(v) for v in kernels])

    def detect(self, images) -> dict:
        """Post-processed detections (inference mode): boxes, classes (1-based), scores, num_detections."""
        return self.postprocess(self.forward(images, training=False))

    def draw_predictions(self, batch: dict, outputs, max_images: int = 4, min_score: float = 0.3):
        """Images ``[N, H, W, 3]`` in [0, 1] with ground truth (green) and detections (red) drawn."""
        found = postprocess(outputs["box_encodings"][:max_images],
                            outputs["class_predictions_with_background"][:max_images],
                            self._anchors, self.config.postprocess, self.config.box_coder)
        return draw_detections(batch, found, max_images, min_score)

    def postprocess(self, outputs) -> dict:
        """Detections from the model's raw outputs: boxes, classes (1-based), scores, num_detections."""
        return postprocess(outputs["box_encodings"], outputs["class_predictions_with_background"],
                           self._anchors, self.config.postprocess, self.config.box_coder)

    def evaluate(self, dataset) -> dict[str, float]:
        """COCO metrics (see :mod:`._coco_eval`) and the mean losses (``loss/<part>``) over a split."""
        return evaluate_detector(self, dataset)

    def backbone_variables(self) -> list:
        return split_variables(self.model, self.backbone)[0]

    def head_variables(self) -> list:
        return split_variables(self.model, self.backbone)[1]

    def feature_extractor_variables(self) -> list:
        """What a ``detection`` checkpoint restores, as the OD API's SSD does: the backbone and the extra
        feature layers, not the box predictors (their shapes follow num_classes and the anchors)."""
        return list(self.detector.feature_extractor.trainable_variables)
