"""finetune.tasks.ssd model and task: SSD MobileNet in the TF2 OD API's layout, one training step's worth."""
from __future__ import annotations

import math

import numpy as np
import pytest

from finetune.tasks import SSDConfig, SSDTask, Task
from finetune.tasks.ssd import AnchorConfig, PostprocessConfig, postprocess


@pytest.fixture(scope="module")
def keras():
    from migrate._tf import tf_keras

    return tf_keras()


def small_ssd(num_classes: int = 3, **fields) -> SSDConfig:
    return SSDConfig(num_classes=num_classes, **{"depth_multiplier": 0.25, "image_size": (128, 128), **fields})


@pytest.fixture(scope="module")
def task(keras):
    keras.utils.set_random_seed(0)
    return SSDTask(small_ssd(), category_names={1: "cat", 2: "dog", 3: "bird"})


@pytest.fixture(scope="module")
def batch(tf):
    rng = np.random.default_rng(0)
    return {
        "image": tf.constant(rng.uniform(-1, 1, (2, 128, 128, 3)), tf.float32),
        "boxes": tf.constant([[[0.1, 0.1, 0.5, 0.5], [0.3, 0.4, 0.9, 0.8], [0, 0, 0, 0]],
                              [[0.2, 0.2, 0.6, 0.7], [0, 0, 0, 0], [0, 0, 0, 0]]], tf.float32),
        "classes": tf.constant([[1, 3, 0], [2, 0, 0]], tf.int32),
        "num_boxes": tf.constant([2, 1], tf.int32),
    }


def test_structure_follows_the_od_api(task):
    assert isinstance(task, Task)
    assert task.detector.kind == "mobilenet_v1"
    assert task.detector.feature_map_shapes == ((8, 8), (4, 4), (2, 2), (1, 1), (1, 1), (1, 1))
    assert task.anchors.shape == (8 * 8 * 3 + 4 * 4 * 6 + 2 * 2 * 6 + 3 * 6, 4)
    names = {layer.name for layer in task.model.layers}
    # extra layers: depth 512 * 0.25 = 128 (1x1 at half depth), 128 * 0.25 = 32; BoxPredictor per map
    assert {"Conv2d_13_pointwise_1_Conv2d_2_1x1_64", "Conv2d_13_pointwise_2_Conv2d_2_3x3_s2_128",
            "Conv2d_13_pointwise_1_Conv2d_5_1x1_16", "Conv2d_13_pointwise_2_Conv2d_5_3x3_s2_32",
            "BoxPredictor_0_BoxEncodingPredictor", "BoxPredictor_5_ClassPredictor"} <= names
    assert task.model.get_layer("BoxPredictor_0_ClassPredictor").filters == 3 * 4
    assert task.model.get_layer("conv1") is task.backbone.get_layer("conv1")
    # the graph that trains and the structure checkpoints are written from hold the same variables
    assert {v.ref() for v in task.model.variables} == {v.ref() for v in task.checkpoint_model.variables}


def test_forward_loss_and_gradients(task, batch, tf):
    with tf.GradientTape() as tape:
        outputs = task.forward(batch["image"], training=True)
        losses = task.loss(batch, outputs, training=True)
    assert outputs["box_encodings"].shape == (2, 330, 4)
    assert outputs["class_predictions_with_background"].shape == (2, 330, 4)
    assert set(losses) == {"total", "localization", "classification", "regularization"}
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert float(losses["total"]) == pytest.approx(sum(float(losses[k]) for k in
                                                       ("localization", "classification", "regularization")))
    backbone, head = task.backbone_variables(), task.head_variables()
    assert {v.ref() for v in backbone} | {v.ref() for v in head} == {v.ref() for v in task.model.trainable_variables}
    assert not {v.ref() for v in backbone} & {v.ref() for v in head}
    grads = {"/".join(v.name.split("/")[-2:]): g  # layer/weight
             for v, g in zip(backbone + head, tape.gradient(losses["total"], backbone + head))}
    for name in ("conv1/kernel:0", "conv_pw_11/kernel:0", "BoxPredictor_0_ClassPredictor/bias:0",
                 "BoxPredictor_5_BoxEncodingPredictor/kernel:0", "Conv2d_13_pointwise_2_Conv2d_4_3x3_s2_64/kernel:0"):
        assert grads[name] is not None and float(tf.reduce_sum(tf.abs(grads[name]))) > 0, name


def test_detect_shapes(task, batch):
    detections = task.detect(batch["image"])
    assert detections["boxes"].shape == (2, 100, 4)
    assert detections["scores"].shape == (2, 100)
    assert detections["classes"].dtype.name == "int32"
    classes, num = detections["classes"].numpy(), detections["num_detections"].numpy()
    for i in range(2):
        assert classes[i, :num[i]].min() >= 1 and classes[i, :num[i]].max() <= 3
        assert (classes[i, num[i]:] == 0).all()


def test_evaluate_returns_coco_metrics_and_losses(task, batch):
    metrics = task.evaluate([batch])
    assert {"mAP", "mAP@0.5", "mAP@0.75", "AR@100", "AP@0.5/cat", "AP@0.5/dog", "AP@0.5/bird",
            "loss/total"} <= set(metrics)
    assert 0.0 <= metrics["mAP@0.5"] <= 1.0


def test_postprocess_by_hand(tf):
    anchors = tf.constant([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.5, 0.0, 1.0, 0.5]])
    logits = np.full((1, 3, 3), -10.0, np.float32)
    logits[0, 0, 2] = 2.0  # anchor 0: class 2 (column 0 is background)
    logits[0, 1, 1] = 1.0  # anchor 1: class 1
    out = postprocess(tf.zeros((1, 3, 4)), tf.constant(logits), anchors,
                      PostprocessConfig(score_threshold=0.5, max_total_detections=5))
    assert int(out["num_detections"][0]) == 2
    assert out["classes"].numpy().tolist() == [[2, 1, 0, 0, 0]]
    np.testing.assert_allclose(out["scores"].numpy()[0, :2], [1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-1))],
                               rtol=1e-5)
    np.testing.assert_allclose(out["boxes"].numpy()[0, :2], anchors.numpy()[:2], atol=1e-6)


def test_mobilenet_v2_backbone(keras):
    config = SSDConfig(num_classes=2, kind="mobilenet_v2", depth_multiplier=0.35, image_size=(128, 128),
                       extra_layer_depths=(512, 256), anchors=AnchorConfig(num_layers=4),
                       freeze_batchnorm=True, use_dropout=True, box_predictor_kernel_size=3)
    task = SSDTask(config)
    assert task.detector.kind == "mobilenet_v2"
    assert task.detector.feature_map_shapes == ((8, 8), (4, 4), (2, 2), (1, 1))
    assert "layer_19_2_Conv2d_3_3x3_s2_89" in {layer.name for layer in task.model.layers}  # int(256 * 0.35)
    assert task.model.get_layer("BoxPredictor_3_ClassPredictor_dropout").rate == pytest.approx(0.2)
    assert task.model.get_layer("BoxPredictor_3_ClassPredictor").kernel_size == (3, 3)
    # the OD API's MobileNetV2 depths below 1.0: Conv_1 scaled (1280 * 0.35 -> 448), min_depth 16 on projections
    assert task.model.get_layer("Conv_1").filters == 448
    assert task.model.get_layer("expanded_conv_project").filters == 16
    assert task.model.get_layer("block_1_expand").filters == 96
    bn = task.model.get_layer("Conv_1_bn")  # freeze_batchnorm: moving statistics kept, gamma and beta train
    assert bn.gamma.ref() in {v.ref() for v in task.backbone_variables()}
    before = bn.moving_mean.numpy().copy()
    task.forward(np.ones((1, 128, 128, 3), np.float32), training=True)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)


def test_other_backbones_are_refused():
    with pytest.raises(ValueError, match="backbone 'resnet50' is not supported"):
        SSDConfig(num_classes=1, kind="resnet50")


def test_draw_predictions(task, batch):
    outputs = task.forward(batch["image"], training=False)
    drawn = task.draw_predictions(batch, outputs, max_images=1).numpy()
    assert drawn.shape == (1, 128, 128, 3) and 0.0 <= drawn.min() and drawn.max() <= 1.0
    y0, x0 = int(0.1 * 127), int(0.1 * 127)  # ground-truth box 0 drawn in green
    assert drawn[0, y0, x0 + 5].tolist() == [0.0, 1.0, 0.0]


def test_detection_checkpoint_restores_the_feature_extractor_not_the_box_predictors(keras, tmp_path):
    """fine_tune_checkpoint_type detection, as the OD API's SSD: backbone and extra layers from an SSD
    checkpoint of another class count, fresh box predictors (their shapes follow num_classes)."""
    from finetune.engine import restore
    from migrate._tf import tensorflow

    def ssd(num_classes: int, seed: int) -> SSDTask:
        keras.backend.reset_uids()
        keras.utils.set_random_seed(seed)
        return SSDTask(small_ssd(num_classes))

    trained = ssd(90, seed=1)
    tensorflow().train.Checkpoint(model=trained.checkpoint_model).write(str(tmp_path / "ssd"))
    fresh = ssd(3, seed=2)
    report = restore(fresh, tmp_path / "ssd", "detection")
    saved = {v.name: v.numpy() for v in trained.model.variables}
    now = {v.name: v.numpy() for v in fresh.model.variables}
    extra = "ssd_meta_arch/feature_extractor/feature_map_generator/Conv2d_13_pointwise_2_Conv2d_4_3x3_s2_64/kernel:0"
    for name in ("conv1/kernel:0", "conv_pw_13_bn/moving_mean:0", extra):
        np.testing.assert_array_equal(now[name], saved[name], err_msg=name)
    initialised = report.grouped("initialised")
    assert initialised and all(group.startswith("ssd_meta_arch/box_predictor/") for group in initialised), initialised
    assert not any(name.startswith("ssd_meta_arch/box_predictor/") for name in report.grouped("restored"))
