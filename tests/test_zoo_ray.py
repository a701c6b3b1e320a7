"""``ckpt-migrate zoo --engine ray``: the local pool's worker as Ray tasks, on a real local Ray.

The same rows as the local engine, a worker killed mid-task retried by Ray, a rerun that reuses what is
done, and one line when Ray is not installed.
"""
from __future__ import annotations

import io
import json
import shutil
import sys
import types
from pathlib import Path

import pytest
from test_zoo import small_zoo  # noqa: F401 - the fixture: three generic conversions and one cut-short entry

from migrate import cli
from migrate._zoo import _ray as zoo_ray
from migrate._zoo import run_zoo
from migrate._zoo._threads import threads_per_worker

TIMING = ("seconds", "cpu_seconds", "finished")


@pytest.fixture
def ray_zoo(small_zoo, zoo) -> Path:  # noqa: F811 - small_zoo is the imported fixture
    """small_zoo plus one model checkpoint whose conversion runs parity (the narrow slim VGG)."""
    shutil.copy(zoo["vgg_16_v1"], small_zoo / "vgg_16.ckpt")
    return small_zoo


def _rows(out: Path) -> dict[str, dict]:
    """zoo-report.json's rows, timings aside."""
    rows = json.loads((out / "zoo-report.json").read_text())["rows"]
    return {r["source"]: {k: v for k, v in r.items() if k not in TIMING} for r in rows}


def test_ray_engine_matches_local_survives_a_killed_worker_and_resumes(ray_zoo, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    local = run_zoo(ray_zoo, tmp_path / "local", jobs=2, quiet=True, stream=io.StringIO())
    assert local.engine == "local"

    marker = tmp_path / "died"
    monkeypatch.setenv(zoo_ray.DIE_ONCE, str(marker))  # the first task's worker exits; Ray retries it
    out = tmp_path / "ray"
    report = run_zoo(ray_zoo, out, jobs=2, quiet=True, stream=io.StringIO(), engine="ray")
    assert not ray.is_initialized()  # the Ray it started is stopped
    assert (report.engine, report.jobs) == ("ray", 2)
    assert _rows(out) == _rows(tmp_path / "local")
    rows = {r.source: r for r in report.rows}
    assert {s: (r.status, r.this_run) for s, r in rows.items()} == {
        "weights.h5": ("converted", "converted"), "partitioned": ("converted", "converted"),
        "parts": ("converted", "converted"), "vgg_16.ckpt": ("converted", "converted"),
        "broken": ("failed", "failed")}
    assert rows["vgg_16.ckpt"].parity_verdict == "passed" and rows["vgg_16.ckpt"].cpu_seconds > 0.1
    died = Path(marker.read_text()).relative_to(ray_zoo).as_posix()  # the item whose worker was killed
    assert rows[died].status == "converted"
    assert json.loads((out / "zoo-report.json").read_text())["engine"] == "ray"

    again = run_zoo(ray_zoo, out, jobs=2, quiet=True, stream=io.StringIO(), engine="ray")
    assert {r.source: r.this_run for r in again.rows} == {
        "weights.h5": "reused", "partitioned": "reused", "parts": "reused", "vgg_16.ckpt": "reused",
        "broken": "failed"}  # unreadable: settled by the parent, without a task


def test_ray_without_ray_installed_is_one_line(small_zoo, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code = cli.main(["zoo", str(small_zoo), "--out", str(tmp_path / "out"), "--engine", "ray"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "ckpt-migrate: error: --engine ray needs `pip install ckptkit[ray]`\n"
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_address_without_ray_engine_is_refused(small_zoo, tmp_path, capsys):  # noqa: F811
    code = cli.main(["zoo", str(small_zoo), "--out", str(tmp_path / "out"), "--address", "10.0.0.1:6379"])
    assert code == 2 and "needs --engine ray" in capsys.readouterr().err


class _Ref:
    """An object reference: hashable, by identity."""

    def __init__(self, value):
        self.value = value


class _FakeRay:
    """What ray_tasks asks of Ray, recorded: init's arguments and each task's options."""

    def __init__(self):
        self.inits, self.tasks = [], []
        self.exceptions = types.SimpleNamespace(RayError=RuntimeError)

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.inits.append(kwargs)

    def shutdown(self):
        pass

    def nodes(self):
        return [{"Alive": True, "Resources": {"memory": 8 * 2**30}}]

    def remote(self, function):
        fake = self

        class Task:
            def options(self, **options):
                fake.tasks.append(options)
                return self

            def remote(self, *args):
                return _Ref(function(*args))

        return Task()

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref.value

    def cancel(self, ref, force):
        pass


def test_ray_tasks_are_sized_and_threads_follow_jobs(tmp_path, monkeypatch):
    """Without --address: a loopback Ray of --jobs CPUs, no dashboard; each task one CPU, memory from its
    bytes, retried on worker death, its thread pools sized cores / jobs as the local pool's."""
    from migrate._zoo._discover import ZooItem
    from migrate._zoo._run import Hints

    fake = _FakeRay()
    monkeypatch.setattr(zoo_ray, "require_ray", lambda: fake)
    monkeypatch.setattr(zoo_ray, "convert_item", lambda source, output, options: {"status": "converted"})
    for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "TF_NUM_INTEROP_THREADS", zoo_ray.DIE_ONCE):
        monkeypatch.delenv(name, raising=False)
    todo = [(ZooItem(tmp_path / "a", "a"), "a", "p"), (ZooItem(tmp_path / "b", "b"), "b", "q")]
    hints = Hints({"a": 10 * 2**20, "b": 100 * 2**30}, frozenset({"a"}))
    done = list(zoo_ray.ray_tasks(todo, tmp_path / "out", 1, hints))
    assert [entry[1] for entry, _ in done] == ["a", "b"]
    (init,) = fake.inits
    assert (init["num_cpus"], init["include_dashboard"], init["_node_ip_address"]) == (1, False, "127.0.0.1")
    env = init["runtime_env"]["env_vars"]
    assert env["TF_NUM_INTRAOP_THREADS"] == env["OMP_NUM_THREADS"] == str(threads_per_worker(1))
    assert fake.tasks[0] == {"num_cpus": 1, "memory": 512 * 2**20 + 4 * 10 * 2**20, "max_retries": 2,
                             "retry_exceptions": False}
    assert fake.tasks[1]["memory"] == 8 * 2**30  # never more than a node offers: it would wait forever
