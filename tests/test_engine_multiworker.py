"""A two-worker MultiWorkerMirroredStrategy job as two local processes on 127.0.0.1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from finetune.engine._multiworker import free_ports, run_local, tf_config

REPO = Path(__file__).resolve().parent.parent


def test_tf_config_uses_loopback_and_distinct_ports():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    config = json.loads(tf_config(ports, 1))
    assert config == {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": 1}}


def test_two_workers_train_to_the_same_weights(tmp_path):
    command = [sys.executable, "-m", "finetune.engine._testing", str(tmp_path), "6"]
    results = run_local(command, workers=2, timeout=180, cwd=REPO, env={"PYTHONPATH": str(REPO)})
    for r in results:
        assert r.returncode == 0, f"worker {r.index} failed:\n{r.stderr[-3000:]}"
    reports = [json.loads((tmp_path / f"worker-{i}.json").read_text()) for i in range(2)]
    assert [(r["strategy"], r["replicas"], r["steps"]) for r in reports] == [("MultiWorkerMirroredStrategy", 2, 6)] * 2
    assert reports[0]["loss_history"] == reports[1]["loss_history"]
    first, second = (np.load(tmp_path / f"worker-{i}.npz") for i in range(2))
    assert sorted(first.files) == sorted(second.files)
    for name in first.files:
        assert first[name].tobytes() == second[name].tobytes(), name
    # the chief alone writes checkpoints; the other worker's scratch copies are gone
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("*.index")) == ["ckpt-3.index", "ckpt-6.index"]

    # each worker took half of every global batch: together they computed what one process computes
    from finetune.engine import train
    from finetune.engine._testing import TinyClassifier, epoch_datasets, synthetic

    tasks = []
    images, labels = synthetic(64)
    alone = train(lambda: tasks.append(TinyClassifier(batchnorm=False)) or tasks[-1],
                  epoch_datasets(images, labels, batch_size=8), steps=6, checkpoint_dir=tmp_path / "alone",
                  schedule=0.05, log_every=0, checkpoint_every=0)
    np.testing.assert_allclose(reports[0]["loss_history"]["total"], alone.loss_history["total"], rtol=1e-5)
    for variable in tasks[0].model.variables:
        np.testing.assert_allclose(first[variable.name], variable.numpy(), rtol=1e-4, atol=1e-6)


MIRRORED = """
import json, sys
import numpy as np
from migrate._tf import tensorflow
tf = tensorflow()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from finetune.engine import train
from finetune.engine._strategy import strategy_name
from finetune.engine._testing import TinyClassifier, epoch_datasets, synthetic
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
images, labels = synthetic(64)
tasks = []
report = train(lambda: tasks.append(TinyClassifier(batchnorm=False)) or tasks[-1],
               epoch_datasets(images, labels, batch_size=8), steps=6, checkpoint_dir=sys.argv[1], strategy=strategy,
               schedule=0.05, log_every=0, checkpoint_every=0)
np.savez(sys.argv[1] + "/weights.npz", **{v.name: v.numpy() for v in tasks[0].model.variables})
print(json.dumps({"strategy": strategy_name(strategy), "replicas": strategy.num_replicas_in_sync,
                  "loss": report.loss_history["total"]}))
"""


def test_mirrored_strategy_over_two_devices_computes_what_one_device_does(tmp_path):
    """MirroredStrategy, the several-GPU path, on two logical CPU devices (no accelerator here): each replica
    takes half of every batch and the result equals one device's."""
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path / "mirrored")], cwd=REPO, text=True,
                          capture_output=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    mirrored = json.loads(done.stdout.strip().splitlines()[-1])
    assert (mirrored["strategy"], mirrored["replicas"]) == ("MirroredStrategy", 2)

    from finetune.engine import train
    from finetune.engine._testing import TinyClassifier, epoch_datasets, synthetic

    tasks = []
    images, labels = synthetic(64)
    alone = train(lambda: tasks.append(TinyClassifier(batchnorm=False)) or tasks[-1],
                  epoch_datasets(images, labels, batch_size=8), steps=6, checkpoint_dir=tmp_path / "alone",
                  schedule=0.05, log_every=0, checkpoint_every=0)
    np.testing.assert_allclose(mirrored["loss"], alone.loss_history["total"], rtol=1e-5)
    weights = np.load(tmp_path / "mirrored" / "weights.npz")
    for variable in tasks[0].model.variables:
        np.testing.assert_allclose(weights[variable.name], variable.numpy(), rtol=1e-4, atol=1e-6)
