"""`SimRobot(end_on=...)`: which failures end an episode (pure, no rclpy). With "unrecoverable" a knocked-over
bottle leaves the episode running (a policy can pick it up again within a test-time budget); a bottle off the
table, success and the time limit still end it."""

from __future__ import annotations

import pytest

from hiors_core.rotations import quat_from_axis_angle
from hiors_sim.env import RECOVERABLE_FAILURES, SimRobot
from hiors_sim.tasks import BOX_CENTER, TABLE_Z, InsertMoisturizer, PackDetergent


def _scripted(env, reason: str, success: bool = False) -> None:
    """The task's verdict replaced by a fixed one, so that the step's decision alone is tested."""
    verdict = {"success": success, "failed": bool(reason), "failure_reason": reason, "progress": 0.1}
    env.task.evaluate = lambda m: dict(verdict)


@pytest.fixture(scope="module")
def envs():
    out = {
        e: SimRobot("xtrainer", "insert_moisturizer", time_limit=0.2, end_on=e) for e in ("failure", "unrecoverable")
    }
    yield out
    for env in out.values():
        env.close()


def test_a_recoverable_failure_ends_the_episode_only_by_default(envs):
    for end_on, env in envs.items():
        env.reset(seed=1)
        _scripted(env, "bottle knocked over")
        r = env.step()
        assert r.done == (end_on == "failure") and r.failure == ("bottle knocked over" if r.done else ""), end_on
    env = envs["unrecoverable"]
    env.reset(seed=1)  # still knocked over at every step: only the time limit ends the episode
    while not (r := env.step()).done:
        pass
    assert r.failure == "" and 0 <= env.time - env.task.time_limit < env.control_dt


def test_unrecoverable_failure_success_and_unknown_reasons_end_it_either_way(envs):
    for env in envs.values():
        for reason, success in (("bottle fell off the table", False), ("", True), ("a reason no list names", False)):
            env.reset(seed=2)
            _scripted(env, reason, success)
            r = env.step()
            assert r.done and r.success == success and r.failure == ("" if success else reason), (env.end_on, reason)
    with pytest.raises(ValueError, match="end_on must be one of"):
        SimRobot("tora_one", "raise_hand", end_on="never")


def test_the_tasks_own_failure_reasons_are_classified():
    """The reasons the tasks give (their strings live in tasks.py): knocked over is recoverable, off the table not."""
    lying = quat_from_axis_angle((1, 0, 0), 1.57).tolist()
    moist = {
        "bottle_pos": [0.0, -0.1, 0.016],
        "bottle_quat_xyzw": lying,
        "bottle_speed": 0.0,
        "base_pos": [0.1, 0.0, 0.0],
        "ee_pos": [0.1, 0.0, 0.2],
        "grasped": False,
    }
    assert InsertMoisturizer.evaluate(moist)["failure_reason"] in RECOVERABLE_FAILURES
    fell = InsertMoisturizer.evaluate(dict(moist, bottle_pos=[0.0, -0.1, -0.3]))
    assert fell["failed"] and fell["failure_reason"] not in RECOVERABLE_FAILURES
    packed = {
        "bottle_pos": [0.4, 0.0, TABLE_Z + 0.03],
        "bottle_quat_xyzw": lying,
        "bottle_speed": 0.0,
        "ee_pos": [0.3, 0.4, 1.0],
        "grasped": False,
        "box_center": [BOX_CENTER[0], BOX_CENTER[1], TABLE_Z],
    }
    assert PackDetergent.evaluate(packed)["failure_reason"] in RECOVERABLE_FAILURES
    floor = PackDetergent.evaluate(dict(packed, bottle_pos=[0.4, 0.0, 0.05]))
    assert floor["failed"] and floor["failure_reason"] not in RECOVERABLE_FAILURES
