"""Freezing: the OD API's update_trainable_variables / freeze_variables semantics, gradual unfreezing,
and frozen variables coming out of training bit-identical."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from finetune.engine import Callback, EngineConfigError, Stage, select_trainable, train
from finetune.engine._freeze import stage_at
from finetune.engine._testing import TinyClassifier, epoch_datasets, synthetic, weights_bytes


@dataclass
class Var:
    name: str


NAMES = ["conv1/kernel:0", "conv1_bn/gamma:0", "conv1_bn/beta:0", "conv2/kernel:0", "conv2_bn/gamma:0",
         "conv2_bn/beta:0", "head/kernel:0", "head/bias:0"]
VARS = [Var(n) for n in NAMES]


def names(variables):
    return [v.name.split(":")[0] for v in variables]


def test_no_patterns_train_everything():
    selection = select_trainable(VARS)
    assert names(selection.trainable) == names(VARS) and selection.frozen == ()


def test_update_trainable_first_then_freeze_removes():
    selection = select_trainable(VARS, update_trainable_variables=["conv2", "head"], freeze_variables=["_bn/"])
    assert names(selection.trainable) == ["conv2/kernel", "head/kernel", "head/bias"]
    assert "conv1/kernel" in names(selection.frozen) and "conv2_bn/gamma" in names(selection.frozen)


def test_patterns_are_searched_not_anchored_and_see_no_suffix():
    # re.search like TF-slim's filter_variables: 'bn' matches inside names; '$' anchors at the name without ':0'
    selection = select_trainable(VARS, freeze_variables=["bn", "kernel$"])
    assert names(selection.trainable) == ["head/bias"]


def test_unmatched_patterns_are_reported():
    selection = select_trainable(VARS, update_trainable_variables=["head"], freeze_variables=["FeatureExtractor/"])
    assert selection.unmatched_patterns == ("FeatureExtractor/",)


def test_invalid_regex_names_the_pattern():
    with pytest.raises(EngineConfigError, match=re.escape("'conv[' (")):
        select_trainable(VARS, freeze_variables=["conv["])


def test_stage_lookup():
    stages = (Stage(3, freeze="^conv"), Stage(2))
    assert [stage_at(stages, s) for s in (0, 2, 3, 4, 5, 100)] == [0, 0, 1, 1, 1, 1]
    assert stage_at((), 7) is None
    with pytest.raises(EngineConfigError, match="at least one step"):
        Stage(0)


# -- through the training loop ---------------------------------------------------------------------------

def _train(tmp_path, steps=6, callbacks=(), **options):
    images, labels = synthetic(64)
    tasks = []

    def factory():
        tasks.append(TinyClassifier())
        before.update(weights_bytes(tasks[-1].model))
        return tasks[-1]

    before: dict = {}
    report = train(factory, epoch_datasets(images, labels), steps=steps, checkpoint_dir=tmp_path, schedule=0.1,
                   log_every=0, checkpoint_every=0, weight_decay=1e-2, callbacks=callbacks, **options)
    return report, before, weights_bytes(tasks[0].model)


def test_frozen_variables_are_bit_identical_after_training(tmp_path):
    report, before, after = _train(tmp_path, freeze_variables=["^conv1"])
    frozen = [n for n in before if n.startswith("conv1")]
    # kernel, gamma, beta and -- the layer runs in inference mode -- the moving statistics too
    assert sorted(n.split(":")[0] for n in frozen) == ["conv1/kernel", "conv1_bn/beta", "conv1_bn/gamma",
                                                       "conv1_bn/moving_mean", "conv1_bn/moving_variance"]
    assert all(after[n] == before[n] for n in frozen)
    assert all(after[n] != before[n] for n in before if n.startswith(("conv2", "head")))
    assert report.warnings == ()


def test_update_trainable_variables_trains_only_matches(tmp_path):
    _, before, after = _train(tmp_path, update_trainable_variables=["^head/"])
    changed = sorted(n for n in before if after[n] != before[n])
    assert changed == ["head/bias:0", "head/kernel:0"]


def test_typo_in_a_freeze_pattern_is_a_warning(tmp_path):
    report, _, _ = _train(tmp_path, steps=1, freeze_variables=["^FeatureExtractor/"])
    assert report.warnings == ("freeze pattern '^FeatureExtractor/' matches no trainable variable",)


def test_freezing_everything_is_an_error(tmp_path):
    with pytest.raises(EngineConfigError, match="nothing left to train"):
        _train(tmp_path, steps=1, freeze_variables=["."])


class Snapshot(Callback):
    def __init__(self, at: int):
        self.at, self.taken = at, None

    def on_train_begin(self, run):
        self.model = run.task.model

    def on_step_end(self, step, logs):
        if step == self.at:
            self.taken = weights_bytes(self.model)


def test_gradual_unfreezing(tmp_path):
    snapshot = Snapshot(3)
    stages = (Stage(3, freeze="^conv"), Stage(3, lr_multiplier=0.5))
    report, before, after = _train(tmp_path, stages=stages, callbacks=[snapshot])
    backbone = [n for n in before if n.startswith("conv")]
    assert all(snapshot.taken[n] == before[n] for n in backbone)  # stage 0: the backbone stays put
    assert all(snapshot.taken[n] != before[n] for n in before if n.startswith("head"))
    assert all(after[n] != snapshot.taken[n] for n in backbone)  # stage 1: it trains
    assert report.learning_rates == pytest.approx([0.1] * 3 + [0.05] * 3)
