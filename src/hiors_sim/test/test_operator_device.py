"""The simulated operator's device output (`hiors_sim.operator_device`): what `sim_operator` publishes and the
in-process loop feeds the arbiter, in the real devices' conventions."""

from __future__ import annotations

import numpy as np
import pytest

from hiors_core.rotations import quat_to_rotvec
from hiors_sim.env import SimRobot
from hiors_sim.operator import BUTTON_CLUTCH, BUTTON_FAILURE, BUTTON_SUCCESS, OperatorConfig
from hiors_sim.operator_device import OperatorDevice


@pytest.fixture(scope="module")
def tora():
    env = SimRobot("tora_one", "raise_hand")
    yield env
    env.close()


def test_quest_clutch_sends_relative_motion_from_engage(tora):
    st = tora.reset(seed=1)
    dev = OperatorDevice(tora.task, OperatorConfig(mode="demo"))
    out = dev.update(st)
    assert out.engaged and out.buttons[BUTTON_CLUTCH] == 1 and out.joint_positions is None
    dp, dq = out.ee_delta
    # The first message after the clutch engages is one hand step from zero: small, never the absolute pose.
    assert np.linalg.norm(dp) <= dev.hand.max_step_m + 1e-9
    assert np.linalg.norm(quat_to_rotvec(dq)) <= dev.hand.max_step_rad + 1e-9
    assert 0.0 <= out.trigger <= 1.0 and len(out.axes) == 1
    # The hand keeps accumulating while the clutch stays held.
    st = tora.task_state()
    dp2, _ = dev.update(st).ee_delta
    assert np.linalg.norm(dp2) > np.linalg.norm(dp)


def test_a_new_scene_releases_the_clutch_and_restarts_the_hand(tora):
    dev = OperatorDevice(tora.task, OperatorConfig(mode="demo"))
    for _ in range(3):
        dev.update(tora.task_state())
    far = np.linalg.norm(dev.hand.dp)
    st = tora.reset(seed=2)  # another seed: a new scene
    dp, _ = dev.update(st).ee_delta
    assert far > 0 and np.linalg.norm(dp) <= dev.hand.max_step_m + 1e-9


def test_never_mode_sends_only_a_released_joy(tora):
    dev = OperatorDevice(tora.task, OperatorConfig(mode="never"))
    out = dev.update(tora.reset(seed=3))
    assert not out.engaged and out.ee_delta is None and out.buttons == [0, 0, 0, 0]


def test_episode_buttons_press_once_at_the_end(tora):
    st = tora.reset(seed=4)
    dev = OperatorDevice(tora.task, OperatorConfig(mode="never"), episode_buttons=True)
    assert not dev.update(st).success_button
    over = {**tora.task_state(), "step": 5, "success": False, "failed": True}
    first, again = dev.update(over), dev.update({**over, "step": 6})
    assert first.buttons[BUTTON_FAILURE] == 1 and first.buttons[BUTTON_SUCCESS] == 0
    assert again.buttons == [0, 0, 0, 0]  # pressed for one message


def test_leader_arm_sends_absolute_joints():
    env = SimRobot("xtrainer", "insert_moisturizer")
    try:
        st = env.reset(seed=1)
        dev = OperatorDevice(env.task, OperatorConfig(mode="demo"))
        out = dev.update(st)
        assert out.engaged and out.ee_delta is None
        assert out.joint_names == tuple(env.task.layout.names)
        assert out.joint_positions.shape == (len(out.joint_names),)
        grip = out.joint_positions[list(out.joint_names).index(f"{env.task.arm}_gripper")]
        assert out.trigger == pytest.approx(1.0 - grip)  # trigger pressed = gripper closed
    finally:
        env.close()
