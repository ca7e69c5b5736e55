"""Normalisation statistics from recorded episodes (pure: no ROS, no model)."""

import numpy as np
import pytest

from hiors_core.errors import ConfigError
from hiors_core.schema import AUTHORITY_HUMAN, EpisodeData, EpisodeMeta, Executed, Frame
from hiors_policy.dataset_stats import stats_from_episodes
from hiors_policy.preprocess import NormStats


def episode(eid, states, actions, names=("a", "b")):
    meta = EpisodeMeta(eid, "tora_one", "raise_hand", "", 1, ("x", "g"), names)
    ep = EpisodeData(meta=meta)
    img = {"top": np.zeros((8, 8, 3), np.uint8)}
    ep.frames = [Frame(i, i, img, np.asarray(s, np.float32), names) for i, s in enumerate(states)]
    ep.executed = [
        Executed(i, i, np.asarray(a, np.float32), AUTHORITY_HUMAN, "t", 0, False, True) for i, a in enumerate(actions)
    ]
    return ep


def test_mean_and_floored_std_per_dimension():
    stats = NormStats.from_data([[0.0, 5.0], [2.0, 5.0]], [[1.0, 0.3], [3.0, 0.3], [5.0, 0.3]])
    np.testing.assert_allclose(stats.state_mean, [1.0, 5.0])
    np.testing.assert_allclose(stats.state_std, [1.0, NormStats.MIN_STD])  # a constant dimension: the floor
    np.testing.assert_allclose(stats.action_mean, [3.0, 0.3], rtol=1e-6)
    np.testing.assert_allclose(stats.action_std, [np.sqrt(8 / 3), NormStats.MIN_STD], rtol=1e-6)


def test_states_are_put_in_the_policy_order_by_name():
    one = episode("e1", [[1.0, 10.0]], [[0.0, 1.0]])
    two = episode("e2", [[30.0, 3.0]], [[2.0, 1.0]], names=("b", "a"))  # the same dimensions, swapped
    stats = stats_from_episodes([one, two], ("a", "b"))
    np.testing.assert_allclose(stats.state_mean, [2.0, 20.0])
    np.testing.assert_allclose(stats.action_mean, [1.0, 1.0])


def test_bad_data_is_named():
    with pytest.raises(ConfigError, match="lacks"):
        stats_from_episodes([episode("e1", [[1.0, 2.0]], [[0.0, 1.0]], names=("a", "c"))], ("a", "b"))
    with pytest.raises(ConfigError, match="no recorded frames"):
        stats_from_episodes([], ("a", "b"))
    with pytest.raises(ConfigError, match="non-empty"):
        NormStats.from_data(np.zeros((0, 2)), np.zeros((3, 2)))


def test_failed_demonstrations_do_not_shape_the_statistics(tmp_path):
    from hiors_core.episode_log import EpisodeLog
    from hiors_core.schema import Label
    from hiors_policy.dataset_stats import stats_from_log

    log = EpisodeLog(tmp_path)
    good = episode("demo-000000", [[1.0, 2.0]], [[0.0, 1.0]])
    good.label = Label(reward=1.0, success=True, source="oracle", stamp_ns=1)
    bad = episode("demo-000001", [[100.0, 200.0]], [[50.0, 1.0]])
    bad.label = Label(reward=0.0, success=False, source="oracle", stamp_ns=1)
    log.write_episode(good)
    log.write_episode(bad)
    stats = stats_from_log(tmp_path, ("a", "b"))
    np.testing.assert_allclose(stats.state_mean, [1.0, 2.0])
    np.testing.assert_allclose(stats.action_mean, [0.0, 1.0])


def test_goal_state_layout_and_assembly():
    from hiors_policy.layout import assemble_state, has_goal_state, state_layout

    plain, goal = state_layout("tora_one", "raise_hand"), state_layout("tora_one", "raise_hand", goal=True)
    assert goal[: len(plain)] == plain and goal[len(plain) :] == (
        "goal_x", "goal_y", "goal_z", "goal_qx", "goal_qy", "goal_qz", "goal_qw",
    )  # fmt: skip
    assert has_goal_state(goal, "tora_one", "raise_hand") and not has_goal_state(plain, "tora_one", "raise_hand")
    joints = {n: float(i) for i, n in enumerate(plain) if "_ee_" not in n}
    pose = {"left": (1, 2, 3, 0, 0, 0, 1)}
    values = dict(zip(goal[len(plain) :], (7, 8, 9, 0, 0, 0, 1), strict=True))
    state = assemble_state(goal, joints, pose, goal=values)
    assert state[-7:].tolist() == [7, 8, 9, 0, 0, 0, 1]
    with pytest.raises(KeyError, match="goal_x"):
        assemble_state(goal, joints, pose)  # a real robot has no goal entries to give
