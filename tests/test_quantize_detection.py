"""``quantize.detection``: SavedModel and TFLite export of an SSD with post-processing inside, and its mAP.

One tiny SSD (MobileNet v1 depth 0.25, 64x64, from scratch, a few steps on
``detection_shapes``) is trained once per session with ``finetune.finetune``
and rebuilt with ``quantize._source.load_run``, as ``ckpt-quantize`` does.
Exports are checked against ``SSDTask.detect`` on the same test images.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SMALL = {"image_size": 64, "depth_multiplier": 0.25, "from_scratch": True}


@pytest.fixture(scope="session")
def shapes() -> Path:
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    return fixtures.build(out, names=["detection_shapes"])["detection_shapes"]


def _head(source: Path, out: Path, n: int) -> Path:
    from finetune.data import iter_records, write_records

    write_records(out, [r.data for r in islice(iter_records(source), n)])
    return out


@pytest.fixture(scope="session")
def ssd_run(shapes, tmp_path_factory):
    """A few-step SSD run and its data: ``(source, work_dir, records)``."""
    from finetune import finetune
    from quantize._source import load_run

    tmp = tmp_path_factory.mktemp("quantize-detection")
    records = {"train": _head(shapes / "train.record", tmp / "train.record", 32),
               "test": _head(shapes / "test.record", tmp / "test.record", 8)}
    paths = {"train_input_path": str(records["train"]), "eval_input_path": str(records["test"])}
    finetune(shapes / "pipeline.config", model_dir=tmp / "run", task="detection", num_steps=30, batch_size=8,
             learning_rate=0.05, log_every=1000, test_input_path=str(records["test"]), **paths, **SMALL)
    source = load_run(tmp / "run", task="detection", config_path=shapes / "pipeline.config",
                      test_input_path=str(records["test"]), **paths, **SMALL)
    return source, tmp, records


@pytest.fixture(scope="session")
def test_images(ssd_run):
    from quantize.detection._evaluate import detection_batches

    source, _, records = ssd_run
    data = detection_batches(str(records["test"]), source.label_map, source.image_size, batch_size=8)
    return np.asarray(next(iter(data.dataset_for_epoch(0)))["image"], np.float32)


@pytest.fixture(scope="session")
def reference(ssd_run, test_images) -> dict:
    source, _, _ = ssd_run
    return {k: np.asarray(v) for k, v in source.finetune_task.detect(test_images).items()}


def fast_nms_reference(ssd, images, tf) -> dict:
    """TensorFlow's version of TFLite's fast NMS: each anchor's best class, one class-agnostic NMS."""
    from finetune.tasks.ssd._postprocess import convert_scores

    config, post = ssd.config, ssd.config.postprocess
    outputs = ssd.forward(images, training=False)
    boxes = config.box_coder.decode(outputs["box_encodings"], ssd.anchors).numpy()
    scores = convert_scores(outputs["class_predictions_with_background"], post).numpy()
    size = post.max_total_detections
    found = {"boxes": [], "classes": [], "scores": [], "num_detections": []}
    for image_boxes, image_scores in zip(boxes, scores):
        best = image_scores.max(-1)
        keep = tf.image.non_max_suppression(image_boxes, best, size, post.iou_threshold, post.score_threshold).numpy()

        def pad(a):
            return np.concatenate([a, np.zeros((size - len(keep), *a.shape[1:]), a.dtype)])

        found["boxes"].append(pad(np.clip(image_boxes[keep], 0.0, 1.0)))
        found["classes"].append(pad(image_scores[keep].argmax(-1) + 1))
        found["scores"].append(pad(best[keep]))
        found["num_detections"].append(len(keep))
    return {k: np.asarray(v) for k, v in found.items()}


@pytest.fixture(scope="session")
def fast_reference(ssd_run, test_images, tf) -> dict:
    return fast_nms_reference(ssd_run[0].finetune_task, test_images, tf)


@pytest.fixture(scope="session")
def float_tflite(ssd_run) -> Path:
    from quantize.detection import export_detection_tflite

    source, tmp, _ = ssd_run
    return export_detection_tflite(source.finetune_task, tmp / "ssd_float32.tflite", "float32")


def assert_same_detections(got: dict, want: dict, top: int = 10, atol: float = 1e-4) -> None:
    """Per image: the same count, and each of ``got``'s ``top`` best detections is one of ``want``'s (same class,
    score and box within ``atol``); tie order may differ, the set may not, except at the cut of a full list."""
    np.testing.assert_array_equal(got["num_detections"], want["num_detections"])
    for i in range(len(got["num_detections"])):
        n = min(top, int(got["num_detections"][i]))
        np.testing.assert_allclose(got["scores"][i, :n], want["scores"][i, :n], atol=atol, err_msg=f"image {i}")
        m = int(want["num_detections"][i])
        # a full list is cut at max_total_detections: scores within atol of the cut may fall on either side
        cut = want["scores"][i, m - 1] + atol if m == want["scores"].shape[1] else -np.inf
        for j in range(n):
            if got["scores"][i, j] <= cut:
                continue
            same = ((want["classes"][i, :m] == got["classes"][i, j])
                    & (np.abs(want["scores"][i, :m] - got["scores"][i, j]) <= atol)
                    & (np.abs(want["boxes"][i, :m] - got["boxes"][i, j]).max(axis=-1) <= atol))
            assert same.any(), (f"image {i}: detection {j} (class {got['classes'][i, j]}, score "
                                f"{got['scores'][i, j]:.5f}, box {got['boxes'][i, j]}) is not among TensorFlow's")


# ----------------------------------------------------------------- import hygiene
def test_importing_quantize_detection_does_not_import_tensorflow():
    code = "import sys, quantize.detection; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_postprocess_op_attributes_follow_the_ssd_config():
    from finetune.tasks.ssd import BoxCoder, PostprocessConfig, SSDConfig
    from quantize.detection._graph import PostprocessOp, center_size_anchors

    config = SSDConfig(num_classes=7, box_coder=BoxCoder(8.0, 9.0, 4.0, 3.0),
                       postprocess=PostprocessConfig(score_threshold=0.25, iou_threshold=0.5,
                                                     max_detections_per_class=20, max_total_detections=30))
    text = PostprocessOp.from_ssd(config, use_regular_nms=True).implements()
    assert text.startswith('name: "TFLite_Detection_PostProcess"')
    for expected in ('"num_classes" value { i: 7 }', '"max_detections" value { i: 30 }',
                     '"detections_per_class" value { i: 20 }', '"use_regular_nms" value { b: true }',
                     '"nms_score_threshold" value { f: 0.25 }', '"nms_iou_threshold" value { f: 0.5 }',
                     '"y_scale" value { f: 8.0 }', '"x_scale" value { f: 9.0 }', '"h_scale" value { f: 4.0 }',
                     '"w_scale" value { f: 3.0 }', '"max_classes_per_detection" value { i: 1 }'):
        assert expected in text
    anchors = np.array([[0.1, 0.2, 0.5, 0.4]], np.float32)
    np.testing.assert_allclose(center_size_anchors(anchors), [[0.3, 0.3, 0.4, 0.2]], atol=1e-7)


# ----------------------------------------------------------------- SavedModel
@pytest.fixture(scope="session")
def saved_model(ssd_run) -> Path:
    from quantize.detection import export_detection_saved_model

    source, tmp, _ = ssd_run
    return export_detection_saved_model(source.finetune_task, tmp / "saved_model")


def _serve(serve, pixels, tf) -> dict:
    got = serve(tf.constant(pixels))
    return {"boxes": got["detection_boxes"].numpy(), "classes": got["detection_classes"].numpy().astype(int),
            "scores": got["detection_scores"].numpy(), "num_detections": got["num_detections"].numpy().astype(int)}


def test_saved_model_serving_default_matches_ssd_detect(ssd_run, saved_model, test_images, reference, tf):
    from quantize.detection import export_detection_saved_model

    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    assert set(serve.structured_outputs) == {"detection_boxes", "detection_classes", "detection_scores",
                                             "num_detections"}
    pixels = np.round((test_images + 1.0) * 127.5).astype(np.uint8)  # the images rounded to what a camera gives
    found = _serve(serve, pixels, tf)
    # the reference sees the same rounded pixels: low, near-equal scores would otherwise swap places
    expected = {k: np.asarray(v) for k, v in ssd_run[0].finetune_task.detect(pixels / 127.5 - 1.0).items()}
    assert found["boxes"].shape == reference["boxes"].shape
    assert_same_detections(found, expected, top=100)
    real = found["classes"][found["scores"] > 0]
    assert real.size and real.min() >= 1 and real.max() <= 3  # 1-based label-map ids, as the OD API exports
    # any image size: resized to the model's input inside the graph
    bigger = serve(tf.cast(tf.image.resize(tf.constant(pixels), [96, 80]), tf.uint8))
    assert bigger["detection_boxes"].shape[0] == len(pixels)
    with pytest.raises(Exception, match="exists"):
        export_detection_saved_model(ssd_run[0].finetune_task, saved_model)


def test_saved_model_evaluation_equals_the_task_evaluation(ssd_run, saved_model):
    from quantize.detection import evaluate_detection_saved_model
    from quantize.detection._evaluate import detection_batches

    source, _, records = ssd_run
    metrics = evaluate_detection_saved_model(saved_model, records["test"], source.label_map, source.image_size)
    expected = source.finetune_task.evaluate(
        detection_batches(str(records["test"]), source.label_map, source.image_size).dataset_for_epoch(0))
    assert metrics["mAP@0.5"] == pytest.approx(expected["mAP@0.5"], abs=1e-6)
    assert metrics["mAP"] == pytest.approx(expected["mAP"], abs=1e-6)


@pytest.mark.slow
def test_saved_model_with_float_input(ssd_run, test_images, reference, tf):
    from quantize.detection import export_detection_saved_model

    source, tmp, _ = ssd_run
    out = export_detection_saved_model(source.finetune_task, tmp / "saved_model_float", input_type="float_image_tensor")
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    pixels = np.round((test_images + 1.0) * 127.5).astype(np.float32)
    assert_same_detections(_serve(serve, pixels, tf), reference, top=100)


# ----------------------------------------------------------------- TFLite
def test_float_tflite_returns_the_same_detections_as_tensorflow(float_tflite, test_images, reference):
    """Per-class NMS (the default) from single-class fused ops: TensorFlow's detections, at 1 and 2 threads."""
    from quantize.detection import open_detection_tflite, tflite_detections

    runner = open_detection_tflite(float_tflite)
    assert runner.input_shape == (1, 64, 64, 3)
    assert sorted(runner.detection_outputs) == ["detection_boxes", "detection_classes", "detection_scores",
                                                "num_detections"]
    ops = [op["op_name"] for op in runner.interpreter._get_ops_details()]  # noqa: SLF001 - the fused op is there
    assert ops.count("TFLite_Detection_PostProcess") == 3 and "NON_MAX_SUPPRESSION_V4" not in ops  # one a class
    assert_same_detections(tflite_detections(runner, test_images), reference, top=100)
    two_threads = open_detection_tflite(float_tflite, num_threads=2)
    assert_same_detections(tflite_detections(two_threads, test_images), reference, top=100)


def test_fast_nms_tflite_is_the_od_apis_fast_nms_and_not_tensorflows_detections(ssd_run, test_images,
                                                                                 fast_reference, reference):
    from quantize.detection import export_detection_tflite, open_detection_tflite, tflite_detections

    source, tmp, _ = ssd_run
    path = export_detection_tflite(source.finetune_task, tmp / "ssd_fast.tflite", nms="fast")
    found = tflite_detections(open_detection_tflite(path, num_threads=2), test_images)
    assert_same_detections(found, fast_reference)
    with pytest.raises(AssertionError):  # one class per box: not the per-class detections TensorFlow gives
        assert_same_detections(found, reference, top=100)


def test_int8_tflite_runs_and_keeps_the_post_process_in_float(ssd_run, test_images, reference):
    from quantize.detection import export_detection_tflite, open_detection_tflite, tflite_detections
    source, tmp, _ = ssd_run
    images = list(source.calibration_images(8))
    path = export_detection_tflite(source.finetune_task, tmp / "ssd_int8.tflite", "int8",
                                   representative_images=images)
    runner = open_detection_tflite(path)
    kinds = {d["dtype"] for d in runner.interpreter.get_tensor_details()}
    assert np.int8 in kinds
    conv_outputs = [d for d in runner.interpreter._get_ops_details() if d["op_name"] == "CONV_2D"]  # noqa: SLF001
    details = runner.interpreter.get_tensor_details()
    assert conv_outputs and all(details[op["outputs"][0]]["dtype"] == np.int8 for op in conv_outputs)
    raw = dict(zip(runner.detection_outputs, runner(test_images)))  # rows past num_detections: zeros, never NaN
    past = np.arange(raw["detection_scores"].shape[1])[None, :] >= raw["num_detections"][:, None]
    assert not raw["detection_scores"][past].any() and not raw["detection_boxes"][past].any()
    found = tflite_detections(runner, test_images)
    assert found["boxes"].shape == reference["boxes"].shape
    assert (found["num_detections"] > 0).all()
    assert set(np.unique(found["classes"][found["scores"] > 0])) <= {1, 2, 3}
    assert ((found["boxes"] >= 0) & (found["boxes"] <= 1)).all()


def test_tflite_mAP_equals_tensorflow_mAP(ssd_run, float_tflite, tf):
    from quantize.detection import evaluate_detection_tflite
    from quantize.detection._evaluate import detection_batches, evaluate_detections

    source, _, records = ssd_run
    metrics = evaluate_detection_tflite(float_tflite, records["test"], source.label_map)
    data = detection_batches(records["test"], source.label_map, source.image_size)
    expected = evaluate_detections(lambda images: {k: np.asarray(v) for k, v in
                                                   source.finetune_task.detect(images).items()}, data)
    assert metrics["mAP@0.5"] == pytest.approx(expected["mAP@0.5"], abs=1e-6)
    assert metrics["mAP"] == pytest.approx(expected["mAP"], abs=1e-6)
    assert {"mAP", "mAP@0.5", "mAP@0.75", "AP@0.5/circle"} <= set(metrics)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter announces its deprecation
        fallback = evaluate_detection_tflite(float_tflite, records["test"], source.label_map, backend="tf.lite")
    assert fallback["mAP@0.5"] == pytest.approx(metrics["mAP@0.5"], abs=1e-6)  # tf.lite.Interpreter: same op


def test_quantize_task_protocol(ssd_run, float_tflite):
    from quantize._interpreter import Runner
    from quantize._task import QuantizeTask, check_task, make_task

    source, _, _ = ssd_run
    task = make_task("detection", source)
    check_task(task)
    assert isinstance(task, QuantizeTask) and task.metric == "mAP@0.5" and task.image_size == (64, 64)
    metrics = task.evaluate_variant(Runner(float_tflite))  # a plain runner: outputs are named from the signature
    assert 0.0 <= metrics["mAP@0.5"] <= 1.0 and metrics["examples"] == 8
    engine = task.engine_task(task.float_model())
    batch = next(iter(task.train_data().stream(0, 0)))
    losses = engine.loss(batch, engine.forward(batch["image"], training=False), training=False)
    assert np.isfinite(float(losses["total"])) and float(losses["regularization"]) > 0
    images = list(task.representative_images(3))
    assert len(images) == 3 and images[0].shape == (1, 64, 64, 3)


# ----------------------------------------------------------------- bad input
def test_saved_model_without_serving_default_is_named(tmp_path, tf):
    from quantize._errors import QuantizeError
    from quantize.detection import load_detection_saved_model

    module = tf.Module()
    module.f = tf.function(lambda x: x * 2.0, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "other"), signatures={"predict": module.f})
    with pytest.raises(QuantizeError, match=r"other: the SavedModel has no 'serving_default' signature "
                                            r"\(signatures: predict\)"):
        load_detection_saved_model(tmp_path / "other")
    with pytest.raises(QuantizeError, match="not a SavedModel directory"):
        load_detection_saved_model(tmp_path)


def test_tflite_that_does_not_load_is_named(tmp_path):
    from quantize._errors import QuantizeError
    from quantize.detection import evaluate_detection_tflite

    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40)
    with pytest.raises(QuantizeError, match=r"broken\.tflite: not a loadable \.tflite model"):
        evaluate_detection_tflite(bad, tmp_path / "unused.record", "unused.pbtxt")
    with pytest.raises(QuantizeError, match=r"missing\.tflite: no such \.tflite file"):
        evaluate_detection_tflite(tmp_path / "missing.tflite", tmp_path / "unused.record", "unused.pbtxt")


def test_tflite_that_is_not_a_detector_is_named(tmp_path, tf):
    from quantize._errors import QuantizeError
    from quantize.detection import open_detection_tflite

    module = tf.Module()
    module.f = tf.function(lambda x: {"probabilities": tf.nn.softmax(x)},
                           input_signature=[tf.TensorSpec([1, 3], tf.float32)])
    data = tf.lite.TFLiteConverter.from_concrete_functions([module.f.get_concrete_function()], module).convert()
    (tmp_path / "classifier.tflite").write_bytes(data)
    with pytest.raises(QuantizeError, match=r"classifier\.tflite: not a detection model: expected outputs "
                                            r"detection_boxes"):
        open_detection_tflite(tmp_path / "classifier.tflite")


# ----------------------------------------------------------------- pruning and QAT on the SSD (slow)
@pytest.mark.slow
def test_pruned_and_qat_ssd_export_and_evaluate(ssd_run, tmp_path):
    from quantize._export import export
    from quantize._prune import PruneConfig, prune
    from quantize._qat import qat
    from quantize.detection import evaluate_detection_tflite, make

    source, _, records = ssd_run
    task = make(source)
    pruned = prune(task, tmp_path / "prune", steps=4, config=PruneConfig(), learning_rate=1e-4)
    assert pruned.overall_sparsity > 0.3
    quantized = qat(task, tmp_path / "qat", steps=2)
    result = export(task, tmp_path / "export", variants=("float32", "pruned", "qat_int8"), pruned=pruned,
                    qat=quantized, representative_examples=8, saved_model=False)
    for name in ("float32", "pruned", "qat_int8"):
        metrics = evaluate_detection_tflite(tmp_path / "export" / result.variants[name].file, records["test"],
                                            source.label_map)
        assert 0.0 <= metrics["mAP@0.5"] <= 1.0, name


def test_missing_evaluation_data_is_named(float_tflite, ssd_run, tmp_path):
    from quantize._errors import QuantizeError
    from quantize.detection import evaluate_detection_tflite

    source, _, records = ssd_run
    with pytest.raises(QuantizeError, match=r"evaluation data: .*nothere\.record"):
        evaluate_detection_tflite(float_tflite, tmp_path / "nothere.record", source.label_map)
    with pytest.raises(QuantizeError, match=r"evaluation data: .*nomap\.pbtxt"):
        evaluate_detection_tflite(float_tflite, records["test"], tmp_path / "nomap.pbtxt")


@pytest.mark.slow
def test_regular_nms_tflite_returns_the_saved_model_detections(ssd_run, test_images, reference):
    """The op's own per-class NMS reproduces TensorFlow's post-processing with 1 thread (tensorflow#56058)."""
    from quantize.detection import export_detection_tflite, open_detection_tflite, tflite_detections

    source, tmp, _ = ssd_run
    path = export_detection_tflite(source.finetune_task, tmp / "ssd_regular.tflite", nms="regular")
    assert_same_detections(tflite_detections(open_detection_tflite(path), test_images), reference, top=100)
