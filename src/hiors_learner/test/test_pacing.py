"""UTD counting and pacing (pure): UTD = gradient steps / samples received, as the paper counts it."""

import pytest

from hiors_learner.pacing import UTDPacer, utd


def test_utd_counts_gradient_steps_per_received_sample():
    assert utd(0, 0) == 0.0 and utd(3, 12) == 0.25 and utd(16, 8) == 2.0
    p = UTDPacer(target=1.0)
    p.on_data(8, now=0.0)
    for _ in range(8):
        p.on_step()
    assert p.achieved == 1.0  # UTD 1 = one gradient step per sample, whatever the batch size


def test_pacer_is_off_by_default_and_a_cap_when_set():
    free = UTDPacer()
    assert not free.paced and free.may_train(0.0)  # unpaced: the learner trains while it has data
    for _ in range(5):
        free.on_step()
    free.on_data(2, now=0.0)
    assert free.may_train(0.0) and free.achieved == 2.5  # measured, never a brake
    p = UTDPacer(target=0.5, cap=1.5, idle_after_s=5.0)
    assert not p.may_train(0.0)  # paced: no data, no step
    p.on_data(4, now=100.0)
    steps = 0
    while p.may_train(101.0):
        p.on_step()
        steps += 1
    assert steps == 2  # 0.5 gradient steps per received sample
    assert p.may_train(106.0)  # robot idle: keep training up to the cap
    while p.may_train(106.0):
        p.on_step()
    assert p.steps == 6 and p.achieved == pytest.approx(1.5)
    assert UTDPacer(target=0.29, cap=0.0).limit(0.0) == 0.29  # cap 0: no idle allowance beyond the target
    q = UTDPacer(target=0.29)
    q.on_data(100, now=0.0)
    q.steps = 28
    assert q.may_train(1.0)  # 0.29 * 100 is 28.999... in floating point: the 29th step is still allowed
    q.on_step()
    assert not q.may_train(1.0)
