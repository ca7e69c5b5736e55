"""Threshold schedules, I_m, filters and buffer re-filtering on hand-built episodes (weight sync: test_weight_sync.py)."""

import math

import numpy as np
import pytest

from hiors_core.buffer import EpisodeBuffer
from hiors_core.errors import ConfigError
from hiors_core.filters import (
    REASON_BELOW,
    REASON_NEGATIVE,
    REASON_NO_SAMPLES,
    REASON_SHORT,
    REASON_UNLABELLED,
    FilterConfig,
    chunk_motion,
    filter_episode,
    is_noop,
)
from hiors_core.labelling import training_samples
from hiors_core.rejection import ThresholdConfig, ThresholdSchedule, indicator, sample_weight
from hiors_core.robots import MODE_EE_POSE, MODE_JOINT
from hiors_testing.episodes import make_episode


def samples_of(ep, horizon=4):
    return training_samples(ep, horizon)


def test_indicator():
    assert indicator(1.0, 1.0) and indicator(0.7, 0.5)
    assert not indicator(0.4, 0.5)
    assert not indicator(-0.5, -1.0)  # negative returns never trained on, whatever m
    assert not indicator(float("nan"), 0.0)
    assert sample_weight(0.4, 0.5) == 0.0 and sample_weight(0.8, 0.5) == 1.0
    assert sample_weight(0.8, 0.5, "reward", reward_scale=2.0) == pytest.approx(0.4)
    with pytest.raises(ConfigError):
        sample_weight(0.8, 0.5, "bogus")


def values(cfg, steps, observe=()):
    s = ThresholdSchedule(cfg)
    out = []
    for k, step in enumerate(steps):
        if k < len(observe):
            s.observe(observe[k], True)
        out.append(s.value(step))
    return out


def test_fixed_schedule_piecewise():
    cfg = ThresholdConfig(kind="fixed", initial=0.0, values=(0.3, 0.6, 0.9), steps=(10, 20, 30))
    assert values(cfg, [0, 9, 10, 19, 20, 35]) == [0.0, 0.0, 0.3, 0.3, 0.6, 0.9]
    # a decreasing list is still applied non-decreasingly
    dec = ThresholdConfig(kind="fixed", initial=0.0, values=(0.8, 0.2), steps=(1, 2))
    assert values(dec, [0, 1, 2, 3]) == [0.0, 0.8, 0.8, 0.8]


def test_linear_schedule():
    cfg = ThresholdConfig(kind="linear", initial=0.2, final=1.0, start_step=10, ramp_steps=40)
    v = values(cfg, [0, 10, 30, 50, 100])
    assert v == pytest.approx([0.2, 0.2, 0.6, 1.0, 1.0])
    with pytest.raises(ConfigError):
        ThresholdConfig(kind="linear", final=math.inf)


def test_quantile_schedule_is_monotone_even_when_quantile_dips():
    cfg = ThresholdConfig(kind="quantile", initial=0.1, final=5.0, quantile=0.5, window=4, min_count=2)
    rets = [1.0, 3.0, 3.0, 3.0, 0.2, 0.2, 0.2, 0.2]
    v = values(cfg, list(range(len(rets))), observe=rets)
    assert v[0] == 0.1  # not enough returns yet
    assert v[1] == pytest.approx(2.0)
    assert max(v) == pytest.approx(3.0)
    assert all(b >= a for a, b in zip(v, v[1:], strict=False))
    assert v[-1] == pytest.approx(3.0)  # the raw quantile fell to 0.2; m did not


@pytest.mark.parametrize(
    "cfg",
    [
        ThresholdConfig(kind="constant", initial=0.3),
        ThresholdConfig(kind="fixed", values=(0.5, 0.1, 0.7), steps=(3, 5, 9)),
        ThresholdConfig(kind="linear", initial=1.0, final=0.0, ramp_steps=10),  # a falling ramp is clamped
        ThresholdConfig(kind="quantile", quantile=0.9, window=3, min_count=1),
    ],
)
def test_every_schedule_is_non_decreasing(cfg):
    rng = np.random.default_rng(0)
    s = ThresholdSchedule(cfg)
    prev = -math.inf
    for step in range(50):
        s.observe(float(rng.uniform(0, 2)), bool(rng.integers(2)))
        m = s.value(step)
        assert m >= prev
        prev = m
    state = s.state_dict()
    s2 = ThresholdSchedule(cfg)
    s2.load_state_dict(state)
    assert s2.value(0) == pytest.approx(prev)  # resume never lowers m


def test_bad_schedule_configs():
    with pytest.raises(ConfigError, match="unknown"):
        ThresholdConfig(kind="bogus")
    with pytest.raises(ConfigError):
        ThresholdConfig(kind="fixed", values=(1.0,), steps=())


def ee_chunk(dp=(0, 0, 0), angle=0.0, grip=(0.5, 0.5), h=5):
    a = np.zeros((h, 8), np.float32)
    a[:, 6] = 1.0
    a[:, 7] = grip[0]
    a[-1, :3] = dp
    a[-1, 3:7] = [0, 0, math.sin(angle / 2), math.cos(angle / 2)]
    a[-1, 7] = grip[1]
    return a


def test_noop_ee_pose():
    cfg = FilterConfig(noop_translation=0.01, noop_rotation=0.05, noop_gripper=0.1)
    assert is_noop(ee_chunk(), MODE_EE_POSE, cfg)
    assert is_noop(ee_chunk(dp=(0.005, 0, 0)), MODE_EE_POSE, cfg)
    assert not is_noop(ee_chunk(dp=(0.0, 0.02, 0)), MODE_EE_POSE, cfg)
    assert not is_noop(ee_chunk(angle=0.2), MODE_EE_POSE, cfg)
    assert not is_noop(ee_chunk(grip=(0.0, 1.0)), MODE_EE_POSE, cfg)  # gripper-only motion is not a no-op
    m = chunk_motion(ee_chunk(dp=(0.03, 0.04, 0), angle=0.3), MODE_EE_POSE)
    assert m["translation"] == pytest.approx(0.05, abs=1e-6) and m["rotation"] == pytest.approx(0.3, abs=1e-4)
    # q and -q are the same rotation
    a = ee_chunk()
    a[-1, 3:7] = [0, 0, 0, -1.0]
    assert chunk_motion(a, MODE_EE_POSE)["rotation"] == pytest.approx(0.0, abs=1e-3)
    # two arms: motion of either arm counts
    two = np.concatenate([ee_chunk(), ee_chunk(dp=(0.1, 0, 0))], axis=1)
    assert not is_noop(two, MODE_EE_POSE, cfg)


def test_noop_joint():
    cfg = FilterConfig(noop_joint=0.01)
    a = np.zeros((4, 14), np.float32)
    assert is_noop(a, MODE_JOINT, cfg)
    a[-1, 3] = 0.02
    assert not is_noop(a, MODE_JOINT, cfg)


def test_filter_episode_accepts_and_weights():
    ep = make_episode(steps=12, reward=1.0)
    s = samples_of(ep)
    res = filter_episode(s, 1.0, 0.5, MODE_JOINT, FilterConfig(noop_joint=0.01))
    assert res.accepted and res.reason == "accepted" and res.samples_kept == len(s) and res.samples_noop == 0
    assert all(x.weight == 1.0 for x in res.samples)
    res = filter_episode(samples_of(ep), 1.0, 0.5, MODE_JOINT, FilterConfig(weighting="reward", reward_scale=2.0))
    assert all(x.weight == 0.5 for x in res.samples)


def test_filter_rejections():
    ep = make_episode(steps=12)
    cfg = FilterConfig(min_samples=3)
    assert filter_episode(samples_of(ep), 0.4, 0.5, MODE_JOINT, cfg).reason == REASON_BELOW
    r = filter_episode(samples_of(ep), -1.0, -5.0, MODE_JOINT, cfg)
    assert r.reason == REASON_NEGATIVE and not r.accepted and r.samples_kept == 0
    assert filter_episode(samples_of(ep), float("nan"), 0.0, MODE_JOINT, cfg).reason == REASON_UNLABELLED
    short = make_episode(steps=2, human=(), sample_every=1)
    assert filter_episode(samples_of(short), 1.0, 0.5, MODE_JOINT, cfg).reason == REASON_SHORT
    off = FilterConfig(short_enabled=False, noop_enabled=False)
    assert filter_episode(samples_of(short), 1.0, 0.5, MODE_JOINT, off).accepted


def test_noop_samples_are_dropped_the_end_hold_kept_and_all_noop_rejects():
    ep = make_episode(steps=16, human=(), sample_every=1)
    for e in ep.executed[3:9]:  # the robot pauses at step 3 and moves on at step 9
        e.action = ep.executed[3].action.copy()
    for e in ep.executed[12:]:  # and holds from step 12 on: the episode's end (the goal held)
        e.action = ep.executed[12].action.copy()
    s = samples_of(ep, horizon=3)
    res = filter_episode(s, 1.0, 0.5, MODE_JOINT, FilterConfig(noop_joint=0.01))
    # Idle chunks start at 3..6 (a pause, dropped) and 12..15 (the end hold, kept: it labels staying at the goal).
    assert res.accepted and res.samples_noop == 4 and res.samples_kept == 12
    assert [x.step for x in res.samples] == [0, 1, 2, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    assert res.kept_mask.tolist() == [True] * 3 + [False] * 4 + [True] * 9
    off = filter_episode(samples_of(ep, 3), 1.0, 0.5, MODE_JOINT, FilterConfig(noop_enabled=False))
    assert off.samples_kept == 16
    still = make_episode(steps=8, human=(), sample_every=1)
    for e in still.executed:
        e.action = np.zeros_like(e.action)
    assert filter_episode(samples_of(still), 1.0, 0.5, MODE_JOINT, FilterConfig()).reason == REASON_NO_SAMPLES


def test_buffer_dedupes_and_refilters_when_m_rises():
    buf = EpisodeBuffer()
    for i, r in enumerate([0.6, 0.9, 1.0]):
        ep = make_episode(episode_id=f"ep-{i}", steps=6, sample_every=1, human=())
        assert buf.add(ep.meta.episode_id, samples_of(ep), r, m=0.5)
    assert not buf.add("ep-0", samples_of(make_episode(episode_id="ep-0")), 1.0, m=0.5)  # never twice
    assert buf.num_active == 3 and buf.num_samples == 18 and buf.samples_received == 18
    assert buf.refilter(0.8) == ["ep-0"]
    assert buf.active_ids == ["ep-1", "ep-2"] and buf.num_samples == 12
    assert buf.refilter(0.8) == []
    assert buf.refilter(0.95) == ["ep-1"]
    batch = buf.sample(64, np.random.default_rng(0))
    assert {s.episode_id for s in batch} == {"ep-2"}
    assert "ep-0" in buf  # known forever, never re-added
    assert buf.mark_seen("rejected-1") and not buf.mark_seen("rejected-1")
