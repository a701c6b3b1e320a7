"""Corpus: ``ckpt-quantize`` on broken models, exports, calibration data and output paths.

The base (``quantize_tiny``, built once per session by :func:`build_base` in a
subprocess) is a small tf_keras classifier saved with ``model.save`` as
``model.h5``, 24 training and 16 test records of the ``classify_shapes`` data
set, its label map, and ``export/``: what ``ckpt-quantize export --variants
float32`` wrote for that model (``float32.tflite``, ``saved_model/``,
``export.json``).  ``eval`` cases move ``export/`` into OUT first, since
``eval`` writes its report there; every case must fail before it writes.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from itertools import islice
from pathlib import Path

import numpy as np

from ._case import case
from ._damage import flip, truncate
from ._run import REPO, environment

BASE = "quantize_tiny"
SIZE = 32
DATA = ("--keras-model {in}/model.h5 --train-input-path {in}/train.record --test-input-path {in}/test.record "
        "--label-map-path {in}/label_map.pbtxt --batch-size 8 --eval-batch-size 8")
EVAL = "ckpt-quantize eval {out}/export " + DATA + " --runs 50 --threads 1"
EXPORT = "ckpt-quantize export " + DATA + " --out {out}/export"
CALIBRATE = EXPORT + " --variants float32 int8 --representative-data {in}/calib.npy"
TFLITE = r"export/float32\.tflite: "


# -- the base -----------------------------------------------------------------------------------
def build_base(out: Path, classify_shapes: Path) -> Path:
    """Build the base into ``out`` (a subprocess: the test process stays free of TensorFlow)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    result = subprocess.run([sys.executable, "-m", "tests.hostile._cases_quantize", str(staging), str(classify_shapes)],
                            cwd=REPO, env=environment(), capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"building the quantize base failed:\n{result.stderr[-4000:]}")
    staging.rename(out)
    return out


def _build(out: Path, shapes: Path) -> None:
    from finetune.data import iter_records, write_records
    from migrate._tf import tensorflow, tf_keras

    import quantize

    tensorflow()
    keras = tf_keras()
    for name, source, n in (("train.record", "train.record", 24), ("test.record", "test.record", 16)):
        write_records(out / name, [r.data for r in islice(iter_records(shapes / source), n)])
    shutil.copy(shapes / "label_map.pbtxt", out / "label_map.pbtxt")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), name="images")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="tiny").save(str(out / "model.h5"))
    task = quantize.load("classification", keras_model=out / "model.h5", train_input_path=out / "train.record",
                         test_input_path=out / "test.record", label_map_path=out / "label_map.pbtxt", batch_size=8,
                         eval_batch_size=8)
    quantize.export(task, out / "export", variants=["float32"])


def _to_out(box) -> Path:
    """Move the export into OUT (``eval`` writes its report into the export directory)."""
    shutil.move(box.inp / "export", box.out / "export")
    return box.out / "export"


def _manifest(box, edit) -> None:
    path = _to_out(box) / "export.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps(edit(data)))


# -- exported .tflite files and manifests (eval) ---------------------------------------------------
@case("quantize", BASE, EVAL, TFLITE + r"not a loadable \.tflite model")
def quantize_tflite_truncated(box):
    truncate(_to_out(box) / "float32.tflite", 0.5)


@case("quantize", BASE, EVAL, TFLITE + r"not a loadable \.tflite model")
def quantize_tflite_garbage(box):
    path = _to_out(box) / "float32.tflite"
    path.write_bytes(bytes(range(256)) * (path.stat().st_size // 256))


@case("quantize", BASE, EVAL, TFLITE + r"not a loadable \.tflite model")
def quantize_tflite_empty(box):
    (_to_out(box) / "float32.tflite").write_bytes(b"")


@case("quantize", BASE, EVAL, r"export/export\.json: unreadable export manifest")
def quantize_manifest_not_json(box):
    (_to_out(box) / "export.json").write_text('{"task": "classification", "variants": [')


@case("quantize", BASE, EVAL, r"export/export\.json: not an export manifest")
def quantize_manifest_wrong_shape(box):
    """A file name that is a number (``Path / int`` raised a TypeError that escaped: fixed)."""
    _manifest(box, lambda data: {**data, "variants": [{**data["variants"][0], "file": 5}]})


@case("quantize", BASE, EVAL, r"export/export\.json: not an export manifest")
def quantize_manifest_without_variants(box):
    """(a KeyError escaped: fixed)"""
    _manifest(box, lambda data: {k: v for k, v in data.items() if k != "variants"})


@case("quantize", BASE, EVAL, r"export/export\.json: variant file '\.\./\.\./in/model\.h5' is not a file name "
      r"inside the export directory")
def quantize_manifest_file_outside_export(box):
    """A manifest naming a ``../`` path: nothing outside the export directory is opened (it was: fixed)."""
    _manifest(box, lambda data: {**data, "variants": [{**data["variants"][0], "file": "../../in/model.h5"}]})


# -- models (export) -----------------------------------------------------------------------------
@case("quantize", BASE, EXPORT.replace("{in}/model.h5", "{in}/sm"), r"in/sm: the SavedModel does not load")
def quantize_saved_model_garbage_pb(box):
    """A SavedModel directory whose saved_model.pb is garbage (its variables are real)."""
    shutil.copytree(box.inp / "export" / "saved_model", box.inp / "sm")
    (box.inp / "sm" / "saved_model.pb").write_bytes(bytes(range(256)) * 8)


@case("quantize", BASE, EXPORT.replace("{in}/model.h5", "{in}/export"),
      r"in/export: a directory without saved_model\.pb")
def quantize_model_directory_without_saved_model(box):
    pass


@case("quantize", BASE, EXPORT, r"model\.h5: cannot load it as a tf_keras model")
def quantize_keras_h5_truncated(box):
    truncate(box.inp / "model.h5", 0.5)


# -- calibration data (export with int8) -----------------------------------------------------------
@case("quantize", BASE, CALIBRATE, r"calib\.npy: not a readable \.npy array of calibration images")
def quantize_representative_npy_garbage(box):
    (box.inp / "calib.npy").write_bytes(b"\x93NUMPY\x01\x00" + b"\xff" * 100)


@case("quantize", BASE, CALIBRATE, r"calib\.npy: not a readable \.npy array of calibration images \(.*Python objects")
def quantize_representative_npy_pickled(box):
    """An object array (pickled): refused without unpickling."""
    np.save(box.inp / "calib.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


@case("quantize", BASE, CALIBRATE, r"calib\.npy: not a readable \.npy array of calibration images")
def quantize_representative_npy_huge_shape(box):
    """A header claiming 10**12 images of 32x32x3 in a 1 KB file: numpy was asked for 10.9 PiB (fixed: the
    file is memory-mapped, so the claim is checked against its size)."""
    np.save(box.inp / "calib.npy", np.zeros((2, SIZE, SIZE, 3), np.float32))
    raw = (box.inp / "calib.npy").read_bytes()
    header_end = raw.index(b"\n") + 1
    header = raw[10:header_end].replace(b"(2, 32, 32, 3)", b"(1000000000000, 32, 32, 3)").rstrip(b"\n").rstrip(b" ")
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    (box.inp / "calib.npy").write_bytes(raw[:8] + len(header).to_bytes(2, "little") + header + raw[header_end:][:1024])


@case("quantize", BASE, CALIBRATE, r"calib\.npy: representative data holds dtype <U3; expected numeric")
def quantize_representative_npy_strings(box):
    """Strings where images belong (``np.asarray(..., float32)`` raised a ValueError that escaped: fixed)."""
    np.save(box.inp / "calib.npy", np.full((2, SIZE, SIZE, 3), "abc"))


@case("quantize", BASE, EXPORT + " --variants float32 int8",
      r"1 bad record\(s\) in train\.record: train\.record: the file holds no records")
def quantize_representative_records_empty(box):
    (box.inp / "train.record").write_bytes(b"")


@case("quantize", BASE, EXPORT + " --variants float32 int8",
      r"1 bad record\(s\) in train\.record: train\.record#0 \(offset 0\): corrupt record data")
def quantize_representative_records_damaged(box):
    flip(box.inp / "train.record", 40)


# -- outputs ---------------------------------------------------------------------------------------
@case("quantize", BASE, EXPORT + " --variants float32", r"export: output exists; pass --overwrite to replace it")
def quantize_output_is_a_file(box):
    (box.out / "export").write_text("a file")


@case("quantize", BASE, EXPORT.replace("{out}/export", "{out}/file/export") + " --variants float32",
      r"(Not a directory|File exists)")
def quantize_output_parent_is_a_file(box):
    (box.out / "file").write_text("a file")


if __name__ == "__main__":
    _build(Path(sys.argv[1]), Path(sys.argv[2]))
