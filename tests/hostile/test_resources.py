"""A full disk and a read-only output location: one clear line, exit 2, no partial output, inputs untouched.

The output directory is a real 1 MiB tmpfs (the source needs ~1.9 MB) or a read-only
tmpfs / bind mount: root ignores file modes, so chmod would prove nothing.  Where
mounting is not permitted (no CAP_SYS_ADMIN), these tests skip and say so.
"""
from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager

import pytest

from ._run import Sandbox, run, snapshot

SOURCE = "mobilenet_v1_small"
FULL = r"^ckpt-migrate: error: \S+/out/conv: no space left on device while writing the output; free space"
READ_ONLY = r"^ckpt-migrate: error: \S+/out/conv: cannot write there \(Read-only file system\); choose a writable"


@contextmanager
def mounted(target, *options: str, source: str = "tmpfs"):
    kind = [] if "bind" in options else ["-t", "tmpfs"]
    done = subprocess.run(["mount", *kind, "-o", ",".join(options), source, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount {source} here ({done.stderr.strip() or done.returncode}); run as root with CAP_SYS_ADMIN")
    try:
        if "bind" in options and "ro" in options:  # a bind mount becomes read-only only on remount
            subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True, capture_output=True)
        yield target
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


def _box(zoo, tmp_path) -> Sandbox:
    box = Sandbox(tmp_path / "box").create()
    shutil.copytree(zoo[SOURCE], box.inp, dirs_exist_ok=True)
    return box


def _assert_refused(result, pattern: str) -> None:
    import re  # noqa: PLC0415

    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr_lines) == 1 and re.search(pattern, result.stderr_lines[0]), result.stderr


@pytest.mark.parametrize("flags", [[], ["--copy"], ["--target", "auto"], ["--target", "auto", "--layout", "h5"]],
                         ids=["generic-link", "generic-copy", "auto", "auto-h5"])
def test_disk_full(zoo, tmp_path, flags):
    box = _box(zoo, tmp_path)
    source = snapshot(box.inp)
    with mounted(box.out, "size=1m"):
        result = run(["ckpt-migrate", "convert", str(box.inp), "--out", str(box.out / "conv"), *flags], box)
        _assert_refused(result, FULL)
        assert list(box.out.iterdir()) == [], "a failed conversion left files on the full disk"
    assert snapshot(box.inp) == source


@pytest.mark.parametrize("flags", [[], ["--target", "auto"]], ids=["generic", "auto"])
def test_read_only_output(zoo, tmp_path, flags):
    box = _box(zoo, tmp_path)
    source = snapshot(box.inp)
    with mounted(box.out, "ro", "size=1m"):
        _assert_refused(run(["ckpt-migrate", "convert", str(box.inp), "--out", str(box.out / "conv"), *flags], box), READ_ONLY)
        assert list(box.out.iterdir()) == []
    assert snapshot(box.inp) == source


def test_read_only_zoo_output(zoo, tmp_path):
    box = _box(zoo, tmp_path)
    with mounted(box.out, "ro", "size=1m"):
        _assert_refused(run(["ckpt-migrate", "zoo", str(box.inp), "--out", str(box.out)], box),
                        r"^ckpt-migrate: error: \S+/out/\.ckptkit-zoo\.lock: Read-only file system$")
        _assert_refused(run(["ckpt-migrate", "zoo", str(box.inp), "--out", str(box.out / "zoo")], box),
                        r"^ckpt-migrate: error: \S+/out/zoo: Read-only file system$")


def test_read_only_keeps_the_previous_output(zoo, tmp_path):
    """--overwrite onto a finished output that has become read-only: refused, and the old output stays whole."""
    box = _box(zoo, tmp_path)
    assert run(["ckpt-migrate", "convert", str(box.inp), "--out", str(box.out / "conv")], box).returncode == 0
    before = snapshot(box.out)
    with mounted(box.out, "bind", "ro", source=str(box.out)):
        result = run(["ckpt-migrate", "convert", str(box.inp), "--out", str(box.out / "conv"), "--overwrite"], box)
        _assert_refused(result, READ_ONLY)
    assert snapshot(box.out) == before
