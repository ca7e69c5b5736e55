"""Executed-action chunk labels and the Episode message round trip."""

import numpy as np
import pytest

from hiors_core.labelling import executed_chunk, training_samples
from hiors_testing.episodes import make_episode


def test_chunk_is_next_h_executed_commands_padded_with_the_last():
    actions = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(executed_chunk(actions, 1, 3), actions[1:4])
    np.testing.assert_array_equal(executed_chunk(actions, 3, 4), actions[[3, 4, 4, 4]])
    with pytest.raises(IndexError):
        executed_chunk(actions, 5, 2)


def test_samples_label_from_executed_and_mark_human_steps():
    ep = make_episode(steps=12, human=range(4, 8), sample_every=3)
    samples = training_samples(ep, horizon=5)
    assert [s.step for s in samples] == [f.step for f in ep.frames]
    for s in samples:
        np.testing.assert_array_equal(s.action_label, executed_chunk(ep.actions, s.step, 5))
        assert s.is_human == (4 <= s.step < 8)
    assert sum(s.is_human for s in samples) == 4


def test_episode_message_round_trip():
    from hiors_core.episode_msg import episode_to_msg, samples_from_msg

    ep = make_episode()
    msg = episode_to_msg(ep, horizon=4, bag_uri="/tmp/x")
    assert msg.human_steps == 4 and msg.interventions == 1 and msg.episode_return == 1.0
    back = samples_from_msg(msg)
    ref = training_samples(ep, 4)
    assert len(back) == len(ref)
    for a, b in zip(ref, back, strict=True):
        np.testing.assert_array_equal(a.action_label, b.action_label)
        np.testing.assert_array_equal(a.images["top"], b.images["top"])
        assert a.is_human == b.is_human
