"""``migrate.map_checkpoint`` (the library call behind ``ckpt-migrate map``) and the TF-free front doors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

import migrate
from migrate.formats import BundleWriter
from reports import MappingReport


def _bundle(directory):
    writer = BundleWriter(directory / "model.ckpt")
    writer.add_array("conv1/weights", np.ones((3, 3, 3, 4), np.float32))
    writer.add_array("conv1/weights/Momentum", np.ones((3, 3, 3, 4), np.float32))
    writer.add_array("global_step", np.array(7, np.int64))
    writer.close()
    return directory / "model.ckpt"


def test_generic_mapping_without_target(tmp_path):
    report = migrate.map_checkpoint(str(_bundle(tmp_path)))
    assert isinstance(report, MappingReport) and report.complete
    assert [m.source for m in report.mapped] == ["conv1/weights"]
    assert set(report.dropped) == {"conv1/weights/Momentum", "global_step"}


def test_options_change_what_is_kept(tmp_path):
    options = migrate.SelectOptions(keep_optimizer=True, keep_global_step=True)
    report = migrate.map_checkpoint(_bundle(tmp_path), options=options)
    assert len(report.mapped) == 3 and not report.dropped


def test_front_doors_do_not_import_tensorflow():
    code = ("import sys, migrate, migrate.tf, migrate.formats, migrate.staging, migrate.lazy, reports, finetune, "
            "quantize, fixtures; migrate.convert, migrate.map_checkpoint, migrate.zoo, finetune.load_trained; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
