"""Files that carry code: ckptkit reads them as data and never runs what they hold.

Each planted payload writes a sentinel file when it is deserialised; a positive
control deserialises it the usual way (tf_keras' load_model, np.load, pickle)
to prove the payload is live, then the real command lines must leave no sentinel.
"""
from __future__ import annotations

import ast
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np

from ._run import REPO, Sandbox, run

PACKAGES = ("migrate", "reports", "finetune", "quantize", "fixtures", "bench")
CODE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "dill", "cloudpickle", "shelve", "joblib"}
CODE_CALLS = {"eval", "exec", "__import__", "import_module"}  # the last two only when they import one of the above
CODE_LOADERS = {("yaml", "load"), ("yaml", "unsafe_load"), ("torch", "load")}


class Planted:
    """Unpickling this opens (creates) the sentinel file: the smallest honest side effect."""

    def __init__(self, sentinel: Path):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return open, (self.sentinel, "a")


def _lambda_writing(sentinel: Path):
    def planted(x, path=str(sentinel)):  # the default is marshalled with the code into model_config
        with open(path, "a") as f:
            f.write("the Lambda layer's code ran\n")
        return x

    return planted


def _audit_and_convert(box: Sandbox, path: Path, sentinel: Path) -> None:
    for command in (["inspect", "--stats", "--verify", str(path)], ["convert", str(path), "--out", str(box.out / "conv")],
                    ["zoo", str(path.parent), "--out", str(box.out / "zoo"), "--jobs", "1"]):
        result = run(["ckpt-migrate", *command], box, timeout=120)
        assert result.returncode == 0, (command, result.stderr)
        assert not sentinel.exists(), f"ckpt-migrate {command[0]} executed code from {path.name}"


def test_lambda_layer_code_in_a_full_model_is_never_run(tf, tmp_path):
    from migrate._tf import tf_keras  # noqa: PLC0415

    keras = tf_keras()
    box = Sandbox(tmp_path / "box").create()
    sentinel, model_path = tmp_path / "LAMBDA-RAN", box.inp / "model.h5"
    inputs = keras.Input((4,), name="image")
    hidden = keras.layers.Dense(3, name="dense")(inputs)
    model = keras.Model(inputs, keras.layers.Lambda(_lambda_writing(sentinel), name="planted")(hidden))
    model.save(model_path)  # HDF5 full model: the Lambda's bytecode is marshalled into model_config
    assert "planted" in h5py.File(model_path, "r").attrs["model_config"]
    sentinel.unlink()  # building the model called it once

    keras.models.load_model(model_path)  # the positive control: Keras runs the planted code on load
    assert sentinel.exists()
    sentinel.unlink()

    _audit_and_convert(box, model_path, sentinel)


def test_pickles_in_npy_and_hdf5_are_never_loaded(zoo, tmp_path):
    box = Sandbox(tmp_path / "box").create()
    sentinel = tmp_path / "PICKLE-RAN"
    payload = pickle.dumps(Planted(sentinel))
    pickle.loads(payload)  # the positive control
    assert sentinel.exists()
    sentinel.unlink()

    npy = box.inp / "weights.npy"
    np.save(npy, np.array([Planted(sentinel)], dtype=object), allow_pickle=True)
    np.load(npy, allow_pickle=True)  # the positive control for .npy
    assert sentinel.exists()
    sentinel.unlink()
    result = run(["ckpt-migrate", "inspect", str(npy)], box)
    assert result.returncode == 2 and "not a checkpoint" in result.stderr, result.stderr
    assert not sentinel.exists()
    npy.unlink()

    h5 = box.inp / "weights.h5"
    shutil.copy(zoo["keras_h5"], h5)
    with h5py.File(h5, "a") as f:
        f.attrs["planted"] = np.void(payload)  # an attribute holding a pickle
        f.attrs["model_config"] = '{"class_name": "Lambda", "config": {"function": "' + payload.hex() + '"}}'
        f.create_dataset("payload/payload:0", data=np.frombuffer(payload, dtype=np.uint8))  # a "tensor" that is one
    _audit_and_convert(box, h5, sentinel)


def test_no_code_deserialisation_outside_tests():
    """pickle, marshal, allow_pickle=True, eval, exec (and their cousins) have no place in code that reads files.

    Read with ``ast``, so a docstring that says "eval (validation)" is prose, not a call.
    """
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            found += [f"{path.relative_to(REPO)}:{line}: {what}" for line, what in _code_loading(path)]
    assert found == [], "code deserialisation outside tests:\n" + "\n".join(found)


def _code_loading(path: Path):
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except SyntaxError as e:  # unreadable code cannot be vouched for
        yield e.lineno or 0, f"does not parse ({e.msg}); cannot be checked"
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in CODE_MODULES)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in CODE_MODULES:
            yield node.lineno, f"from {node.module} import ..."
        elif isinstance(node, ast.Call):
            yield from _suspicious_call(node)


def _suspicious_call(node: ast.Call):
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
    if name in ("eval", "exec") and isinstance(func, ast.Name):
        yield node.lineno, f"{name}(...)"
    elif name in CODE_CALLS and node.args and isinstance(node.args[0], ast.Constant) \
            and str(node.args[0].value).split(".")[0] in CODE_MODULES:
        yield node.lineno, f"{name}({node.args[0].value!r})"
    elif (owner, name) in CODE_LOADERS or owner in CODE_MODULES:
        yield node.lineno, f"{owner}.{name}(...)"
    for keyword in node.keywords:
        if keyword.arg == "allow_pickle" and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
            yield node.lineno, "allow_pickle=True"
