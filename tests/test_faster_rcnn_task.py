"""Faster R-CNN's pieces as the OD API defines them, and the task training on the fixture detection data.

Anchors in the grid anchor generator's order, the balanced sampler's counts and
seeding, the losses on hand-made cases, proposals and detections, then a short
run on ``detection_shapes`` whose loss falls, an evaluation with COCO metrics,
and a converted TF1 Faster R-CNN restored into the task as ``detection`` and
``full``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from finetune.tasks.faster_rcnn import FasterRCNNConfig, FasterRCNNTask, GridAnchorConfig, balanced_sample

SMALL = dict(num_classes=3, image_size=(128, 128), depth_multiplier=1 / 16, first_stage_max_proposals=64,
             second_stage_batch_size=32, anchors=GridAnchorConfig(height=32, width=32))


def test_grid_anchors_are_ordered_row_column_then_aspect_ratio_outer_scale_inner():
    config = GridAnchorConfig(scales=(0.5, 1.0), aspect_ratios=(0.5, 2.0), height=64, width=64)
    anchors = config.generate((2, 3), (64, 64))  # normalised by the image: base 1.0, stride 0.25
    assert anchors.shape == (2 * 3 * 4, 4) and config.per_location == 4
    specs = config.box_specs()
    assert specs == [(0.5, 0.5), (1.0, 0.5), (0.5, 2.0), (1.0, 2.0)]
    cell = anchors[4 * (1 * 3 + 2): 4 * (1 * 3 + 2) + 4]  # row 1, column 2
    for (scale, ratio), (ymin, xmin, ymax, xmax) in zip(specs, cell):
        height, width = scale / math.sqrt(ratio), scale * math.sqrt(ratio)
        assert np.allclose([ymin + ymax, xmin + xmax], [2 * 0.25, 2 * 0.5])  # centres at offset 0
        assert np.allclose([ymax - ymin, xmax - xmin], [height, width])


def test_the_balanced_sampler_takes_a_positive_share_then_fills_with_negatives(tf):
    candidates = np.ones((2, 200), bool)
    candidates[:, 150:] = False
    positives = np.zeros((2, 200), bool)
    positives[0, :40] = True
    positives[1, :3] = True
    seed = tf.constant([7, 0])
    sampled = balanced_sample(candidates, positives, 64, 0.5, seed).numpy()
    assert (sampled & positives).sum(axis=1).tolist() == [32, 3]
    assert sampled.sum(axis=1).tolist() == [64, 64] and not sampled[:, 150:].any()
    again = balanced_sample(candidates, positives, 64, 0.5, seed).numpy()
    other = balanced_sample(candidates, positives, 64, 0.5, tf.constant([8, 0])).numpy()
    assert (again == sampled).all() and not (other == sampled).all()


def _batch(tf, boxes, classes):
    return {"boxes": tf.constant([boxes], tf.float32), "classes": tf.constant([classes], tf.int32),
            "num_boxes": tf.constant([len(classes)])}


def test_rpn_losses_are_zero_for_perfect_codes_and_log2_for_undecided_objectness(tf):
    from finetune.tasks.faster_rcnn._losses import BOX_CODER, rpn_loss

    config = FasterRCNNConfig(num_classes=2, first_stage_minibatch_size=8, first_stage_localization_loss_weight=2.0)
    anchors = tf.constant([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0], [0.5, 0.0, 1.0, 0.5]])
    batch = _batch(tf, [[0.05, 0.0, 0.5, 0.45]], [1])  # best with anchor 0
    codes = BOX_CODER.encode(tf.tile(batch["boxes"][:, :1], [1, 4, 1]), anchors)
    outputs = {"rpn_box_encodings": codes, "rpn_objectness": tf.zeros([1, 4, 2])}
    losses = rpn_loss(outputs, batch, anchors, tf.ones([4], tf.bool), config, tf.constant([0, 0]))
    assert float(losses["rpn_localization"]) == pytest.approx(0.0, abs=1e-6)
    assert float(losses["rpn_objectness"]) == pytest.approx(math.log(2.0), rel=1e-5)
    outputs["rpn_box_encodings"] = codes + 0.5  # off by 0.5 in each of 4 codes: 4 * 0.125 on the one positive
    losses = rpn_loss(outputs, batch, anchors, tf.ones([4], tf.bool), config, tf.constant([0, 0]))
    assert float(losses["rpn_localization"]) == pytest.approx(2.0 * 0.5 / 4, rel=1e-5)  # / 4 anchors sampled


def test_the_box_classifier_loss_reads_the_matched_class_codes(tf):
    from finetune.tasks.faster_rcnn._losses import box_classifier_loss

    config = FasterRCNNConfig(num_classes=2)
    batch = _batch(tf, [[0.1, 0.1, 0.4, 0.4]], [2])
    proposals = tf.constant([[[0.1, 0.1, 0.4, 0.4], [0.6, 0.6, 0.9, 0.9]]])
    logits = tf.constant([[[-20.0, -20.0, 20.0], [20.0, -20.0, -20.0]]])  # class 2, background
    codes = tf.zeros([1, 2, 2, 4])
    second = {"class_predictions_with_background": logits, "box_encodings": codes}
    valid = tf.constant([[True, True]])
    losses = box_classifier_loss(second, proposals, valid, batch, config)
    assert float(losses["classification"]) == pytest.approx(0.0, abs=1e-6)
    assert float(losses["localization"]) == pytest.approx(0.0, abs=1e-6)
    wrong = tf.tensor_scatter_nd_update(codes, [[0, 0, 0, 0]], [1.0])  # class 1's codes: not read
    assert float(box_classifier_loss({**second, "box_encodings": wrong}, proposals, valid, batch,
                                     config)["localization"]) == pytest.approx(0.0, abs=1e-6)
    right = tf.tensor_scatter_nd_update(codes, [[0, 0, 1, 0]], [1.0])  # class 2's: 0.5 over 2 proposals
    assert float(box_classifier_loss({**second, "box_encodings": right}, proposals, valid, batch,
                                     config)["localization"]) == pytest.approx(0.25, rel=1e-5)


@pytest.fixture(scope="module")
def shapes(zoo_dir):
    import fixtures

    return fixtures.build(zoo_dir, names=["detection_shapes"])["detection_shapes"]


def test_a_short_run_on_the_fixture_data_learns_and_evaluates(shapes, tf):
    from finetune.data import detection_dataset, load_label_map
    from migrate.tf import tf_keras

    data_dir = shapes
    label_map = load_label_map(data_dir / "label_map.pbtxt")
    tf_keras().utils.set_random_seed(0)
    task = FasterRCNNTask(FasterRCNNConfig(**SMALL), {i.id: i.name for i in label_map.items})
    train = detection_dataset([str(data_dir / "train.record")], label_map, batch_size=8, image_size=(128, 128),
                              shuffle_seed=0)
    optimizer = tf_keras().optimizers.SGD(0.01, momentum=0.9)
    variables = task.model.trainable_variables

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            losses = task.loss(batch, task.forward(batch["image"], training=True), training=True)
        gradients, _ = tf.clip_by_global_norm(tape.gradient(losses["total"], variables), 10.0)  # as the zoo's
        optimizer.apply_gradients(zip(gradients, variables))
        return losses["total"]

    totals = []
    for epoch in range(2):
        for batch in train.dataset_for_epoch(epoch):
            task.on_train_step(len(totals))
            totals.append(float(step(batch)))
    assert np.mean(totals[-5:]) < 0.5 * np.mean(totals[:3]), totals
    validation = detection_dataset([str(data_dir / "val.record")], label_map, batch_size=8, image_size=(128, 128))
    metrics = task.evaluate(validation.dataset_for_epoch(0).take(2))
    assert {"mAP", "mAP@0.5", "AR@100", "loss/rpn_objectness", "loss/classification"} <= set(metrics)
    found = task.detect(next(iter(validation.dataset_for_epoch(0)))["image"])
    assert found["boxes"].shape == (8, 100, 4) and found["classes"].numpy().max() <= 3


def test_a_converted_tf1_faster_rcnn_restores_into_the_task(zoo, tmp_path, tf):
    from finetune.engine import restore
    from migrate import TargetSpec, convert

    convert(zoo["faster_rcnn_resnet50_small"], tmp_path / "converted", target=TargetSpec("auto"))
    prefix = tf.train.latest_checkpoint(str(tmp_path / "converted"))
    twelve = GridAnchorConfig(scales=(0.25, 0.5, 1.0, 2.0), height=32, width=32)
    config = FasterRCNNConfig(**{**SMALL, "rpn_depth": 512, "anchors": twelve})  # the fixture: 32 = 512 / 16
    report = restore(FasterRCNNTask(config), prefix, "detection")
    assert len(report.restored) == 265 and not report.missing  # both feature extractors, BatchNorm included
    task = FasterRCNNTask(config)
    report = restore(task, prefix, "full")
    assert len(report.restored) == 275 and not report.unused
    with pytest.raises(Exception, match="another shape"):
        restore(FasterRCNNTask(FasterRCNNConfig(**{**SMALL, "rpn_depth": 512})), prefix, "full")  # 9 anchors
