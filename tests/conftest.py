"""Shared fixtures: the real fixture zoo (built once per session) and helpers."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Real facts the tests check against, committed with the project (each file starts with its provenance):
# zoo listings beside the fixture generators that imitate them, OD API pipeline.configs under tests/data.
LISTINGS = REPO / "fixtures" / "_data" / "zoo_listings"
DATA = REPO / "tests" / "data"
CONFIGS = DATA / "configs"


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory) -> Path:
    """Directory of the small fixture zoo, written by TensorFlow's own savers."""
    import fixtures

    out = Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures")
    fixtures.build(out)
    return out


@pytest.fixture(scope="session")
def zoo(zoo_dir) -> dict[str, Path]:
    """Fixture name -> the path a user would pass to ckpt-migrate."""
    import fixtures

    return {name: fixtures.entry_path(zoo_dir, name) for name in fixtures.NAMES}


@pytest.fixture(scope="session")
def full_zoo(zoo_dir) -> dict[str, Path]:
    """The full-size slim nets (hundreds of MB; built on first use, then cached)."""
    import fixtures

    fixtures.build(zoo_dir, names=list(fixtures.FULL_NAMES))
    return {name: fixtures.entry_path(zoo_dir, name) for name in fixtures.FULL_NAMES}


@pytest.fixture
def any_zoo(request, zoo) -> dict[str, Path]:
    """Small entries always; full-size ones only when the test asks for one (slow tests)."""
    import fixtures

    wanted = request.node.callspec.params.get("fixture") if hasattr(request.node, "callspec") else None
    if wanted in fixtures.FULL_NAMES:
        return {**zoo, **request.getfixturevalue("full_zoo")}
    return zoo


@pytest.fixture(scope="session")
def tf():
    from migrate._tf import tensorflow

    return tensorflow()


@pytest.fixture
def copy_entry(zoo, tmp_path):
    """Copy a fixture entry into tmp_path so a test may damage it."""

    def copy(name: str) -> Path:
        src = zoo[name]
        dst = tmp_path / src.parent.name if src.is_file() else tmp_path / src.name
        shutil.copytree(src.parent if src.is_file() else src, dst)
        return dst / src.name if src.is_file() else dst

    return copy


def reference_listing(name: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """A real zoo listing (fixtures/_data/zoo_listings): name -> (shape, dtype)."""
    out = {}
    for line in (LISTINGS / name).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        tensor, shape, dtype = line.split("\t")
        out[tensor] = (tuple(int(d) for d in shape.split(",")) if shape else (), dtype)
    return out
