"""Corpus: Keras HDF5, ``checkpoint`` state files, what a path can be, and convert's output directory."""
from __future__ import annotations

import os
import shutil

import h5py
import numpy as np

from ._case import case
from ._damage import flip, truncate

H5 = "ckpt-migrate inspect {in}/weights.h5"
H5_FILE = r"weights\.h5: "
BASE = "mobilenet_v1_small"


def _h5(box):
    return box.inp / "weights.h5"


# -- HDF5 ----------------------------------------------------------------------------------
@case("h5", "keras_h5", H5, H5_FILE + r"not a readable HDF5 weights file")
def h5_truncated(box):
    truncate(_h5(box), 0.5)


@case("h5", "keras_h5", H5, H5_FILE + r"binary data, not a checkpoint")
def h5_wrong_magic(box):
    flip(_h5(box), 1)


@case("h5", "keras_h5", H5, H5_FILE + r"not a readable HDF5 weights file")
def h5_flipped_superblock(box):
    flip(_h5(box), 40)  # the root group's object header address


@case("h5", "keras_h5", "ckpt-migrate inspect --stats {in}/weights.h5",
      H5_FILE + r"tensor huge:0 declares 4398046511104 bytes but the file stores 0")
def h5_huge_unallocated_dataset(box):
    """A chunked dataset of 2**40 floats with no chunk written: reading it would stream 4 TiB of fill value."""
    with h5py.File(_h5(box), "a") as f:
        f.create_dataset("huge:0", shape=(1 << 40,), dtype="f4", chunks=(1 << 16,))


@case("h5", "keras_h5", "ckpt-migrate convert {in}/weights.h5 --out {out}/conv",
      H5_FILE + r"tensor huge:0 declares 4398046511104 bytes but the file stores 0")
def h5_huge_dataset_convert(box):
    with h5py.File(_h5(box), "a") as f:
        f.create_dataset("huge:0", shape=(1 << 40,), dtype="f4", chunks=(1 << 16,))


@case("h5", "keras_h5", H5, H5_FILE + r"tensor opaque:0 has HDF5 type \|V\d+, which is not a tensor dtype")
def h5_opaque_dataset(box):
    with h5py.File(_h5(box), "a") as f:
        f.create_dataset("opaque:0", data=np.void(b"\x80\x04\x95junk"))


@case("h5", "keras_h5", H5, H5_FILE + r"dataset name 'bad\\xff\\xfename' is not valid UTF-8")
def h5_non_utf8_dataset_name(box):
    fid = h5py.h5f.open(os.fsencode(_h5(box)), h5py.h5f.ACC_RDWR)
    try:
        h5py.h5d.create(fid, b"bad\xff\xfename", h5py.h5t.NATIVE_FLOAT, h5py.h5s.create_simple((2,)))
    finally:
        fid.close()


@case("h5", "keras_h5", "ckpt-migrate convert {in}/weights.h5 --out {out}/conv",
      H5_FILE + r"tensor leak:0 keeps its bytes in another file \(external storage")
def h5_external_storage(box):
    """Raw data in a file beside (or anywhere): converting would copy that file into the output."""
    secret = box.root / "secret.bin"
    secret.write_bytes(b"top secret bytes")
    with h5py.File(_h5(box), "a") as f:
        f.create_dataset("leak:0", shape=(4,), dtype="f4", external=[(str(secret), 0, 16)])


@case("h5", "keras_h5", "ckpt-migrate inspect --stats {in}/weights.h5",
      H5_FILE + r"tensor mapped:0 keeps its bytes in another file \(external storage or a virtual dataset\)")
def h5_virtual_dataset(box):
    other = box.root / "elsewhere.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.arange(4, dtype="f4"))
    layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(4,))
    with h5py.File(_h5(box), "a") as f:
        f.create_virtual_dataset("mapped:0", layout)


@case("h5", "keras_h5", "ckpt-migrate inspect --stats {in}/weights.h5", None, exit=0, stdout=r"kernel:0")
def h5_links_out_of_file(box):
    """External and dangling soft links are not datasets of this file and are never followed."""
    other = box.root / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.arange(4.0))
    with h5py.File(_h5(box), "a") as f:
        f["escape"] = h5py.ExternalLink(str(other), "/x")
        f["dangling"] = h5py.SoftLink("/nowhere/at/all")


# -- checkpoint state files -----------------------------------------------------------------
STATE = r"checkpoint: "


def _state(box, text: str | bytes) -> None:
    path = box.inp / "checkpoint"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape"))


@case("state", BASE, "ckpt-migrate inspect {in}", STATE + r"names checkpoint 'model\.ckpt-999', which is not there")
def state_names_missing_prefix(box):
    _state(box, 'model_checkpoint_path: "model.ckpt-999"\n')


@case("state", BASE, "ckpt-migrate inspect {in}", STATE + r"checkpoint state file has no model_checkpoint_path line")
def state_without_path(box):
    _state(box, "garbage\n")


@case("state", BASE, "ckpt-migrate inspect {in}", STATE + r"checkpoint state file has no model_checkpoint_path line")
def state_binary_garbage(box):
    _state(box, os.urandom(512).replace(b'"', b"x"))


@case("state", BASE, "ckpt-migrate inspect {in}", STATE + r"names checkpoint '\.\./\.\./\.\./etc/nothing', which is not there")
def state_path_traversal(box):
    _state(box, 'model_checkpoint_path: "../../../etc/nothing"\n')


@case("state", BASE, "ckpt-migrate inspect {in}", None, exit=0, stdout=r"MobilenetV1")
def state_absolute_foreign_path(box):  # the zoo convention: another machine's absolute path, same file name here
    _state(box, 'model_checkpoint_path: "/home/someone/train/model.ckpt"\n')


@case("state", BASE, "ckpt-migrate inspect {in}", STATE + r"names checkpoint 'model\\x00\.ckpt', which is not there")
def state_nul_in_path(box):
    _state(box, 'model_checkpoint_path: "model\\000.ckpt"\n')


@case("state", BASE, "ckpt-migrate inspect {in}", STATE + r"model_checkpoint_path .* is not a valid escaped string")
def state_bad_escape(box):
    _state(box, 'model_checkpoint_path: "model\\x.ckpt"\n')


@case("state", BASE, "ckpt-migrate inspect {in}", None, exit=0, stdout=r"MobilenetV1")
def state_octal_escaped_utf8(box):
    """TensorFlow's text format writes a non-ASCII name as octal escapes of its UTF-8 bytes: m\\303\\266del."""
    for path in box.inp.glob("model.ckpt.*"):
        path.rename(box.inp / path.name.replace("model", "mödel"))
    _state(box, 'model_checkpoint_path: "m\\303\\266del.ckpt"\n')


@case("state", BASE, "ckpt-migrate inspect {in}", STATE + r"names checkpoint 'x{300}', which is not there")
def state_name_too_long(box):  # found by fuzzing: ENAMETOOLONG escaped pathlib's is_file()
    _state(box, 'model_checkpoint_path: "' + "x" * 300 + '"\n')


# -- what a path can be --------------------------------------------------------------------
@case("paths", BASE, "ckpt-migrate inspect {in}/nope", r"nope: no such file or directory")
def missing_path(box):
    pass


@case("paths", BASE, "ckpt-migrate inspect {in}/model.ckpt", r"model\.ckpt: file is empty")
def empty_file(box):
    (box.inp / "model.ckpt.index").unlink()
    (box.inp / "model.ckpt").write_bytes(b"")


@case("paths", BASE, "ckpt-migrate inspect {in}/notes.txt", r"notes\.txt: text, not a checkpoint")
def text_file(box):
    (box.inp / "notes.txt").write_text("model_checkpoint_path: nothing here\n")


@case("paths", BASE, "ckpt-migrate inspect {in}/junk.bin", r"junk\.bin: binary data, not a checkpoint")
def binary_junk(box):
    (box.inp / "junk.bin").write_bytes(os.urandom(4096))


@case("paths", BASE, "ckpt-migrate inspect {in}/empty", r"empty: directory holds no checkpoint")
def empty_directory(box):
    (box.inp / "empty").mkdir()


@case("paths", BASE, "ckpt-migrate inspect {in}", r"several checkpoints \(model\.ckpt\.index, other\.index\)")
def two_checkpoints(box):
    for suffix in ("index", "data-00000-of-00001"):
        shutil.copy(box.inp / f"model.ckpt.{suffix}", box.inp / f"other.{suffix}")
    (box.inp / "checkpoint").unlink()


@case("paths", BASE, "ckpt-migrate inspect {in}/pipe", r"pipe: not a regular file or directory")
def fifo_path(box):
    os.mkfifo(box.inp / "pipe")


@case("paths", BASE, "ckpt-migrate inspect {in}/loop.index", r"loop(\.index)?: ")
def symlink_loop(box):
    os.symlink("loop.index", box.inp / "loop.index")


@case("paths", "keras_h5", "ckpt-migrate inspect {in}/w\udcff\udcfe.h5", None, exit=0, stdout=r"w\\udcff\\udcfe\.h5|w\\xff\\xfe\.h5")
def non_utf8_file_name(box):
    os.rename(box.inp / "weights.h5", os.fsencode(box.inp) + b"/w\xff\xfe.h5")


@case("paths", "keras_h5", "ckpt-migrate convert {in}/w\udcff.h5 --out {out}/conv", None, exit=0, stdout=r"generic")
def non_utf8_file_name_convert(box):
    os.rename(box.inp / "weights.h5", os.fsencode(box.inp) + b"/w\xff.h5")


# -- convert's output ----------------------------------------------------------------------
@case("convert", BASE, "ckpt-migrate convert {in} --out {out}/conv", r"conv: output exists; pass --overwrite to replace it")
def convert_output_exists(box):
    (box.out / "conv").mkdir()
    (box.out / "conv" / "mine.txt").write_text("keep me")


@case("convert", BASE, "ckpt-migrate convert {in} --out {in} --overwrite", r"replacing it would delete the input")
def convert_output_is_input(box):
    pass


@case("convert", BASE, "ckpt-migrate convert {in} --out {out}/file/conv", r"out/file: (File exists|Not a directory)")
def convert_output_under_a_file(box):
    (box.out / "file").write_text("a file, not a directory")


@case("convert", BASE, "ckpt-migrate convert {in} --out {out}/conv --rules {in}/rules.toml --target auto",
      r"rules\.toml:\d+: invalid regular expression")
def convert_bad_rules(box):
    (box.inp / "rules.toml").write_text("[[rule]]\nsource = '^(unclosed'\ntarget = 'x'\n")


@case("convert", BASE, "ckpt-migrate convert {in} --out {out}/conv --copy", None, exit=0, stdout=r"generic")
def convert_copy_v2(box):  # --copy used to reference shards it had not copied: every V2 source failed
    pass
