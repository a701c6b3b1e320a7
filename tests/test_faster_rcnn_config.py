"""``model { faster_rcnn { ... } }`` read by the typed reader and turned into the Faster R-CNN task's settings.

No TensorFlow: the reader, the support checks and ``faster_rcnn_config`` are plain Python.
"""
from __future__ import annotations

import pytest

from finetune import faster_rcnn_config
from finetune._settings import unbuildable
from finetune.config import ConfigError, load_pipeline_config, read_pipeline_config, schema

from conftest import CONFIGS

RESNET50 = CONFIGS / "faster_rcnn_resnet50_coco.config"
TF2_RESNET50 = CONFIGS / "tf2_faster_rcnn_resnet50_v1_640x640_coco17_tpu-8.config"
INCEPTION = CONFIGS / "faster_rcnn_inception_v2_coco_2018_01_28.pipeline.config"
SAMPLES = sorted(CONFIGS.glob("*faster_rcnn*"))  # INCEPTION is the TF1 zoo tarball's file


def test_the_samples_are_all_here():
    names = {p.name for p in SAMPLES}
    assert {RESNET50.name, TF2_RESNET50.name, INCEPTION.name} <= names


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_faster_rcnn_config_parses_with_no_unknown_field(path):
    cfg = load_pipeline_config(path)
    assert isinstance(cfg.model, schema.FasterRcnn)
    assert not [str(f) for f in cfg.findings if f.code == "unknown_field" or f.severity != "info"]


def test_resnet50_sample_gives_the_zoo_values():
    warnings: list[str] = []
    frcnn = faster_rcnn_config(load_pipeline_config(RESNET50), warnings)
    assert (frcnn.num_classes, frcnn.depth) == (90, 50)
    assert frcnn.anchors.scales == (0.25, 0.5, 1.0, 2.0) and frcnn.anchors.per_location == 12
    assert (frcnn.anchors.height_stride, frcnn.anchors.width_stride) == (16, 16)
    assert (frcnn.first_stage_localization_loss_weight, frcnn.second_stage_localization_loss_weight) == (2.0, 2.0)
    assert (frcnn.first_stage_max_proposals, frcnn.first_stage_nms_iou_threshold) == (300, 0.7)
    assert (frcnn.initial_crop_size, frcnn.maxpool_kernel_size, frcnn.maxpool_stride) == (14, 2, 2)
    post = frcnn.postprocess
    assert (post.score_converter, post.iou_threshold, post.max_total_detections) == ("softmax", 0.6, 300)
    assert frcnn.rpn_initializer_stddev == 0.01 and not frcnn.use_dropout and frcnn.dropout_keep_probability == 1.0
    # keep_aspect_ratio_resizer 600/1024 without padding: ckptkit also pads to 1024x1024 and says so
    assert frcnn.image_size == (1024, 1024)
    assert [w for w in warnings if "keep_aspect_ratio_resizer" in w and "also pads it to 1024x1024" in w]
    assert frcnn.freeze_batchnorm and not frcnn.share_box_across_classes


def test_tf2_keras_sample_trains_batch_norm_and_shares_the_box():
    warnings: list[str] = []
    frcnn = faster_rcnn_config(load_pipeline_config(TF2_RESNET50), warnings)
    assert frcnn.depth == 50 and frcnn.image_size == (640, 640) and not warnings  # padded as the OD API pads
    assert not frcnn.freeze_batchnorm and frcnn.share_box_across_classes and frcnn.clip_anchors_to_image


def test_proto_defaults_fill_what_the_file_leaves_out():
    text = RESNET50.read_text().replace("    first_stage_max_proposals: 300\n", "")
    assert text != RESNET50.read_text()
    cfg = read_pipeline_config(text)
    frcnn = faster_rcnn_config(cfg, [])
    assert frcnn.first_stage_max_proposals == 300  # the proto's default
    assert (frcnn.first_stage_minibatch_size, frcnn.first_stage_positive_balance_fraction) == (256, 0.5)
    assert (frcnn.second_stage_batch_size, frcnn.second_stage_balance_fraction) == (64, 0.25)
    assert (frcnn.rpn_depth, frcnn.rpn_kernel_size) == (512, 3)
    assert cfg.model.second_stage_box_predictor.box_code_size == 4
    assert cfg.model.number_of_stages == 2 and cfg.model.first_stage_atrous_rate == 1
    sparse = faster_rcnn_config(read_pipeline_config(text.replace("      score_converter: SOFTMAX\n", "")
                                                     .replace("    first_stage_max_proposals: 300\n", "")), [])
    assert sparse.postprocess.score_converter == "identity"  # PostProcessing's proto default


def test_regularization_follows_add_regularization_loss():
    text = RESNET50.read_text().replace("weight: 0.0", "weight: 0.0005", 1)
    assert faster_rcnn_config(read_pipeline_config(text), []).l2_weight == 0.0005
    off = text.replace("  batch_size: 1\n", "  batch_size: 1\n  add_regularization_loss: false\n")
    assert faster_rcnn_config(read_pipeline_config(off), []).l2_weight == 0.0


@pytest.mark.parametrize("depth", [101, 152])
def test_depth_comes_from_the_extractor_type(depth):
    text = TF2_RESNET50.read_text().replace("faster_rcnn_resnet50_keras", f"faster_rcnn_resnet{depth}_keras")
    assert faster_rcnn_config(read_pipeline_config(text), []).depth == depth


def test_inception_v2_is_refused_with_its_path():
    cfg = load_pipeline_config(INCEPTION)
    assert [path for path, _ in unbuildable(cfg)] == ["model.faster_rcnn.feature_extractor.type"]
    with pytest.raises(ConfigError, match=r"model\.faster_rcnn\.feature_extractor\.type: 'faster_rcnn_inception_v2' "
                       r"is the Inception v2 backbone"):
        faster_rcnn_config(cfg, [])


@pytest.mark.parametrize(("old", "new", "path"), [
    ("first_stage_features_stride: 16", "first_stage_features_stride: 8",
     "model.faster_rcnn.feature_extractor.first_stage_features_stride"),
    ("num_classes: 90", "num_classes: 90\n    number_of_stages: 1", "model.faster_rcnn.number_of_stages"),
    ("num_classes: 90", "num_classes: 90\n    first_stage_atrous_rate: 2", "model.faster_rcnn.first_stage_atrous_rate"),
    ("max_dimension: 1024", "max_dimension: 5000",
     "model.faster_rcnn.image_resizer.keep_aspect_ratio_resizer.max_dimension"),
    ("'faster_rcnn_resnet50'", "'faster_rcnn_resnet50_fpn_keras'", "model.faster_rcnn.feature_extractor.type"),
])
def test_what_ckptkit_cannot_build_is_named_by_its_path(old, new, path):
    text = RESNET50.read_text()
    assert old in text
    assert path in [p for p, _ in unbuildable(read_pipeline_config(text.replace(old, new, 1)))]


def test_an_unknown_field_in_faster_rcnn_is_reported_at_its_line():
    text = RESNET50.read_text().replace("    initial_crop_size: 14\n", "    initial_crop_sise: 14\n")
    line = text.splitlines().index("    initial_crop_sise: 14") + 1
    cfg = read_pipeline_config(text)
    [typo] = [f for f in cfg.findings if f.code == "unknown_field"]
    assert (typo.path, typo.line, typo.severity) == ("model.faster_rcnn.initial_crop_sise", line, "error")
    assert "did you mean 'initial_crop_size'" in typo.message


def test_known_but_unbuilt_settings_carry_their_severity():
    text = RESNET50.read_text().replace("    initial_crop_size: 14\n", "    initial_crop_size: 14\n"
                                        "    hard_example_miner { num_hard_examples: 16 }\n"
                                        "    use_static_shapes: true\n")
    by_path = {f.path: f for f in read_pipeline_config(text).findings}
    assert by_path["model.faster_rcnn.hard_example_miner"].severity == "error"
    assert by_path["model.faster_rcnn.use_static_shapes"].severity == "info"


def test_an_ssd_config_is_not_a_faster_rcnn():
    with pytest.raises(ConfigError, match="faster_rcnn_config needs model"):
        faster_rcnn_config(load_pipeline_config(CONFIGS / "ssd_mobilenet_v1_coco_2018_01_28.pipeline.config"), [])
