"""The episode's outcome: the runner's end rule (EpisodeWatch) and the oracle's label (RewardOracle) agree with what
a person watching would call at the end of the episode."""

from __future__ import annotations

import numpy as np
import pytest

from hiors_sim.oracle import EpisodeWatch, RewardOracle


def state(t, success=False, failed=False, reason="", progress=0.5, seed=7, timed_out=False):
    return {
        "time": t,
        "seed": seed,
        "success": success,
        "failed": failed,
        "failure_reason": reason,
        "progress": 1.0 if success else progress,
        "timed_out": timed_out,
    }


def label_of(states, **kw):
    o = RewardOracle(**kw)
    for s in states:
        o.observe(s)
    return o.label()


def test_success_then_knocked_over_is_a_failure():
    states = [
        state(0.0, progress=0.2),
        state(3.0, success=True),  # the bottle is in the box for an instant
        state(3.04, success=True),
        state(3.2, progress=0.3),
        state(3.6, failed=True, reason="bottle knocked over", progress=0.3),
    ]
    lab = label_of(states)
    assert not lab.success and not lab.true_success and lab.reward == 0.0
    # ... even when the last state seen shows no failure any more, and with graded rewards
    lab = label_of(states[:-1] + [state(3.6, failed=True, reason="bottle knocked over", progress=0.3)], graded=True)
    assert not lab.success and lab.reward == pytest.approx(0.3)  # graded: its progress short of success
    # ... and a failure seen stays one whatever comes after it
    assert not label_of(states + [state(3.7, success=True)]).success


def test_success_seen_then_lost_until_the_time_limit_is_a_failure():
    states = [state(0.0), state(5.0, success=True), state(5.04, success=True), state(5.2, progress=0.6)]
    states += [state(5.2 + 0.04 * k, progress=0.6) for k in range(1, 120)] + [state(10.0, timed_out=True)]
    lab = label_of(states)
    assert not lab.success and lab.reward == 0.0


def test_ends_in_success_within_the_grace():
    # The runner ended the episode on the success at t=5.0; the oracle heard of it 0.12 s later, when the
    # released hand had already left the goal: the label is what the person saw when they pressed the button.
    states = [state(0.0), state(5.0, success=True), state(5.04, progress=0.9), state(5.12, progress=0.8)]
    lab = label_of(states)
    assert lab.success and lab.true_success and lab.reward == 1.0
    assert not label_of(states, end_grace_s=0.1).success
    assert not label_of(states + [state(5.6, progress=0.7)]).success  # 0.6 s after: no longer its end
    assert label_of([state(0.0), state(2.0, success=True)], end_grace_s=0.0).success


def test_nothing_observed_or_no_times():
    assert not RewardOracle().label().success
    o = RewardOracle()
    o.observe({"success": True, "progress": 1.0})
    o.observe({"success": False, "progress": 0.4})
    assert not o.label().success  # without times, only a successful last state counts


def test_states_of_another_scene_are_dropped():
    # A failed state of the last scene, in flight at the reset, must not fail the new episode.
    states = [state(9.0, failed=True, reason="bottle fell off the table", seed=6), state(0.0), state(1.0, success=True)]
    assert label_of(states).success


def test_false_positives_only_turn_failures_into_successes():
    o = RewardOracle(false_positive_rate=1.0, seed=1)
    o.observe(state(0.0, failed=True, reason="bottle knocked over"))
    lab = o.label()
    assert lab.success and lab.false_positive and not lab.true_success and lab.reward == 1.0
    with pytest.raises(ValueError):
        RewardOracle(end_grace_s=-1.0)


def test_watch_ends_on_success_failure_or_time_limit():
    w = EpisodeWatch()
    assert w.observe(state(0.0)) == ""
    assert w.observe(state(1.0, success=True)) == "success"
    assert w.observe(state(1.04)) == "success"  # once over, it stays over
    w.reset()
    assert w.observe(state(2.0, failed=True, reason="bottle knocked over")).startswith("failed (bottle knocked over)")
    w.reset()
    assert w.observe(state(10.0, timed_out=True)) == "time limit"


def test_watch_held_success():
    w = EpisodeWatch(settle_s=0.4)
    for k in range(3):  # three successful states (0.08 s), then the hand leaves the goal
        assert w.observe(state(1.0 + 0.04 * k, success=True)) == ""
    assert w.observe(state(1.12)) == ""
    for k in range(10):
        why = w.observe(state(2.0 + 0.04 * k, success=True))
    assert why == "" and w.observe(state(2.4, success=True)) == "success"


def test_runner_rule_and_oracle_agree_on_a_released_hand():
    """The simulated operator lets go at the first success and a policy that does not hold the goal leaves it
    within a few steps. The runner must end that episode on its success (a 0.4 s hold never comes: the episode
    would run to its time limit though success was seen), and the oracle, hearing of the end a few states later,
    must call it a success too."""
    from hiors_sim.env import SimRobot
    from hiors_sim.operator import OperatorConfig, SimOperator

    env = SimRobot("tora_one", "raise_hand")
    outcomes = {}
    for settle in (0.0, 0.4):
        st = env.reset(seed=3)
        op = SimOperator("raise_hand", OperatorConfig(seed=3))
        home = env.commanded_action().copy()
        watch, oracle = EpisodeWatch(settle_s=settle), RewardOracle()
        why, after_end, seen = "", 0, False
        while after_end < 3:  # the oracle hears of the end 3 states (0.12 s) after the runner decided
            out = op.update(st)
            if out.engaged:
                action = out.action
            else:  # the policy drifts back towards where it started
                action = env.commanded_action()
                action[:3] += np.clip(home[:3] - action[:3], -0.01, 0.01)
            env.step(action)
            st = env.task_state()
            oracle.observe(st)
            seen |= st["success"]
            why = why or watch.observe(st)
            after_end += bool(why)
        outcomes[settle] = (why, oracle.label().success, seen)
    assert outcomes[0.0] == ("success", True, True)
    assert outcomes[0.4][0] == "time limit" and outcomes[0.4][2]  # success seen, never held for 0.4 s


def test_oracle_node_labels_the_end_of_each_episode():
    import json

    from rclpy.parameter import Parameter
    from std_msgs.msg import String

    from hiors_sim.oracle_node import RewardOracleNode
    from hiors_testing.ros import ros_context

    with ros_context() as ctx:
        node = RewardOracleNode(context=ctx, parameter_overrides=[Parameter("end_grace_s", value=0.2)])
        published, real = [], node.publish_label

        def spy(episode_id):
            published.append(real(episode_id))
            return published[-1]

        node.publish_label = spy
        try:
            node._on_status(String(data="ep-1"))
            for s in (state(0.0), state(3.0, success=True), state(3.5, failed=True, reason="bottle knocked over")):
                node._on_state(String(data=json.dumps(s)))
            node._on_status(String(data="ep-2"))
            for s in (state(0.0, seed=8), state(2.0, success=True, seed=8), state(2.12, seed=8)):
                node._on_state(String(data=json.dumps(s)))
            node._on_status(String(data=""))
            assert [(m.episode_id, m.success, m.reward, m.source) for m in published] == [
                ("ep-1", False, 0.0, "oracle"),
                ("ep-2", True, 1.0, "oracle"),
            ]
        finally:
            node.destroy_node()
