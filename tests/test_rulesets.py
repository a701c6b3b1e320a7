"""Every built-in rule set: convert its fixtures, restore into the target with
assert_existing_objects_matched(), compare every tensor, and run parity against
the TF1 graph.  A new rule set must add a case here (test_every_rule_set_has_a_case)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from migrate import open_checkpoint
from migrate._convert import convert
from migrate._formats._objgraph import decode, keys_by_full_name
from migrate._generic import source_value
from migrate._plan import plan_model
from migrate._rulesets import builtin
from migrate._select import SelectOptions
from migrate._targets import TargetSpec, build, weights
from migrate._transforms import chain_apply, parse

SLOW = pytest.mark.slow
# rule set -> cases (fixture, convert options); full-size fixtures are slow cases
CASES = {
    "slim_mobilenet_v1": [
        ("mobilenet_v1_shapes_legacy", {"options": SelectOptions(use_ema=True)}),  # trained: live activations
        ("mobilenet_v1_rmsprop_ema", {"options": SelectOptions(use_ema=True)}),
        ("mobilenet_v1_small", {}),
    ],
    "slim_mobilenet_v2": [("mobilenet_v2_small", {"options": SelectOptions(use_ema=True)})],
    # the backbone alone here (parity compares it); the whole detector: tests/test_odapi_convert.py
    "od_ssd_mobilenet": [("ssd_mobilenet_v1_small", {"restore": "backbone", "target": "keras:MobileNet"}),
                         ("ssd_mobilenet_v2_small", {"restore": "backbone", "target": "keras:MobileNetV2"})],
    "od_faster_rcnn_resnet": [("faster_rcnn_resnet50_small", {})],  # more: tests/test_faster_rcnn_convert.py
    "slim_resnet_v1": [("resnet_v1_50_small", {}), pytest.param("resnet_v1_50", {}, marks=SLOW)],
    "slim_resnet_v2": [("resnet_v2_50_small", {}), pytest.param("resnet_v2_50", {}, marks=SLOW)],
    "slim_vgg": [("vgg_16_small", {}), ("vgg_19_small", {}), pytest.param("vgg_16", {}, marks=SLOW)],
    "slim_inception_v3": [pytest.param("inception_v3", {}, marks=SLOW)],
}


# Untrained fixtures (initial values nudged once) whose activations fade before the output: every layer
# agrees, but the output is the same for every image, so parity can only say inconclusive.  The others,
# trained or with live activations, must pass.
COLLAPSED = {"mobilenet_v1_rmsprop_ema", "mobilenet_v1_small", "ssd_mobilenet_v1_small", "mobilenet_v2_small",
             "ssd_mobilenet_v2_small"}


def _cases():
    for ruleset, cases in CASES.items():
        for case in cases:
            values, marks = (case.values, case.marks) if hasattr(case, "values") else (case, ())
            yield pytest.param(ruleset, *values, marks=marks, id=f"{ruleset}-{values[0]}")


ALL_CASES = list(_cases())


def fresh_layer_names() -> None:
    """Restart tf_keras' layer-name counters.

    Auto-named targets (keras:InceptionV3's conv2d_N) are numbered process-wide,
    so without this the three builds below would name one layer three ways.
    """
    from migrate._tf import tf_keras

    tf_keras().backend.reset_uids()


def test_every_rule_set_has_a_case():
    assert sorted(builtin()) == sorted(CASES), "add a conversion case for every built-in rule set"


@pytest.mark.parametrize("ruleset,fixture,kwargs", ALL_CASES)
def test_convert_restore_compare_parity(ruleset, fixture, kwargs, any_zoo, tmp_path, tf):
    zoo = any_zoo
    out = tmp_path / "out"
    kwargs = dict(kwargs)
    target = TargetSpec(kwargs.pop("target", "auto"))
    fresh_layer_names()
    report = convert(zoo[fixture], out, target=target, parity=True, parity_layers=True, **kwargs)
    assert report.mapping.rule_set == ruleset
    assert report.mapping.complete and report.verified == len(report.mapping.mapped) > 0
    assert report.parity.verdict == ("inconclusive" if fixture in COLLAPSED else "passed"), report.parity
    assert report.parity.layers and all(e.max_rel <= 1e-4 for e in report.parity.layers)
    # an independent restore into a freshly built target model
    with open_checkpoint(zoo[fixture]) as reader:
        fresh_layer_names()
        plan = plan_model(reader, target, None, kwargs.get("restore", "full"), kwargs.get("options", SelectOptions()))
        fresh_layer_names()
        model = build(plan.target)
        # the client's idiom (restore, not read: it binds save_counter too), and nothing extra in the file
        status = tf.train.Checkpoint(model=model).restore(tf.train.latest_checkpoint(str(out)))
        status.assert_existing_objects_matched()
        status.assert_consumed()
        restored = {name: w.variable.numpy() for name, w in weights(model).items()}
        for mapped in report.mapping.mapped:
            transforms = tuple(parse(t) for t in mapped.transform.split()) if "(" in mapped.transform or \
                mapped.transform in ("drop_background", "squeeze") else ()
            item = plan.planned[mapped.target].item
            want = chain_apply(transforms, source_value(reader, item), restored[mapped.target].shape)
            assert restored[mapped.target].tobytes() == want.tobytes(), mapped.target


def test_map_reports_without_writing(zoo, capsys, tmp_path):
    from migrate.cli import main

    assert main(["map", str(zoo["mobilenet_v1_rmsprop_ema"]), "--target", "auto", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"mapped", "unmapped_source", "unmapped_target", "shape_mismatches", "ambiguous", "summary"}
    assert data["summary"]["mapped"] == 137 and data["summary"]["unmapped_target"] == 0
    first = data["mapped"][0]
    assert set(first) >= {"source", "target", "rule", "transform"} and first["rule"].startswith("slim_mobilenet_v1.toml:")
    assert any(m["transform"] == "drop_background" for m in data["mapped"]) is False  # 1001 -> 1001 by default


def test_restore_backbone_leaves_the_head_out(zoo):
    with open_checkpoint(zoo["mobilenet_v1_small"]) as reader:
        plan = plan_model(reader, TargetSpec("auto"), None, "backbone", SelectOptions())
    report = plan.report
    assert report.complete
    assert set(report.left_out_target) == {"conv_preds/kernel", "conv_preds/bias"}
    assert "--restore backbone leaves the head out" in report.dropped["MobilenetV1/Logits/Conv2d_1c_1x1/weights"]


def test_background_class_dropped_for_1000_class_target(zoo, tmp_path):
    report = convert(zoo["mobilenet_v1_small"], tmp_path / "out", target=TargetSpec("auto", classes=1000))
    logits = next(m for m in report.mapping.mapped if m.target == "conv_preds/kernel")
    assert logits.transform == "drop_background"
    with open_checkpoint(tmp_path / "out") as out, open_checkpoint(zoo["mobilenet_v1_small"]) as src:
        keys = keys_by_full_name(decode(out.read("_CHECKPOINTABLE_OBJECT_GRAPH").item()))
        assert np.array_equal(out.read(keys["conv_preds/kernel"]), src.read("MobilenetV1/Logits/Conv2d_1c_1x1/weights")[..., 1:])


def test_incomplete_mapping_is_reported_not_raised_as_a_traceback(zoo, tmp_path, capsys):
    from migrate.cli import main

    code = main(["convert", str(zoo["mobilenet_v1_small"]), "--out", str(tmp_path / "out"), "--target", "keras:MobileNetV2"])
    captured = capsys.readouterr()
    assert code == 2 and not (tmp_path / "out").exists()
    assert "does not fit keras:MobileNetV2" in captured.err and "Traceback" not in captured.err
    assert "Unmapped target" in captured.out


def test_wrong_rule_fails_parity_and_names_the_layer(zoo, tmp_path, capsys):
    """A user rule that swaps BatchNorm beta and moving_mean of one layer: every tensor
    verifies (it is what the rules say) but parity fails at that layer's successor."""
    rules = tmp_path / "swap.toml"
    rules.write_text(
        "[[rule]]\nsource = '^MobilenetV1/Conv2d_3_pointwise/BatchNorm/beta'\ntarget = 'conv_pw_3_bn/moving_mean'\n"
        "[[rule]]\nsource = '^MobilenetV1/Conv2d_3_pointwise/BatchNorm/moving_mean'\ntarget = 'conv_pw_3_bn/beta'\n")
    from migrate.cli import main

    code = main(["convert", str(zoo["mobilenet_v1_small"]), "--out", str(tmp_path / "out"), "--target", "auto",
                 "--rules", str(rules), "--parity", "--parity-layers"])
    captured = capsys.readouterr()
    assert code == 1 and not (tmp_path / "out").exists()
    assert "parity FAILED" in captured.err and "first divergent layer: conv_dw_4" in captured.err
    assert "swap.toml:2" in captured.out


@pytest.mark.parametrize("text,message", [
    ("[[rule]\n", "not valid TOML"),
    ("[[rule]]\nsource = '(unclosed'\ntarget = 'x'\n", "bad.toml:2: invalid regular expression"),
    ("[[rule]]\nsource = 'a'\ntarget = 'b'\ntransform = ['reshape(1,']\n", "bad.toml:2: unknown transform"),
    ("[[rule]]\nsource = 'a'\n", "rule has no target"),
])
def test_bad_rule_files(zoo, tmp_path, capsys, text, message):
    from migrate.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert main(["map", str(zoo["mobilenet_v1_small"]), "--target", "auto", "--rules", str(bad)]) == 2
    assert message in capsys.readouterr().err


def test_transform_that_does_not_fit_names_the_rule(zoo, tmp_path, capsys):
    rules = tmp_path / "fit.toml"
    rules.write_text("[[rule]]\nsource = '^MobilenetV1/Conv2d_0/weights'\ntarget = 'conv1/kernel'\n"
                     "transform = ['reshape(5,5)']\n")
    from migrate.cli import main

    assert main(["map", str(zoo["mobilenet_v1_small"]), "--target", "auto", "--rules", str(rules), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert "fit.toml:2: reshape(5,5) does not fit shape [3, 3, 3, 8]" in data["shape_mismatches"][0]["rule"]


def test_unknown_target(zoo, capsys):
    from migrate.cli import main

    assert main(["map", str(zoo["mobilenet_v1_small"]), "--target", "keras:NoSuchNet"]) == 2
    assert "no such tf_keras application; known:" in capsys.readouterr().err


@pytest.mark.parametrize("flags,load", [(["--layout", "weights"], "prefix"), (["--layout", "h5"], "h5")])
def test_other_layouts_load_with_load_weights(zoo, tmp_path, tf, flags, load):
    from migrate.cli import main

    out = tmp_path / "out"
    assert main(["convert", str(zoo["mobilenet_v1_small"]), "--out", str(out), "--target", "auto", *flags]) == 0
    with open_checkpoint(zoo["mobilenet_v1_small"]) as reader:
        plan = plan_model(reader, TargetSpec("auto"), None, "full", SelectOptions())
    model = build(plan.target)
    if load == "h5":
        model.load_weights(str(out / "weights.h5"))
    else:
        model.load_weights(tf.train.latest_checkpoint(str(out))).assert_existing_objects_matched()
    kernel = model.get_layer("conv1").kernel.numpy()
    with open_checkpoint(zoo["mobilenet_v1_small"]) as src:
        assert kernel.tobytes() == src.read("MobilenetV1/Conv2d_0/weights").tobytes()


def test_errors_on_tensorflow_paths_are_one_line(zoo):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "migrate.cli", "map", str(zoo["mobilenet_v1_small"]),
                             "--target", "keras:NoSuchNet"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_sources_are_not_modified(zoo, tmp_path):
    import hashlib

    entry = zoo["mobilenet_v1_rmsprop_ema"]
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in entry.iterdir()}
    convert(entry, tmp_path / "generic")
    convert(entry, tmp_path / "model", target=TargetSpec("auto"), options=SelectOptions(use_ema=True))
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in entry.iterdir()}
    assert before == after


def test_auto_takes_the_width_matched_vgg_when_keras_does_not_fit(zoo):
    """The fixture VGGs are narrower than Keras' fixed-width VGG16: auto falls back to the same network at the
    checkpoint's widths and says why; naming keras:VGG16 still reports the misfit."""
    with open_checkpoint(zoo["vgg_16_small"]) as reader:
        plan = plan_model(reader, TargetSpec("auto"), None, "full", SelectOptions())
        keras = plan_model(reader, TargetSpec("keras:VGG16"), None, "full", SelectOptions())
    assert plan.target.spec == "module:migrate.models:slim_vgg" and plan.report.complete
    assert plan.target.extra["widths"] == [8, 16, 32, 64, 64] and plan.target.extra["fc_width"] == 64
    assert any(w.startswith("keras:VGG16 did not fit (31 shape mismatches)") for w in plan.report.warnings)
    assert not keras.report.complete and len(keras.report.shape_mismatches) == 31


def test_classes_re_heads_a_classifier_whose_logits_no_longer_fit(zoo):
    """--classes 10 on a 1001-class MobileNet: the logits start afresh, every other tensor maps; without
    --classes the same misfit could not happen (the count is read off the checkpoint)."""
    with open_checkpoint(zoo["mobilenet_v1_small"]) as reader:
        plan = plan_model(reader, TargetSpec("auto", classes=10), None, "full", SelectOptions())
    assert plan.report.complete and set(plan.report.left_out_target) == {"conv_preds/kernel", "conv_preds/bias"}
    assert plan.report.dropped["MobilenetV1/Logits/Conv2d_1c_1x1/weights"].startswith(
        "--classes 10: the head is re-initialised for the new class count")
