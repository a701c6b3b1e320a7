"""finetune.config: the protobuf text parser, the typed pipeline.config, overrides and paths."""
from __future__ import annotations

import dataclasses
import sys

import pytest

from finetune.config import (
    ConfigError, Message, PipelineConfig, TextProtoError, format_text, load_pipeline_config, overrides,
    parse_file, parse_text, read_pipeline_config, replace_field, schema, setting,
)
from migrate.errors import CkptkitError

from conftest import CONFIGS

SSD_V1 = CONFIGS / "ssd_mobilenet_v1_coco_2018_01_28.pipeline.config"
FASTER_RCNN = CONFIGS / "faster_rcnn_inception_v2_coco_2018_01_28.pipeline.config"
TF2_SSD = CONFIGS / "tf2_ssd_mobilenet_v2_320x320_coco17_tpu-8.source_config_from_tensorflow_models.config"
ALL = [SSD_V1, FASTER_RCNN, TF2_SSD]


def _shape(message: Message):
    """The tree without positions, for comparing parses."""
    return [(f.name, _shape(f.value) if isinstance(f.value, Message) else (f.value.kind, f.value.value))
            for f in message.fields]


# ----------------------------------------------------------------- text format
@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name.split(".")[0])
def test_reference_configs_round_trip(path):
    tree = parse_file(path)
    assert [f.name for f in tree.fields][:2] == ["model", "train_config"]
    again = parse_text(format_text(tree))
    assert _shape(again) == _shape(tree)
    assert format_text(again) == format_text(tree)


def test_scalars_strings_lists_and_comments():
    tree = parse_text("""# a comment
    a: 3.99999989895e-05 b: .08  c: -2  d: 1.0f  e: 0x1F  f: -inf  # trailing comment
    s: "x\\n\\101\\u00e9" 'y'
    l: [1, 2.5]
    m: { n: true, o: ENUM_VALUE; }
    p < q: 'z' >
    """)
    values = {f.name: f.value.value for f in tree.fields if not isinstance(f.value, Message)}
    assert values["a"] == pytest.approx(3.99999989895e-05) and values["b"] == 0.08
    assert (values["c"], values["d"], values["e"], values["f"]) == (-2, 1.0, 31, "-inf")
    assert values["s"] == "x\nAéy"
    assert [f.value.value for f in tree.get("l")] == [1, 2.5]
    m = tree.first("m").value
    assert m.first("n").value.text == "true" and m.first("o").value.kind == "identifier"
    assert tree.first("p").value.first("q").value.value == "z"
    assert (tree.first("a").line, tree.first("a").col) == (2, 5)


@pytest.mark.parametrize("text, where, what", [
    ("model {\n  ssd {\n    num_classes: 3\n", "4:1", "expected a field name or '}', found end of file"),
    ("a: 1\n}\n", "2:1", "one '}' too many"),
    ("a {\n  b: 12abc\n}", "2:6", "invalid number '12abc'"),
    ("a: 'open\n", "1:4", "unterminated string"),
    ("a 1", "1:3", "expected ':' or '{'"),
    ("a {\n  b:\n}", "3:1", "expected a value for 'b'"),
    ("a: [1 2]", "1:7", "expected ',' or ']'"),
    ("a: @", "1:4", "unexpected character '@'"),
])
def test_syntax_errors_name_file_line_col(text, where, what):
    with pytest.raises(TextProtoError, match=f"^pipeline.config:{where}: .*{what}".replace("[", r"\[")
                       .replace("]", r"\]").replace("{", r"\{").replace("}", r"\}")):
        parse_text(text, "pipeline.config")


def test_unclosed_message_names_where_it_opened():
    with pytest.raises(TextProtoError, match=r"the 'ssd' message opened at 2:7 is not closed"):
        parse_text("model {\n  ssd {\n", "pipeline.config")


def test_replace_edits_a_tree():
    tree = parse_text("a { b: 1 c: 2 } d: 'x'")
    tree = replace_field(tree, "a.b", 5)
    tree = replace_field(tree, "a.c", None)
    tree = replace_field(tree, "e.f", ["p", "q"])
    tree = replace_field(tree, "g", "@ENUM")
    assert format_text(tree) == 'a {\n  b: 5\n}\nd: \'x\'\ne {\n  f: "p"\n  f: "q"\n}\ng: ENUM\n'


# ----------------------------------------------------------------- the typed config
def test_ssd_mobilenet_v1_zoo_config():
    cfg = load_pipeline_config(SSD_V1)
    ssd = cfg.model
    assert ssd.num_classes == 90
    assert (ssd.image_resizer.height, ssd.image_resizer.width) == (300, 300)
    assert (ssd.feature_extractor.type, ssd.feature_extractor.depth_multiplier, ssd.feature_extractor.min_depth) \
        == ("ssd_mobilenet_v1", 1.0, 16)
    assert ssd.feature_extractor.conv_hyperparams.regularizer.weight == pytest.approx(4e-5)
    assert ssd.feature_extractor.conv_hyperparams.batch_norm.decay == pytest.approx(0.9997)
    anchors = ssd.anchor_generator
    assert (anchors.num_layers, anchors.reduce_boxes_in_lowest_layer) == (6, True)
    assert anchors.min_scale == pytest.approx(0.2) and anchors.max_scale == pytest.approx(0.95)
    assert anchors.aspect_ratios == pytest.approx((1.0, 2.0, 0.5, 3.0, 0.3333), abs=1e-6)
    assert (ssd.box_coder.y_scale, ssd.box_coder.height_scale) == (10.0, 5.0)
    assert (ssd.matcher.matched_threshold, ssd.matcher.unmatched_threshold) == (0.5, 0.5)
    assert isinstance(ssd.loss.classification_loss, schema.WeightedSigmoid)
    miner = ssd.loss.hard_example_miner
    assert (miner.num_hard_examples, miner.loss_type, miner.max_negatives_per_positive) == (3000, "CLASSIFICATION", 3)
    assert miner.iou_threshold == pytest.approx(0.99)
    nms = ssd.post_processing.batch_non_max_suppression
    assert (nms.max_detections_per_class, nms.max_total_detections) == (100, 100)
    assert ssd.post_processing.score_converter == "SIGMOID"
    train = cfg.train_config
    assert (train.batch_size, train.num_steps, train.checkpoint_type) == (24, 200000, "detection")
    assert train.optimizer.use_moving_average is True  # the proto's default: the zoo trained with EMA
    rms = train.optimizer.algorithm
    assert isinstance(rms, schema.RMSPropOptimizer) and rms.decay == pytest.approx(0.9)
    assert rms.learning_rate.decay_steps == 800720
    assert [type(o) for o in train.data_augmentation_options] == [schema.RandomHorizontalFlip, schema.SSDRandomCrop]
    assert len(train.data_augmentation_options[1].effective_operations()) == 7
    assert cfg.eval_config.num_examples == 8000 and cfg.eval_input_reader[0].shuffle is False
    assert {f.code for f in cfg.findings} == {"ignored", "placeholder"}


def test_tf2_config_focal_loss_cosine_and_globs():
    cfg = load_pipeline_config(TF2_SSD)
    focal = cfg.model.loss.classification_loss
    assert (focal.gamma, focal.alpha) == (2.0, 0.75)
    assert cfg.model.loss.hard_example_miner is None
    cosine = cfg.train_config.optimizer.algorithm.learning_rate
    assert (cosine.learning_rate_base, cosine.total_steps, cosine.warmup_steps) == (0.08, 50000, 2000)
    assert cfg.train_config.checkpoint_type == "classification"
    assert cfg.eval_config.metrics_set == ("coco_detection_metrics",)
    assert cfg.train_input_reader.tf_record_input_reader.input_path[0].endswith("train2017-?????-of-00256.tfrecord")
    assert not [f for f in cfg.findings if f.severity != "info"]


def test_faster_rcnn_is_read_whole_and_its_backbone_refused_by_the_support_check():
    from finetune._validate import support_findings

    cfg = load_pipeline_config(FASTER_RCNN)
    assert isinstance(cfg.model, schema.FasterRcnn) and cfg.model.first_stage_max_proposals == 100
    assert not [f for f in cfg.findings if f.severity != "info"]
    assert load_pipeline_config(FASTER_RCNN, strict=True).model == cfg.model  # nothing the reader refuses
    assert cfg.train_config.optimizer.algorithm.learning_rate.schedule[1].step == 900000
    [backbone] = support_findings(cfg)  # the only thing ckptkit cannot build here
    assert (backbone.path, backbone.line, backbone.code) == ("model.faster_rcnn.feature_extractor.type", 12,
                                                             "unsupported_model")
    assert "Inception v2" in backbone.message and "faster_rcnn_resnet50" in backbone.message


@pytest.mark.parametrize("model", ["center_net", "detr", "experimental_model"])
def test_every_model_proto_alternative_is_unsupported_not_unknown(model):
    cfg = read_pipeline_config(f"model {{ {model} {{ }} }}\n")
    [finding] = [f for f in cfg.findings if f.severity == "error"]
    assert (finding.code, finding.path) == ("unsupported", f"model.{model}")


def test_unknown_and_unsupported_fields_are_findings_or_strict_errors():
    text = ("model { ssd {\n  feature_extractor { depth_multipler: 1.0 batch_norm_trainable: true }\n} }\n"
            "train_config { data_augmentation_options { random_black_patches {} }\n"
            "  data_augmentation_options { random_adjust_brightness { max_delta: 0.1 } } }\n")
    cfg = read_pipeline_config(text)
    by_path = {f.path: f for f in cfg.findings}
    typo = by_path["model.ssd.feature_extractor.depth_multipler"]
    assert (typo.severity, typo.line, typo.col) == ("error", 2, 23)
    assert "did you mean 'depth_multiplier'" in typo.message
    assert str(typo).startswith("pipeline.config:2:23: error:")
    assert by_path["model.ssd.feature_extractor.batch_norm_trainable"].severity == "warning"
    assert by_path["train_config.data_augmentation_options[0].random_black_patches"].severity == "warning"
    assert cfg.train_config.data_augmentation_options == (schema.RandomAdjustBrightness(0.1),)
    with pytest.raises(ConfigError, match=r"3 setting\(s\) ckptkit cannot honour.*2:23 .*depth_multipler"):
        read_pipeline_config(text, strict=True)


def test_invalid_values_are_collected_with_line_and_col():
    text = ("model { ssd { num_classes: 0\n"
            "  image_resizer { fixed_shape_resizer { height: 1.5 } }\n"
            "  loss { hard_example_miner { loss_type: FOO } } } }\n"
            "train_config { batch_size: 2 batch_size: 3 optimizer { adam_optimizer {} momentum_optimizer {} } }\n")
    with pytest.raises(ConfigError) as info:
        read_pipeline_config(text)
    message = str(info.value)
    assert message.startswith("pipeline.config: 5 invalid settings: 1:15 model.ssd.num_classes must be at least 1")
    for part in ("2:49 model.ssd.image_resizer.fixed_shape_resizer.height expects an integer, found 1.5",
                 "3:42 model.ssd.loss.hard_example_miner.loss_type expects one of BOTH",
                 "4:30 train_config.batch_size is set twice (first at 4:16)",
                 "train_config.optimizer.momentum_optimizer conflicts with adam_optimizer"):
        assert part in message
    assert "\n" not in message and info.value.exit_code == 2


def test_one_invalid_value_points_at_it():
    with pytest.raises(ConfigError, match=r"^x.config:1:16: train_config.data_augmentation_options\[0\] must hold "
                                          r"exactly one of random_horizontal_flip, .*; found nothing; fix it"):
        read_pipeline_config("train_config { data_augmentation_options { } }", "x.config")


def test_defaults_are_the_same_with_and_without_a_file():
    assert read_pipeline_config("") == PipelineConfig()
    partial = read_pipeline_config("train_config { batch_size: 4 }")
    assert partial == dataclasses.replace(PipelineConfig(), train_config=schema.TrainConfig(batch_size=4))


def test_setting_reads_proto_paths():
    cfg = load_pipeline_config(SSD_V1)
    assert setting(cfg, "model.ssd.image_resizer.fixed_shape_resizer.height") == 300
    assert setting(cfg, "train_config.optimizer.rms_prop_optimizer.learning_rate."
                        "exponential_decay_learning_rate.decay_steps") == 800720
    assert setting(cfg, "eval_input_reader[0].tf_record_input_reader.input_path[0]").endswith("mscoco_val.record")
    assert cfg.origins["model.ssd.num_classes"].endswith(":4:18")


def test_config_reading_never_imports_tensorflow():
    import subprocess  # other tests import TensorFlow: check in a fresh process

    code = ("import sys, finetune.config as c; c.load_pipeline_config(sys.argv[1]); "
            "assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(SSD_V1)], check=True)


# ----------------------------------------------------------------- paths and overrides
def test_placeholders_fail_clearly_when_used():
    cfg = load_pipeline_config(SSD_V1)
    placeholders = [f for f in cfg.findings if f.code == "placeholder"]
    assert len(placeholders) == 5 and all(f.severity == "info" for f in placeholders)
    with pytest.raises(ConfigError, match=r"pipeline.config:158:25: train_config.fine_tune_checkpoint is still "
                                          r"'PATH_TO_BE_CONFIGURED/model.ckpt'.*--fine-tune-checkpoint"):
        cfg.path("train_config.fine_tune_checkpoint")
    with pytest.raises(ConfigError, match=r":165:17: .*input_path\[0\] is still.*--train-input-path"):
        cfg.input_files("train")
    with pytest.raises(ConfigError, match=r":174:19: eval_input_reader\[0\].label_map_path"):
        cfg.path("eval_input_reader.label_map_path")


def test_relative_paths_resolve_against_the_config_and_globs_expand(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("a-00000-of-00002.tfrecord", "a-00001-of-00002.tfrecord"):
        (tmp_path / "data" / name).write_bytes(b"")
    config = tmp_path / "pipeline.config"
    config.write_text('train_config { fine_tune_checkpoint: "../ckpt/model.ckpt" }\n'
                      'train_input_reader { label_map_path: "data/map.pbtxt"\n'
                      '  tf_record_input_reader { input_path: "data/a-?????-of-00002.tfrecord" } }\n'
                      'eval_input_reader { tf_record_input_reader { input_path: "data/missing.record" } }\n')
    cfg = load_pipeline_config(config)
    assert cfg.path("train_config.fine_tune_checkpoint") == tmp_path / "../ckpt/model.ckpt"
    assert cfg.path("train_input_reader.label_map_path") == tmp_path / "data/map.pbtxt"
    assert [p.name for p in cfg.input_files("train")] == ["a-00000-of-00002.tfrecord", "a-00001-of-00002.tfrecord"]
    with pytest.raises(ConfigError, match=r"1 eval input path\(s\) match no file: .*pipeline.config:4:58: "
                                          r"'data/missing.record'"):
        cfg.input_files("eval")


def test_overrides_apply_flags_and_record_their_origin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_pipeline_config(SSD_V1)
    new = overrides(cfg, num_classes=3, image_size=(128, 96), batch_size=8, num_steps=100, learning_rate=0.01,
                    fine_tune_checkpoint="ckpt/model.ckpt", label_map_path="map.pbtxt",
                    train_input_path=["t-*.record"], eval_input_path="v.record", use_moving_average=False,
                    freeze_variables="FeatureExtractor/.*", fine_tune_checkpoint_type=None)
    assert new.model.num_classes == 3 and (new.model.image_resizer.height, new.model.image_resizer.width) == (128, 96)
    assert (new.train_config.batch_size, new.train_config.num_steps) == (8, 100)
    assert new.train_config.optimizer.algorithm.learning_rate.initial_learning_rate == 0.01
    assert new.train_config.optimizer.use_moving_average is False
    assert new.train_config.freeze_variables == ("FeatureExtractor/.*",)
    assert new.path("train_config.fine_tune_checkpoint") == tmp_path / "ckpt/model.ckpt"
    assert new.path("eval_input_reader.label_map_path") == tmp_path / "map.pbtxt"
    assert new.origins["train_config.batch_size"] == "--batch-size"
    assert not [f for f in new.findings if f.code == "placeholder"]
    assert cfg.train_config.batch_size == 24  # the input is never modified
    with pytest.raises(ConfigError, match=r"match no file: --train-input-path: '.*/t-\*.record'"):
        new.input_files("train")


@pytest.mark.parametrize("text, check", [
    ("constant_learning_rate { learning_rate: 0.1 }", lambda lr: lr.learning_rate == 0.05),
    ("cosine_decay_learning_rate { learning_rate_base: 0.1 warmup_learning_rate: 0.01 }",
     lambda lr: (lr.learning_rate_base, lr.warmup_learning_rate) == pytest.approx((0.05, 0.005))),
    ("manual_step_learning_rate { initial_learning_rate: 0.1 schedule { step: 10 learning_rate: 0.01 } }",
     lambda lr: (lr.initial_learning_rate, lr.schedule[0].learning_rate) == pytest.approx((0.05, 0.005))),
])
def test_learning_rate_override_keeps_the_schedule_shape(text, check):
    cfg = read_pipeline_config(f"train_config {{ optimizer {{ adam_optimizer {{ learning_rate {{ {text} }} }} }} }}")
    assert check(overrides(cfg, learning_rate=0.05).train_config.optimizer.algorithm.learning_rate)


def test_bad_overrides_are_errors():
    cfg = PipelineConfig()
    with pytest.raises(ConfigError, match="unknown override.*bogus; known: num_classes"):
        overrides(cfg, bogus=1)
    with pytest.raises(ConfigError, match="--batch-size must be a positive integer, found 0"):
        overrides(cfg, batch_size=0)
    with pytest.raises(ConfigError, match="--fine-tune-checkpoint-type must be classification"):
        overrides(cfg, fine_tune_checkpoint_type="everything")
    with pytest.raises(ConfigError, match="--num-classes needs an SSD or Faster R-CNN model"):
        overrides(read_pipeline_config("model { center_net { } }\n"), num_classes=3)
    frcnn = overrides(load_pipeline_config(FASTER_RCNN), num_classes=3)
    assert frcnn.model.num_classes == 3 and frcnn.origins["model.faster_rcnn.num_classes"] == "--num-classes"
    with pytest.raises(ConfigError, match="--image-size sets a fixed_shape_resizer.*keep_aspect_ratio_resizer"):
        overrides(frcnn, image_size=640)
    assert overrides(cfg, batch_size=None) == cfg
    assert issubclass(ConfigError, CkptkitError) and issubclass(TextProtoError, CkptkitError)


def test_detection_shapes_pipeline_config_is_clean():
    """The fixture's config (generated from the zoo template, no data needed) reads strictly."""
    from fixtures._detection_data import CLASSES, LEGACY_CHECKPOINT, MAX_OBJECTS, pipeline_config_text

    cfg = read_pipeline_config(pipeline_config_text(), strict=True)
    assert not cfg.findings
    assert cfg.model.num_classes == len(CLASSES)
    assert (cfg.model.image_resizer.height, cfg.model.image_resizer.width) == (128, 128)
    assert cfg.train_config.fine_tune_checkpoint == LEGACY_CHECKPOINT
    assert cfg.train_config.checkpoint_type == "classification"
    assert cfg.train_config.max_number_of_boxes == 2 * MAX_OBJECTS
    assert cfg.train_input_reader.tf_record_input_reader.input_path == ("train.record",)
    assert isinstance(cfg.train_config.optimizer.algorithm.learning_rate, schema.CosineDecayLearningRate)


# ----------------------------------------------------------------- proto fidelity and one-pass checks
REAL_FIELDS = """model { ssd {
  feature_extractor { type: "ssd_mobilenet_v1" bifpn { min_level: 3 max_level: 7 } }
} }
eval_config {
  image_classes_field_map_empty_to_ones: false
  parameterized_metric { coco_keypoint_metrics { class_label: "person" } }
  keypoint_edge { start: 0 end: 1 }
  super_categories { key: "animal" value: "cat,dog" }
  eval_master: ""
  image_classes_field_map_empty_to_one: true
}
"""


def test_real_proto_fields_are_known_and_a_typo_is_still_flagged():
    cfg = read_pipeline_config(REAL_FIELDS)
    by_path = {f.path: f for f in cfg.findings}
    for path in ("model.ssd.feature_extractor.bifpn", "eval_config.image_classes_field_map_empty_to_ones",
                 "eval_config.parameterized_metric", "eval_config.keypoint_edge", "eval_config.super_categories",
                 "eval_config.eval_master"):
        assert by_path[path].code in ("ignored", "unsupported"), by_path[path]
    assert by_path["eval_config.image_classes_field_map_empty_to_ones"].severity == "info"
    assert by_path["model.ssd.feature_extractor.bifpn"].severity == "error"  # known, but ckptkit cannot build it
    [typo] = [f for f in cfg.findings if f.code == "unknown_field"]
    assert (typo.path, typo.line, typo.col) == ("eval_config.image_classes_field_map_empty_to_one", 10, 3)
    assert "did you mean 'image_classes_field_map_empty_to_ones'" in typo.message


def test_every_blocking_problem_in_one_error_support_first(tmp_path):
    from finetune._configure import configure

    path = tmp_path / "pipeline.config"
    path.write_text('model { faster_rcnn { num_classes: 3 } }\n'
                    'train_config { num_steps: 10 fine_tune_checkpoint: "PATH_TO_BE_CONFIGURED/model.ckpt" }\n'
                    'train_input_reader {\n  label_map_path: "PATH_TO_BE_CONFIGURED/map.pbtxt"\n'
                    '  tf_record_input_reader { input_path: "PATH_TO_BE_CONFIGURED/train.record" }\n}\n')
    with pytest.raises(ConfigError) as caught:
        configure(path)
    message = str(caught.value)
    assert message.startswith("5 problem(s) to fix before training:\n") and len(message.splitlines()) == 6
    parts = [message.index(s) for s in ("grid_anchor_generator.scales: no scales",
                                        "grid_anchor_generator.aspect_ratios: no aspect_ratios",
                                        "2:52: train_config.fine_tune_checkpoint: still",
                                        "4:19: train_input_reader.label_map_path: still",
                                        "5:40: train_input_reader.tf_record_input_reader.input_path[0]: still")]
    assert parts == sorted(parts)
    assert "--fine-tune-checkpoint" in message and "--label-map-path" in message


def test_flags_replace_placeholders_and_unsupported_settings_are_listed_together(tmp_path):
    from finetune._configure import configure
    from finetune._validate import blocking_findings

    cfg = configure(SSD_V1, check=False, fine_tune_checkpoint="ckpt/model.ckpt", num_steps=5)
    paths = [f.path for f in blocking_findings(cfg)]
    assert "train_config.fine_tune_checkpoint" not in paths and len(paths) == 4
    cfg = configure(SSD_V1, check=False, from_scratch=True, num_steps=5)
    assert "train_config.fine_tune_checkpoint" not in [f.path for f in blocking_findings(cfg)]
    text = SSD_V1.read_text().replace('"ssd_mobilenet_v1"', '"ssd_resnet50_v1_fpn"').replace(
        "num_layers_before_predictor: 0", "num_layers_before_predictor: 1")
    (tmp_path / "pipeline.config").write_text(text)
    found = blocking_findings(configure(tmp_path / "pipeline.config", check=False, num_steps=5))
    assert [(f.code, f.path.rsplit(".", 1)[-1]) for f in found[:2]] == [
        ("unsupported_model", "type"), ("unsupported_model", "num_layers_before_predictor")]
    assert found[0].line > 0 and [f.code for f in found[2:]] == ["placeholder"] * 5


def test_validate_never_imports_tensorflow():
    import subprocess  # other tests import TensorFlow: check in a fresh process

    code = ("import sys; from finetune.cli import main; "
            "assert main(['validate', '--pipeline-config', sys.argv[1], '-q']) == 1; "
            "assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(SSD_V1)], check=True, capture_output=True)


# Field names of the OD API messages ckptkit reads, as object_detection/protos/*.proto define them
# (eval, train, input_reader, hyperparams, box_predictor, post_processing, losses, optimizer, ssd).
PROTO_FIELDS = {
    schema.EvalConfig: "batch_size num_visualizations num_examples eval_interval_secs max_evals save_graph "
                       "visualization_export_dir eval_master metrics_set export_path ignore_groundtruth "
                       "use_moving_averages eval_instance_masks min_score_threshold max_num_boxes_to_visualize "
                       "skip_scores skip_labels visualize_groundtruth_boxes groundtruth_box_visualization_color "
                       "keep_image_id_for_visualization_export retain_original_images include_metrics_per_category "
                       "recall_lower_bound recall_upper_bound retain_original_image_additional_channels "
                       "parameterized_metric keypoint_edge super_categories image_classes_field_map_empty_to_ones "
                       "all_metrics_per_category force_no_resize use_dummy_loss_in_eval "
                       "skip_predictions_for_unlabeled_class",
    schema.TrainConfig: "batch_size data_augmentation_options sync_replicas keep_checkpoint_every_n_hours optimizer "
                        "gradient_clipping_by_norm fine_tune_checkpoint from_detection_checkpoint "
                        "load_all_detection_checkpoint_vars num_steps startup_delay_steps bias_grad_multiplier "
                        "freeze_variables replicas_to_aggregate batch_queue_capacity num_batch_queue_threads "
                        "prefetch_queue_capacity merge_multiple_label_boxes add_regularization_loss "
                        "fine_tune_checkpoint_type fine_tune_checkpoint_version "
                        "run_fine_tune_checkpoint_dummy_computation update_trainable_variables "
                        "use_multiclass_scores max_number_of_boxes unpad_groundtruth_tensors retain_original_images "
                        "use_bfloat16 summarize_gradients",
    schema.InputReader: "name label_map_path shuffle shuffle_buffer_size filenames_shuffle_buffer_size num_epochs "
                        "sample_1_of_n_examples num_readers num_parallel_batches num_prefetch_batches queue_capacity "
                        "min_after_dequeue read_block_length prefetch_size num_parallel_map_calls "
                        "num_additional_channels num_keypoints keypoint_type_weight max_number_of_boxes "
                        "load_multiclass_scores load_context_features load_instance_masks mask_type load_dense_pose "
                        "use_display_name include_source_id input_type tf_record_input_reader external_input_reader "
                        "expand_labels_hierarchy load_context_image_ids",
    schema.Hyperparams: "op regularizer initializer activation batch_norm group_norm regularize_depthwise "
                        "force_use_bias",
    schema.BatchNorm: "decay center scale epsilon train",
    schema.ConvolutionalBoxPredictor: "conv_hyperparams min_depth max_depth num_layers_before_predictor use_dropout "
                                      "dropout_keep_probability kernel_size box_code_size apply_sigmoid_to_scores "
                                      "class_prediction_bias_init use_depthwise mask_head",
    schema.BatchNonMaxSuppression: "score_threshold iou_threshold max_detections_per_class max_total_detections "
                                   "use_static_shapes use_class_agnostic_nms max_classes_per_detection "
                                   "soft_nms_sigma combined_nms use_partitioned_nms use_combined_nms "
                                   "change_coordinate_frame use_hard_nms use_cpu_nms",
    schema.PostProcessing: "batch_non_max_suppression score_converter logit_scale calibration_config",
    schema.Loss: "localization_loss classification_loss hard_example_miner classification_weight "
                 "localization_weight random_example_sampler equalization_loss expected_loss_weights "
                 "min_num_negative_samples desired_negative_sampling_ratio",
    schema.HardExampleMiner: "num_hard_examples iou_threshold loss_type max_negatives_per_positive "
                             "min_negatives_per_image",
    schema.WeightedSigmoidFocal: "anchorwise_output gamma alpha",
    schema.WeightedSoftmax: "anchorwise_output logit_scale",
    schema.FeatureExtractor: "type depth_multiplier min_depth conv_hyperparams "
                             "override_base_feature_extractor_hyperparams pad_to_multiple use_explicit_padding "
                             "use_depthwise fpn bifpn num_layers replace_preprocessor_with_placeholder "
                             "spaghettinet_arch_name",
    schema.SSD: "num_classes image_resizer feature_extractor box_coder matcher similarity_calculator "
                "encode_background_as_zeros negative_class_weight box_predictor anchor_generator post_processing "
                "normalize_loss_by_num_matches normalize_loc_loss_by_codesize loss freeze_batchnorm "
                "inplace_batchnorm_update add_background_class weight_regression_loss_by_score "
                "explicit_background_class use_confidences_as_targets implicit_example_weight "
                "return_raw_detections_during_predict mask_head_config "
                # TF1-era Ssd fields, later moved to Loss
                "use_expected_classification_loss_under_sampling minimum_negative_sampling "
                "desired_negative_sampling_ratio",
    schema.FixedShapeResizer: "height width resize_method convert_to_grayscale",
    schema.ArgMaxMatcher: "matched_threshold unmatched_threshold ignore_thresholds negatives_lower_than_unmatched "
                          "force_match_for_each_row use_matmul_gather",
    schema.Optimizer: "rms_prop_optimizer momentum_optimizer adam_optimizer use_moving_average "
                      "moving_average_decay",
    schema.RandomCropImage: "min_object_covered min_aspect_ratio max_aspect_ratio min_area max_area "
                            "overlap_thresh clip_boxes random_coef",
    schema.RMSPropOptimizer: "learning_rate momentum_optimizer_value decay epsilon",
    schema.ExponentialDecayLearningRate: "initial_learning_rate decay_steps decay_factor staircase",
    schema.ManualStepLearningRate: "initial_learning_rate schedule warmup",
    schema.CosineDecayLearningRate: "learning_rate_base total_steps warmup_learning_rate warmup_steps "
                                    "hold_base_rate_steps",
}


@pytest.mark.parametrize("cls", list(PROTO_FIELDS), ids=lambda c: c.__name__)
def test_every_proto_field_is_read_or_listed_as_known(cls):
    """A real field is never an unknown-field finding: read by the schema, or KNOWN with its reason."""
    from finetune.config._read import _schema

    known = set(_schema(cls)) | {name.split(".")[0] for name in getattr(cls, "KNOWN", {})}
    missing = [name for name in PROTO_FIELDS[cls].split() if name not in known]
    assert not missing, f"{cls.__name__}: proto fields reported as unknown: {missing}"
