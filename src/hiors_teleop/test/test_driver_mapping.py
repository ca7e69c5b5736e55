"""The driver bridge's core (pure): renaming, joint order, gripper units, and that no command the graph sends can
reach the driver non-finite or outside the robot's joint limits."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiors_core.errors import BadInputError, ConfigError
from hiors_core.robots import TORA_ONE, XTRAINER
from hiors_teleop.robot_driver.mapping import DriverMap, JointStateMerge, Skipped

# A driver that names the left arm's joints its own way and gives finger travel in m (0.0 closed, 0.08 open).
RENAMED = [f"arm_l_{i + 1}=left_joint{i + 1}" for i in range(6)] + ["finger_l=left_gripper"]


def xtrainer_map(**kw) -> DriverMap:
    return DriverMap.build(XTRAINER, RENAMED, gripper_closed=0.0, gripper_open=0.08, **kw)


def test_the_driver_state_becomes_the_robots_joint_state_in_its_order_and_units():
    merge = JointStateMerge(xtrainer_map())
    order = list(XTRAINER.joint_names)
    driver = {"arm_l_1": 0.1, "arm_l_6": -0.2, "finger_l": 0.04, "head_pan": 9.0}  # head_pan: not a robot joint
    driver.update({n: 0.01 * i for i, n in enumerate(order) if n.startswith("right")})
    assert merge.update(list(driver), list(driver.values())) is None  # left_joint2..5 not seen yet
    rest = {f"arm_l_{i}": 0.3 for i in range(2, 6)}
    names, position, velocity = merge.update(list(rest), list(rest.values()), [1.0] * 4)
    assert names == order
    state = dict(zip(names, position, strict=True))
    assert state["left_joint1"] == 0.1 and state["left_joint6"] == -0.2 and state["left_joint3"] == 0.3
    assert state["left_gripper"] == pytest.approx(0.5)  # 0.04 m of 0.08
    assert velocity == []  # not every joint has one
    with pytest.raises(BadInputError, match="non-finite position of 'arm_l_1'"):
        merge.update(["arm_l_1", "arm_l_2"], [math.nan, 0.0])
    assert merge.position["left_joint2"] == 0.3  # a refused message takes nothing
    merge.update(["head_pan"], [math.nan])  # not a robot joint: ignored
    with pytest.raises(BadInputError, match="2 names, 1 positions"):
        merge.update(["arm_l_1", "arm_l_2"], [0.0])


def test_a_command_goes_out_in_the_controllers_order_and_units():
    dmap = xtrainer_map(command_joints=["finger_l", "arm_l_1", "right_joint1"])
    assert dmap.command_joints == ("left_gripper", "left_joint1", "right_joint1")
    assert dmap.command_driver_names == ["finger_l", "arm_l_1", "right_joint1"]
    names = list(XTRAINER.joint_names)
    values = [0.0] * len(names)
    values[names.index("left_joint1")], values[names.index("right_joint1")] = 0.5, -0.5
    values[names.index("left_gripper")] = 0.25
    np.testing.assert_allclose(dmap.command(names, values), [0.02, 0.5, -0.5])
    default = xtrainer_map()  # every robot joint, in the robot's order
    assert default.command_joints == XTRAINER.joint_names
    assert default.command(names, values).shape == (len(names),)


@pytest.mark.parametrize(
    "names, values, message",
    [
        (["left_joint1"], [math.nan], "non-finite positions for \\['left_joint1'\\]"),
        (["left_joint1"], [math.inf], "non-finite"),
        (["left_joint1"], [3.2], "outside the joint limits: \\['left_joint1'\\]"),  # limit 3.05 rad
        (["left_gripper"], [1.01], "outside the joint limits"),
        (["left_joint1", "elbow"], [0.0, 0.0], "unknown joints \\['elbow'\\]"),
        (["left_joint1", "left_joint1"], [0.0, 0.0], "named twice"),
        (["left_joint1"], [0.0, 0.0], "1 names but 2 positions"),
        (["left_joint1"], ["x"], "not numbers"),
    ],
)
def test_a_bad_command_is_refused_whole_naming_what_is_wrong(names, values, message):
    dmap = xtrainer_map(command_joints=["arm_l_1"])
    with pytest.raises(BadInputError, match=message):
        dmap.command(names, values)


def test_a_command_without_every_controller_joint_is_skipped_not_sent():
    dmap = DriverMap.build(TORA_ONE, command_joints=["left_joint1", "left_joint2"])
    with pytest.raises(Skipped, match="left_joint2"):
        dmap.command(["left_gripper", "left_joint1"], [0.5, 0.0])
    with pytest.raises(BadInputError, match="outside"):  # a bad value is refused even when it would be skipped
        dmap.command(["left_gripper"], [2.0])


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"joint_map": ["arm_l_1"]}, "expected 'driver_name=robot_joint_name'"),
        ({"joint_map": ["a=left_joint9"]}, "no joint 'left_joint9'"),
        ({"joint_map": ["a=left_joint1", "a=left_joint2"]}, "driver joint 'a' is both"),
        ({"joint_map": ["left_joint2=left_joint1"]}, "driver joint 'left_joint2' is both"),
        ({"command_joints": ["arm_l_1"]}, "command_joints \\['arm_l_1'\\]: no robot joint"),
        ({"command_joints": ["left_joint1", "left_joint1"]}, "listed twice"),
        ({"gripper_open": 0.0}, "two different numbers"),
    ],
)
def test_a_bad_mapping_is_named(kw, message):
    with pytest.raises(ConfigError, match=message):
        DriverMap.build(XTRAINER, **kw)


# Values around and beyond every limit, NaN and inf included.
_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-3.3, 3.3),
    st.sampled_from([-3.05, 3.05, 0.0, 1.0, 1.0000001, -1e-9]),
)


_COMMANDED = ("left_joint1", "left_gripper", "right_joint3")


@settings(max_examples=200, deadline=None)
@given(
    commanded=st.tuples(*[_VALUE] * len(_COMMANDED)),
    others=st.dictionaries(st.sampled_from(list(XTRAINER.joint_names) + ["elbow"]), _VALUE, max_size=8),
)
def test_no_command_reaches_the_driver_non_finite_or_outside_the_limits(commanded, others):
    dmap = xtrainer_map(command_joints=["arm_l_1", "finger_l", "right_joint3"])
    command = {**others, **dict(zip(_COMMANDED, commanded, strict=True))}
    try:
        out = dmap.command(list(command), list(command.values()))
    except BadInputError:
        return
    cols = [XTRAINER.joint_names.index(j) for j in _COMMANDED]
    lower, upper = XTRAINER.joint_lower[cols], XTRAINER.joint_upper[cols]
    lower[1], upper[1] = dmap.from_opening(lower[1]), dmap.from_opening(upper[1])  # the gripper in m
    assert np.all(np.isfinite(out)) and np.all(out >= lower) and np.all(out <= upper)
    np.testing.assert_allclose(out, [command["left_joint1"], 0.08 * command["left_gripper"], command["right_joint3"]])
