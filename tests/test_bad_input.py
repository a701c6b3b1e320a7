"""Broken inputs: one line naming the file and the problem, exit 2, no traceback,
no hang and no memory blow-up (each case runs under a 2 GB address-space limit)."""
from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from migrate._formats._bundle import BundleReader
from migrate._formats._write import write_index

MEMORY_LIMIT = 2 << 30
BASE = "mobilenet_v1_small"


def _rewrite_index(prefix: Path, change) -> None:
    """Rewrite an index after ``change(entries)`` edits its entries."""
    with BundleReader(prefix) as reader:
        entries, pieces, shards = dict(reader._entries), dict(reader._pieces), reader.num_shards
    change(entries)
    write_index(Path(f"{prefix}.index"), entries, shards, pieces)


def _first_weight(entries) -> str:
    return next(n for n in sorted(entries) if n.endswith("/weights"))


def _flip(path: Path, at: float) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def truncated_index(d):
    _truncate(d / "model.ckpt.index", 0.5)
    return d, [], r"model\.ckpt\.index: .*(magic|truncated)"


def index_shorter_than_footer(d):
    (d / "model.ckpt.index").write_bytes(b"\x00" * 20)
    return d, [], r"model\.ckpt\.index: .*shorter than the 48-byte table footer"


def flipped_index_byte(d):
    _flip(d / "model.ckpt.index", 0.3)
    return d, [], r"model\.ckpt\.index: .*crc32c"


def truncated_data(d):
    _truncate(d / "model.ckpt.data-00000-of-00001", 0.5)
    return d, [], r"data-00000-of-00001: tensor .* needs bytes up to \d+ but the file has \d+"


def missing_data(d):
    (d / "model.ckpt.data-00000-of-00001").unlink()
    return d, [], r"data-00000-of-00001: data shard is missing"


def flipped_data_verify(d):
    _flip(d / "model.ckpt.data-00000-of-00001", 0.5)
    return d, ["--verify"], r"data-00000-of-00001: tensor .* fails its crc32c check"


def flipped_data_stats(d):
    _flip(d / "model.ckpt.data-00000-of-00001", 0.5)
    return d, ["--stats"], r"data-00000-of-00001: tensor .* fails its crc32c check"


def empty_file(d):
    (d / "model.ckpt.index").unlink()
    (d / "model.ckpt").write_bytes(b"")
    return d / "model.ckpt", [], r"model\.ckpt: file is empty"


def text_file(d):
    (d / "notes.txt").write_text("model_checkpoint_path: nothing here\n")
    return d / "notes.txt", [], r"notes\.txt: text, not a checkpoint"


def binary_junk(d):
    (d / "junk.bin").write_bytes(os.urandom(4096))
    return d / "junk.bin", [], r"junk\.bin: binary data, not a checkpoint"


def empty_directory(d):
    empty = d / "empty"
    empty.mkdir()
    return empty, [], r"empty: directory holds no checkpoint"


def two_checkpoints(d):
    for suffix in ("index", "data-00000-of-00001"):
        (d / f"other.{suffix}").write_bytes((d / f"model.ckpt.{suffix}").read_bytes())
    (d / "checkpoint").unlink()
    return d, [], r"several checkpoints \(model\.ckpt\.index, other\.index\)"


def state_names_missing_prefix(d):
    (d / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-999"\n')
    return d, [], r"checkpoint: names checkpoint 'model\.ckpt-999', which is not there"


def state_without_path(d):
    (d / "checkpoint").write_text("garbage\n")
    return d, [], r"checkpoint: checkpoint state file has no model_checkpoint_path line"


def missing_path(d):
    return d / "nope", [], r"nope: no such file or directory"


def size_does_not_match_shape(d):
    def change(entries):
        name = _first_weight(entries)
        e = entries[name]
        entries[name] = dataclasses.replace(e, shape=(e.shape[0] + 1,) + e.shape[1:])
    _rewrite_index(d / "model.ckpt", change)
    return d, [], r"model\.ckpt\.index: tensor \S+ declares shape \[.*\] \(\d+ bytes of float32\) but \d+ stored bytes"


def absurd_shape(d):
    def change(entries):
        name = _first_weight(entries)
        entries[name] = dataclasses.replace(entries[name], shape=(1 << 31, 1 << 31, 1 << 20))
    _rewrite_index(d / "model.ckpt", change)
    return d, ["--stats"], r"declares shape \[2147483648, 2147483648, 1048576\] \(\d+ bytes of float32\) but \d+ stored bytes"


def absurd_size(d):
    def change(entries):
        name = _first_weight(entries)
        entries[name] = dataclasses.replace(entries[name], shape=(1 << 46,), size=1 << 48)
    _rewrite_index(d / "model.ckpt", change)
    return d, ["--stats"], r"needs bytes up to \d{15,} but the file has \d+"


def negative_dimension(d):
    def change(entries):
        name = _first_weight(entries)
        entries[name] = dataclasses.replace(entries[name], shape=(-1, 3))
    _rewrite_index(d / "model.ckpt", change)
    return d, [], r"negative dimension"


def unknown_dtype(d):
    def change(entries):
        name = _first_weight(entries)
        entries[name] = dataclasses.replace(entries[name], dtype="resource")
    _rewrite_index(d / "model.ckpt", change)
    return d, ["--stats"], None  # a resource tensor holds no values: reported, not read


def non_utf8_name(d):
    def change(entries):
        name = _first_weight(entries)
        entries["bad\udcff\udcfename"] = entries.pop(name)
    _rewrite_index(d / "model.ckpt", change)
    return d, [], r"tensor name 'bad\\xff\\xfename' is not valid UTF-8"


def no_header(d):
    from migrate._formats._bundle import parse_entry  # noqa: F401 - documents the format being broken
    from migrate._formats._write import TableWriter, encode_entry

    with BundleReader(d / "model.ckpt") as reader:
        entries = dict(reader._entries)
    with TableWriter(d / "model.ckpt.index") as table:
        for name in sorted(entries):
            table.add(name.encode(), encode_entry(entries[name]))
    return d, [], r"no bundle header"


def truncated_v1(d):
    path = d / "vgg_16.ckpt"
    _truncate(path, 0.6)
    return path, [], r"vgg_16\.ckpt: "


def truncated_h5(d):
    path = d / "weights.h5"
    _truncate(path, 0.5)
    return path, [], r"weights\.h5: not a readable HDF5 weights file"


CASES = {
    f.__name__: (f, base)
    for base, funcs in {
        BASE: [truncated_index, index_shorter_than_footer, flipped_index_byte, truncated_data, missing_data,
               flipped_data_verify, flipped_data_stats, empty_file, text_file, binary_junk, empty_directory,
               two_checkpoints, state_names_missing_prefix, state_without_path, missing_path,
               size_does_not_match_shape, absurd_shape, absurd_size, negative_dimension, unknown_dtype,
               non_utf8_name, no_header],
        "vgg_16_v1": [truncated_v1],
        "keras_h5": [truncated_h5],
    }.items()
    for f in funcs
}


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(*args, timeout=60):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "migrate.cli", "inspect", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=_limit_memory, env=env)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, copy_entry):
    make, base = CASES[case]
    entry = copy_entry(base)
    path, flags, expected = make(entry if entry.is_dir() else entry.parent)
    result = run_cli(path, *flags)
    if expected is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("ckpt-migrate: error: ")
    import re

    assert re.search(expected, lines[0]), lines[0]


def test_debug_shows_traceback(copy_entry):
    d = copy_entry(BASE)
    (d / "model.ckpt.data-00000-of-00001").unlink()
    result = run_cli("--debug", d)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_inputs_are_never_modified(zoo):
    import hashlib

    def digest(path: Path):
        files = sorted(p for p in (path.rglob("*") if path.is_dir() else [path]) if p.is_file())
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    for name in (BASE, "vgg_16_v1", "keras_h5", "tf2_object"):
        before = digest(zoo[name])
        assert run_cli(zoo[name], "--stats", "--verify").returncode == 0
        assert digest(zoo[name]) == before
