"""``ckpt-quantize`` on a tiny classifier trained on the classify_shapes fixture (32x32 images).

One session-scoped model (a few seconds of training) feeds every test; the
library calls run in this process (TensorFlow imported once), the bad-input
cases run the real console script as a subprocess (exit 2, one line, nothing
half-written).  The MobileNet fine-tune -> quantize flow is in
``test_quantize_mobilenet.py`` (slow).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SIZE = 32


@pytest.fixture(scope="session")
def shapes() -> Path:
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    return fixtures.build(out, names=["classify_shapes"])["classify_shapes"]


def _head(source: Path, out: Path, n: int) -> Path:
    from finetune.data import iter_records, write_records

    write_records(out, [r.data for r in islice(iter_records(source), n)])
    return out


def build_tiny(shapes: Path, out: Path, *, custom_layer: bool = False, layer_norm: bool = False, epochs: int = 6):
    """A small conv net (conv/BN/ReLU, depthwise, pointwise, dense) trained with Keras fit on 32x32 shapes."""
    from finetune.data import classification_dataset
    from migrate._tf import tensorflow, tf_keras

    tf, keras = tensorflow(), tf_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), name="images")
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv1_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="conv_dw")(x)
    x = keras.layers.BatchNormalization(name="conv_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv_dw_relu")(x)
    x = keras.layers.Conv2D(32, 1, use_bias=False, name="conv_pw")(x)
    x = keras.layers.BatchNormalization(name="conv_pw_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv_pw_relu")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if custom_layer:
        x = _scale_layer()(name="scale")(x)
    if layer_norm:
        x = keras.layers.LayerNormalization(name="layer_norm")(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, logits, name="tiny")
    if epochs:
        data = classification_dataset(str(shapes / "train.record"), shapes / "label_map.pbtxt", batch_size=32,
                                      image_size=SIZE, shuffle_seed=0)
        batches = [(np.asarray(b["image"]), np.asarray(b["class_index"])) for b in data.dataset_for_epoch(0)]
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(images, labels, batch_size=32, epochs=epochs, verbose=0)
    model.save(str(out))
    return model


def _scale_layer():
    from migrate._tf import tf_keras

    keras = tf_keras()

    @keras.utils.register_keras_serializable("ckptkit_tests")
    class Scale(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    return Scale


@pytest.fixture(scope="session")
def tiny(shapes, tmp_path_factory) -> dict:
    """The tiny classifier saved as .h5, and small train/test splits (96 / 40 records)."""
    tmp = tmp_path_factory.mktemp("quantize")
    build_tiny(shapes, tmp / "tiny.h5")
    return {"model": tmp / "tiny.h5", "train": _head(shapes / "train.record", tmp / "train.record", 96),
            "test": _head(shapes / "test.record", tmp / "test.record", 40), "label_map": shapes / "label_map.pbtxt",
            "tmp": tmp}


def _load(tiny):
    import quantize

    return quantize.load("classification", keras_model=tiny["model"], train_input_path=tiny["train"],
                         test_input_path=tiny["test"], label_map_path=tiny["label_map"], batch_size=16,
                         eval_batch_size=20)


@pytest.fixture(scope="session")
def pipeline(tiny) -> dict:
    """Prune, QAT, prune+QAT through the engine, export all eight variants (int8 I/O), evaluate."""
    import quantize

    task = _load(tiny)
    work = tiny["tmp"] / "pipeline"
    pruned = quantize.prune(task, work / "prune", steps=8, config=quantize.PruneConfig(0.5, "constant"))
    qat = quantize.qat(task, work / "qat", steps=4)
    prune_qat = quantize.qat(task, work / "prune_qat", steps=4, model=pruned.model, preserve_sparsity=True)
    exported = quantize.export(task, work / "export", pruned=pruned, qat=qat, prune_qat=prune_qat, int8_io=True)
    report = quantize.evaluate(task, work / "export", runs=50, threads=(1, 2))
    return {"task": task, "pruned": pruned, "qat": qat, "prune_qat": prune_qat, "export": exported,
            "report": report, "dir": work / "export"}


# ----------------------------------------------------------------- without TensorFlow
def test_importing_quantize_and_its_cli_does_not_import_tensorflow():
    code = ("import sys, quantize, quantize.cli, quantize._task, quantize._interpreter, quantize._latency; "
            "print(sorted(m for m in ('tensorflow', 'tensorflow_model_optimization', 'tf_keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_int8_io_conversion_round_trips_within_one_step():
    from quantize._interpreter import dequantize_array, quantize_array

    detail = {"dtype": np.int8, "quantization": (2 / 255, -1)}
    values = np.linspace(-1, 1, 101, dtype=np.float32)
    q = quantize_array(values, detail)
    assert q.dtype == np.int8 and q.min() >= -128 and q.max() <= 127
    assert np.abs(dequantize_array(q, detail) - values).max() <= 2 / 255 / 2 + 1e-6
    assert quantize_array(np.array([1e6], np.float32), detail)[0] == 127  # saturates, does not wrap


def test_m_by_n_check_reads_input_channel_groups():
    from quantize._sparsity import is_m_by_n

    kernel = np.ones((3, 3, 8, 4), np.float32)
    kernel[:, :, 0::4] = kernel[:, :, 1::4] = 0  # two zeros in every group of 4 input channels
    assert is_m_by_n(kernel, (2, 4))
    kernel[0, 0, 0, 0] = 1.0
    assert not is_m_by_n(kernel, (2, 4))
    assert not is_m_by_n(np.zeros((3, 3, 3, 4)), (2, 4))  # 3 input channels: no groups of 4


# ----------------------------------------------------------------- the pipeline
def test_every_variant_is_exported_verified_and_described(pipeline):
    import quantize

    manifest = json.loads((pipeline["dir"] / "export.json").read_text())
    names = [v["name"] for v in manifest["variants"]]
    assert names == list(quantize.VARIANTS)
    for entry in manifest["variants"]:
        path = pipeline["dir"] / entry["file"]
        assert path.stat().st_size > 1000
        runner = quantize.Runner(path)
        assert runner.input_shape == (1, SIZE, SIZE, 3)
        full_integer = entry["recipe"] == "int8"
        assert (entry["input_type"], entry["output_type"]) == (("int8", "int8") if full_integer else ("float32",) * 2)
        assert np.dtype(runner.input_dtype).name == entry["input_type"]
    assert (pipeline["dir"] / "saved_model" / "saved_model.pb").is_file()
    assert not list(pipeline["dir"].parent.glob(".export.tmp-*"))


def test_saved_model_serves_probabilities(pipeline, tf):
    loaded = tf.saved_model.load(str(pipeline["dir"] / "saved_model"))
    serve = loaded.signatures["serving_default"]
    out = serve(images=tf.zeros([2, SIZE, SIZE, 3]))
    probabilities = out["probabilities"].numpy()
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


def test_report_numbers_follow_from_the_files_and_the_metrics(pipeline):
    from quantize._evaluate import gzipped_size

    report = pipeline["report"]
    ref = report.variant("float32")
    assert report.examples == 40 and report.interpreter in ("litert", "tf.lite")
    for v in report.variants:
        path = pipeline["dir"] / v.file
        assert v.size_bytes == path.stat().st_size and v.gzip_bytes == gzipped_size(path)
        assert v.size_ratio == pytest.approx(v.size_bytes / ref.size_bytes, abs=1e-4)
        assert v.gzip_ratio == pytest.approx(v.gzip_bytes / ref.gzip_bytes, abs=1e-4)
        assert v.drop_points == pytest.approx(100 * (ref.metrics["accuracy"] - v.metrics["accuracy"]), abs=1e-3)
        in_tf = report.tensorflow_metrics["accuracy"]
        assert v.drop_vs_tensorflow == pytest.approx(100 * (in_tf - v.metrics["accuracy"]), abs=1e-3)
        assert [s.threads for s in v.latency] == [1, 2] and all(s.runs == 50 for s in v.latency)
        assert all(0 < s.median_ms <= s.p90_ms for s in v.latency)
        assert v.latency_ratio["1"] == pytest.approx(v.latency[0].median_ms / ref.latency[0].median_ms, rel=1e-3)
    assert report.variant("int8").size_ratio < 0.6  # int8 weights: well under half of float32
    assert report.variant("float16").size_ratio < 0.8
    # the same float model scored by TensorFlow: the float32 .tflite computes what it computes
    assert report.tensorflow_metrics["accuracy"] == pytest.approx(ref.metrics["accuracy"], abs=0.026)


def test_sparsity_is_measured_from_the_weights(pipeline):
    pruned = pipeline["pruned"]
    rows = {r.layer: r for r in pruned.layers}
    assert rows["conv_dw"].target is None and rows["conv_dw"].sparsity < 0.05  # tfmot does not prune depthwise
    for name in ("conv1", "conv_pw", "conv2", "logits"):
        kernel = pruned.model.get_layer(name).kernel.numpy()
        assert rows[name].sparsity == pytest.approx((kernel == 0).mean(), abs=1e-6)
        assert rows[name].sparsity == pytest.approx(0.5, abs=0.03)
    report = pipeline["report"]
    assert report.variant("pruned").sparsity == pytest.approx(pruned.overall_sparsity)
    assert report.variant("float32").sparsity < 0.01
    assert report.variant("pruned").gzip_ratio < 0.9  # the zeros compress
    # sparsity-preserving QAT kept the zeros
    assert report.variant("prune_qat_int8").sparsity > 0.4


def test_report_round_trips_and_renders_with_a_chart(pipeline):
    from reports import load_report, render

    report = pipeline["report"]
    for suffix in (".json", ".md", ".html"):
        assert (pipeline["dir"] / f"quantize-report{suffix}").is_file()
    assert load_report(pipeline["dir"] / "quantize-report.json") == report
    markdown = render(report, "markdown")
    assert "| prune_qat_int8" in markdown and "Measured sparsity per layer: pruned" in markdown
    page = render(report, "html")
    assert page.count("<svg") == 2 and "gzipped size (KB)" in page and "int8" in page  # size and latency charts


def test_qat_lists_unsupported_layers_and_strict_refuses(tiny):
    import quantize
    from quantize._qat import annotate

    model = build_tiny(tiny["tmp"], tiny["tmp"] / "custom.h5", custom_layer=True, epochs=0)
    _, annotated, unsupported = annotate(model)
    assert dict(unsupported) == {"scale": "Scale: not in tfmot's default 8-bit quantize registry"}
    assert {"conv1", "conv1_bn", "conv_dw", "logits"} <= set(annotated)  # BN folds into the conv before it
    with pytest.raises(quantize.QuantizeError, match=r"1 layer\(s\) tfmot cannot quantize.*scale \(Scale"):
        annotate(model, strict=True)


def test_pruning_resumes_from_its_checkpoints(tiny):
    import quantize

    task = _load(tiny)
    work = tiny["tmp"] / "resume"
    first = quantize.prune(task, work, steps=2, config=quantize.PruneConfig(0.5, "constant"), checkpoint_every=1)
    second = quantize.prune(task, work, steps=4, config=quantize.PruneConfig(0.5, "constant"))
    assert first.train_report.steps == 2
    assert second.train_report.resumed_from and second.train_report.start_step == 2
    assert second.train_report.steps == 4


def test_two_four_structured_sparsity(tiny):
    import quantize

    task = _load(tiny)
    result = quantize.prune(task, tiny["tmp"] / "m_by_n", steps=3, config=quantize.PruneConfig(0.5, m_by_n=(2, 4)))
    rows = {r.layer: r for r in result.layers}
    assert dict(result.skipped)["conv1"] == "3 input channels do not divide into groups of 4"
    assert rows["conv_pw"].m_by_n is True and rows["conv2"].m_by_n is True
    assert rows["conv_pw"].sparsity == pytest.approx(0.5)


def test_representative_data_must_exist_and_fit(tiny, tmp_path):
    import quantize
    from quantize._convert import calibration

    task = _load(tiny)
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, SIZE, SIZE, 3), np.float32))
    with pytest.raises(quantize.QuantizeError, match="empty.npy: the representative data set is empty"):
        calibration(task, 10, empty)
    assert len(calibration(task, 5).images) == 5
    with pytest.raises(quantize.QuantizeError, match="at least 50"):
        quantize.evaluate(task, tmp_path, runs=10)  # before anything else: no manifest is read


# ----------------------------------------------------------------- bad input through the console script
def _cli(*argv, cwd=None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("ckpt-quantize")
    return subprocess.run([str(exe), *map(str, argv)], capture_output=True, text=True, cwd=cwd or REPO, timeout=300)


def _data_flags(tiny) -> list:
    return ["--train-input-path", tiny["train"], "--test-input-path", tiny["test"], "--label-map-path",
            tiny["label_map"], "--batch-size", 16, "--eval-batch-size", 20]


def _one_line_error(result, *fragments) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ckpt-quantize: error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in last, last
    return last


def test_cli_a_tflite_that_does_not_load(pipeline, tiny, tmp_path):
    import shutil

    broken = tmp_path / "export"
    shutil.copytree(pipeline["dir"], broken)
    for old in broken.glob("quantize-report.*"):
        old.unlink()
    (broken / "int8.tflite").write_bytes(b"TFL3 this is not a flatbuffer" * 10)
    result = _cli("eval", broken, "--keras-model", tiny["model"], *_data_flags(tiny))
    _one_line_error(result, "int8.tflite", "not a loadable .tflite model")
    assert not list(broken.glob("quantize-report.*")) and not list(broken.glob(".quantize-report*"))


def test_cli_saved_model_without_signature(tiny, tmp_path, tf):
    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, str(tmp_path / "nosig"))
    result = _cli("export", "--keras-model", tmp_path / "nosig", *_data_flags(tiny), "--out", tmp_path / "out")
    _one_line_error(result, str(tmp_path / "nosig"), "no 'serving_default' signature", "found: none")
    assert not (tmp_path / "out").exists()


def test_cli_representative_data_of_the_wrong_shape(tiny, tmp_path):
    np.save(tmp_path / "calib.npy", np.zeros((4, 64, 64, 3), np.float32))
    result = _cli("export", "--keras-model", tiny["model"], *_data_flags(tiny), "--variants", "float32", "int8",
                  "--representative-data", tmp_path / "calib.npy", "--out", tmp_path / "out")
    _one_line_error(result, "calib.npy", "shape (1, 64, 64, 3)", "(1, 32, 32, 3)")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_cli_layers_tfmot_cannot_handle(tiny, tmp_path):
    build_tiny(tiny["tmp"], tmp_path / "norm.h5", layer_norm=True, epochs=0)
    result = _cli("qat", "--keras-model", tmp_path / "norm.h5", *_data_flags(tiny), "--qat-steps", 1, "--strict",
                  "--out", tmp_path / "qat")
    _one_line_error(result, "layer_norm (LayerNormalization: not in tfmot's default 8-bit quantize registry)")
    assert not (tmp_path / "qat" / "model").exists()
