"""Graded and binary returns, and a rising m changing a verdict through the filter's pure core."""

import math

import pytest

from hiors_core.buffer import EpisodeBuffer
from hiors_core.errors import ConfigError
from hiors_core.filters import REASON_ACCEPTED, REASON_BELOW, REASON_NEGATIVE, FilterConfig, filter_episode
from hiors_core.labelling import training_samples
from hiors_core.rejection import ThresholdConfig, ThresholdSchedule
from hiors_core.returns import ReturnConfig, episode_return
from hiors_testing.episodes import make_episode

RATE, LIMIT = 25.0, 10.0  # raise_hand: 25 Hz control, 10 s time limit
GRADED, BINARY = ReturnConfig(), ReturnConfig(mode="binary")
# The default ramp of config/*.yaml (the learner's `threshold_*`).
RAMP = ThresholdConfig(kind="linear", initial=0.5, final=0.9, ramp_steps=400)


def ret(reward, success, seconds, human_share, config=GRADED):
    steps = int(round(seconds * RATE))
    return episode_return(reward, success, steps, int(round(human_share * steps)), RATE, LIMIT, config)


def test_graded_success_is_discounted_by_length_and_human_share():
    assert ret(1.0, True, 2.0, 0.0) == pytest.approx(0.95)
    assert ret(1.0, True, 5.0, 0.0) == pytest.approx(0.875)
    assert ret(1.0, True, 6.0, 0.4) == pytest.approx(0.75)
    assert ret(1.0, True, 30.0, 1.0) == pytest.approx(0.5)  # the floor: longer than the limit counts as the limit
    assert ret(0.5, True, 2.0, 0.0) == pytest.approx(0.475)  # a graded label is scaled, not replaced
    assert episode_return(1.0, True, 0, 0, RATE, LIMIT) == 1.0  # no step recorded: nothing to discount
    # faster and more autonomous score higher
    assert ret(1.0, True, 2.0, 0.0) > ret(1.0, True, 4.0, 0.0) > ret(1.0, True, 4.0, 0.5)


def test_graded_failures_score_zero_or_their_negative_label():
    assert ret(0.0, False, 3.0, 0.5) == 0.0
    assert ret(0.4, False, 3.0, 0.0) == 0.0  # the oracle's graded progress of a failure: still never trained on
    assert ret(-1.0, False, 3.0, 0.0) == -1.0
    assert math.isnan(ret(float("nan"), False, 3.0, 0.0))  # unlabelled stays unlabelled


def test_binary_is_the_label_as_it_is():
    for reward, success in ((1.0, True), (0.0, False), (0.4, False), (-1.0, False)):
        assert ret(reward, success, 9.0, 0.9, BINARY) == reward
    # binary needs neither a rate nor a time limit
    assert episode_return(1.0, True, 200, 100, 0.0, 0.0, BINARY) == 1.0


def test_bad_return_configs():
    with pytest.raises(ConfigError, match="unknown"):
        ReturnConfig(mode="sum")
    with pytest.raises(ConfigError):
        ReturnConfig(length_weight=0.6, human_weight=0.5)  # a slow assisted success would score like a failure
    with pytest.raises(ConfigError):
        ReturnConfig(length_weight=-0.1)
    with pytest.raises(ConfigError):
        episode_return(1.0, True, 100, 0, RATE, 0.0)  # graded needs the time limit


def assisted_episode(episode_id="ep-000001"):
    """A success that took 6 s, the human driving 2.4 s of it (steps 50..109)."""
    return make_episode(episode_id=episode_id, steps=150, human=range(50, 110), sample_every=10, image=8)


def episode_ret(ep, config=GRADED):
    return episode_return(
        ep.episode_return, ep.label.success, len(ep.executed), int(ep.human_mask.sum()), RATE, LIMIT, config
    )


def test_rising_threshold_rejects_an_episode_it_accepted_at_the_start():
    ep = assisted_episode()
    r = episode_ret(ep)
    assert r == pytest.approx(1 - 0.25 * 0.6 - 0.25 * 0.4)
    schedule = ThresholdSchedule(RAMP)
    m_start, m_mid, m_end = (schedule.value(step) for step in (0, 200, 400))
    assert (m_start, m_mid, m_end) == pytest.approx((0.5, 0.7, 0.9))
    early = filter_episode(training_samples(ep, 4), r, m_start, ep.meta.control_mode, FilterConfig())
    late = filter_episode(training_samples(ep, 4), r, m_end, ep.meta.control_mode, FilterConfig())
    assert early.accepted and early.reason == REASON_ACCEPTED
    assert not late.accepted and late.reason == REASON_BELOW
    # ... and the learner's buffer drops it from the training set when m rises there
    buf = EpisodeBuffer()
    assert buf.add(ep.meta.episode_id, early.samples, r, m_start)
    assert buf.refilter(m_mid) == []  # still in
    assert buf.refilter(m_end) == [ep.meta.episode_id]
    # A fast autonomous success stays in at the end of the ramp.
    assert ret(1.0, True, 2.0, 0.0) >= m_end


def test_binary_returns_never_change_a_verdict_as_m_rises():
    ep = assisted_episode()
    r = episode_ret(ep, BINARY)
    schedule = ThresholdSchedule(RAMP)
    for step in (0, 200, 400):
        res = filter_episode(training_samples(ep, 4), r, schedule.value(step), ep.meta.control_mode, FilterConfig())
        assert res.accepted
    assert schedule.current == pytest.approx(0.9)
    failed = make_episode(reward=-1.0)
    res = filter_episode(training_samples(failed, 4), episode_ret(failed), 0.5, failed.meta.control_mode)
    assert res.reason == REASON_NEGATIVE
