"""Learning-rate schedules against hand-computed values (the OD API's formulas), and their validation."""
from __future__ import annotations

import pytest

from finetune.engine import EngineConfigError, Stage

REL = 1e-6  # schedules compute in float32, like the OD API's


def values(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_constant():
    from finetune.engine import build_schedule

    assert values(build_schedule("constant", learning_rate=0.3), [0, 7, 10 ** 6]) == pytest.approx([0.3] * 3, rel=REL)


def test_exponential_decay_staircase():
    from finetune.engine import ExponentialDecay

    schedule = ExponentialDecay(0.1, decay_steps=10, decay_factor=0.5)  # staircase by default, as in the OD API
    assert values(schedule, [0, 9, 10, 19, 25]) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], rel=REL)


def test_exponential_decay_smooth_burnin_and_floor():
    from finetune.engine import ExponentialDecay

    smooth = ExponentialDecay(0.1, decay_steps=10, decay_factor=0.5, staircase=False)
    assert values(smooth, [5]) == pytest.approx([0.0707106781], rel=REL)  # 0.1 * 0.5 ** 0.5
    burnin = ExponentialDecay(0.1, 10, 0.5, burnin_learning_rate=0.02, burnin_steps=4, min_learning_rate=0.03)
    # burn-in rises 0.02 -> 0.1 over 4 steps (slope 0.02); decay counts from the end of burn-in; floor 0.03
    assert values(burnin, [0, 2, 4, 14, 30]) == pytest.approx([0.03, 0.06, 0.1, 0.05, 0.03], rel=REL)
    plain = ExponentialDecay(0.1, 10, 0.5, burnin_steps=4)  # burnin_learning_rate 0: the base rate during burn-in
    assert values(plain, [0, 3, 4]) == pytest.approx([0.1, 0.1, 0.1], rel=REL)


def test_cosine_decay_with_warmup_and_hold():
    from finetune.engine import CosineDecayWithWarmup

    schedule = CosineDecayWithWarmup(0.1, total_steps=100, warmup_learning_rate=0.01, warmup_steps=10,
                                     hold_base_rate_steps=5)
    got = values(schedule, [0, 5, 10, 15, 16, 58, 99, 100, 101])
    want = [
        0.01,  # warm-up: 0.01 + 0.009 * step
        0.055,
        0.1,  # held at the base rate through step 15
        0.1,
        0.0999658530,  # 0.05 * (1 + cos(pi * 1 / 85))
        0.0490760548,  # 0.05 * (1 + cos(pi * 43 / 85))
        0.0000341470,  # 0.05 * (1 + cos(pi * 84 / 85))
        0.0,  # cos(pi) at total_steps
        0.0,  # and 0 beyond
    ]
    assert got == pytest.approx(want, rel=REL, abs=1e-9)


def test_cosine_decay_without_warmup_starts_at_base():
    from finetune.engine import build_schedule

    schedule = build_schedule("cosine_decay_learning_rate", learning_rate_base=0.2, total_steps=10)  # the proto name
    assert values(schedule, [0, 5, 10]) == pytest.approx([0.2, 0.1, 0.0], rel=REL, abs=1e-9)


def test_manual_step():
    from finetune.engine import ManualStep

    schedule = ManualStep(boundaries=[5, 10], rates=[0.1, 0.01, 0.001])
    assert values(schedule, [0, 4, 5, 9, 10, 1000]) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rel=REL)


def test_manual_step_with_warmup_interpolates_to_the_second_rate():
    from finetune.engine import ManualStep

    schedule = ManualStep(boundaries=[5, 10], rates=[0.1, 0.01, 0.001], warmup=True)
    # 0.1 -> 0.01 over steps 0..4: slope -0.018
    assert values(schedule, [0, 2, 4, 5, 10]) == pytest.approx([0.1, 0.064, 0.028, 0.01, 0.001], rel=REL)


def test_stage_multipliers_scale_the_schedule_and_the_last_stage_persists():
    from finetune.engine import Constant
    from finetune.engine._schedules import with_stages

    stages = (Stage(3, lr_multiplier=1.0), Stage(3, lr_multiplier=0.5))
    schedule = with_stages(Constant(0.1), stages)
    assert values(schedule, [0, 2, 3, 5, 6, 50]) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05, 0.05], rel=REL)
    assert with_stages(Constant(0.1), ()).get_config() == {"learning_rate": 0.1}


def test_schedules_round_trip_through_config():
    from finetune.engine import CosineDecayWithWarmup, ExponentialDecay, ManualStep

    for schedule in (ExponentialDecay(0.1, 10, 0.5, burnin_learning_rate=0.01, burnin_steps=3),
                     CosineDecayWithWarmup(0.1, 100, 0.01, 10, 5), ManualStep([5, 10], [0.1, 0.01, 0.001], True)):
        again = type(schedule).from_config(schedule.get_config())
        assert values(again, [0, 4, 7, 12, 60]) == values(schedule, [0, 4, 7, 12, 60])


@pytest.mark.parametrize("kind, params, message", [
    ("manual_step", {"boundaries": [5, 10], "rates": [0.1, 0.01]}, "one rate more than boundaries"),
    ("manual_step", {"boundaries": [10, 5], "rates": [0.1, 0.01, 0.001]}, "strictly increasing"),
    ("manual_step", {"boundaries": [0], "rates": [0.1, 0.01]}, "positive step numbers"),
    ("cosine_decay", {"learning_rate_base": 0.01, "total_steps": 10, "warmup_learning_rate": 0.1}, "below"),
    ("cosine_decay", {"learning_rate_base": 0.1, "total_steps": 10, "warmup_steps": 20}, "at least"),
    ("exponential_decay", {"initial_learning_rate": 0.1, "decay_steps": 0, "decay_factor": 0.5}, "positive"),
    ("exponential_decay", {"initial_learning_rate": 0.1, "decay_step": 10, "decay_factor": 0.5}, "decay_step"),
    ("polynomial", {}, "known: constant, exponential_decay, cosine_decay, manual_step"),
])
def test_bad_schedules_say_what_to_fix(kind, params, message):
    from finetune.engine import build_schedule

    with pytest.raises(EngineConfigError, match=message):
        build_schedule(kind, **params)
