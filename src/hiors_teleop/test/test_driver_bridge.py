"""Node test of driver_bridge on a private ROS domain: a fake ros2_control driver (its own joint names and order,
finger travel in m, /joint_states and a forward_command_controller or joint_trajectory_controller command topic)
on one side, the graph's topics (in the namespace `hiors`) on the other. What comes out on each side, and that
no NaN or out-of-limit command reaches the driver. The mapping alone is in test_driver_mapping.py."""

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from hiors_core import topics
from hiors_core.errors import ConfigError
from hiors_core.robots import XTRAINER
from hiors_teleop.robot_driver.bridge import DriverBridge
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_publishers, wait_for_subscribers

pytestmark = pytest.mark.node
WAIT = 30.0
NS = "hiors"
# The driver's names: the left arm as arm_l_1..6 and finger_l (m, 0 closed .. 0.08 open); the rest as the robot's.
JOINT_MAP = [f"arm_l_{i + 1}=left_joint{i + 1}" for i in range(6)] + ["finger_l=left_gripper"]
DRIVER_NAMES = [f"arm_l_{i + 1}" for i in range(6)] + [f"right_joint{i + 1}" for i in range(6)]
DRIVER_NAMES += ["finger_l", "right_gripper"]
CONTROLLER = list(reversed(DRIVER_NAMES))  # the controller's `joints`, in an order of its own


def bridge(ctx, **params):
    overrides = {
        "robot": "xtrainer",
        "joint_map": JOINT_MAP,
        "command_joints": CONTROLLER,
        "gripper_closed": 0.0,
        "gripper_open": 0.08,
        **params,
    }
    return DriverBridge(
        context=ctx, namespace=NS, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )


class Sides:
    """The fake driver (root namespace) and the graph's side (namespace `hiors`)."""

    def __init__(self, ctx, command_topic, command_type):
        self.driver = Node("fake_driver", context=ctx)
        self.graph = Node("graph_probe", namespace=NS, context=ctx)
        self.commands, self.states, self.diags = [], [], []
        self.pub_driver_js = self.driver.create_publisher(
            JointState, "/joint_states", topics.profile(topics.QOS_SENSOR)
        )
        self.sub_cmd = self.driver.create_subscription(
            command_type, command_topic, self.commands.append, topics.profile(topics.QOS_DEFAULT, depth=100)
        )
        self.pub_cmd = self.graph.create_publisher(JointState, topics.CMD_JOINT, topics.qos(topics.CMD_JOINT))
        self.sub_js = self.graph.create_subscription(
            JointState, topics.JOINT_STATES, self.states.append, topics.qos(topics.JOINT_STATES, depth=100)
        )
        self.graph.create_subscription(
            DiagnosticArray, topics.DIAGNOSTICS, self.diags.append, topics.qos(topics.DIAGNOSTICS)
        )

    def command(self, values: dict) -> None:
        self.pub_cmd.publish(JointState(name=list(values), position=[float(v) for v in values.values()]))

    def count(self, key):
        for d in reversed(self.diags):
            for kv in d.status[0].values:
                if kv.key == key:
                    return int(kv.value)
        return None

    def destroy(self):
        self.driver.destroy_node()
        self.graph.destroy_node()


def driver_state(positions: dict) -> JointState:
    js = JointState(name=list(positions), position=[float(v) for v in positions.values()])
    js.header.stamp.sec, js.header.stamp.nanosec = 1234, 5678
    return js


def test_the_driver_state_reaches_the_graph_and_only_safe_commands_reach_the_driver():
    with ros_context() as ctx:
        node = bridge(ctx)
        sides = Sides(ctx, "/forward_position_controller/commands", Float64MultiArray)
        try:
            with spinning([node, sides.driver, sides.graph], context=ctx):
                wait_for_subscribers(sides.pub_driver_js, timeout=WAIT)
                wait_for_subscribers(sides.pub_cmd, timeout=WAIT)
                wait_for_publishers(sides.sub_js, timeout=WAIT)
                wait_for_publishers(sides.sub_cmd, timeout=WAIT)

                # The driver's state, in its own names and order, with a joint the robot does not have.
                measured = {n: 0.01 * (i + 1) for i, n in enumerate(DRIVER_NAMES)}
                measured["finger_l"], measured["head_pan"] = 0.02, 7.0
                sides.pub_driver_js.publish(driver_state(dict(reversed(measured.items()))))
                wait_for(lambda: sides.states, WAIT, "the graph's joint_states")
                js = sides.states[-1]
                assert list(js.name) == list(XTRAINER.joint_names)
                assert js.header.frame_id == XTRAINER.base_frame
                assert (js.header.stamp.sec, js.header.stamp.nanosec) == (1234, 5678)  # the driver's own stamp
                state = dict(zip(js.name, js.position, strict=True))
                assert state["left_joint1"] == pytest.approx(0.01) and state["right_joint6"] == pytest.approx(0.12)
                assert state["left_gripper"] == pytest.approx(0.25)  # 0.02 m of 0.08

                # A command of the arbiter (robot names, rad, openings) goes out in the controller's order and units.
                good = {n: 0.1 for n in XTRAINER.joint_names}
                good["left_joint2"], good["left_gripper"], good["right_gripper"] = -0.4, 0.5, 1.0
                # Then what must never reach the driver, then the good command again: the topic keeps order.
                bad = [
                    {**good, "left_joint3": math.nan},
                    {**good, "right_joint1": math.inf},
                    {**good, "left_joint1": XTRAINER.arm("left").upper[0] + 0.01},
                    {**good, "left_gripper": -0.2},
                    {**good, "elbow": 0.0},
                ]
                sides.command(good)
                wait_for(lambda: len(sides.commands) == 1, WAIT, "the first driver command")
                for b in bad:
                    sides.command(b)
                sides.pub_cmd.publish(JointState(name=["left_joint1", "left_joint2"], position=[0.0]))
                sides.command(good)
                wait_for(lambda: len(sides.commands) == 2, WAIT, "the second good command")
                wait_for(lambda: sides.count("refused_commands") == len(bad) + 1, WAIT, "refusals on /diagnostics")
                assert node.counts["forwarded"] == 2
                sides.command({"left_gripper": 0.5})  # another controller's command: skipped, not sent
                wait_for(lambda: node.counts["skipped_commands"] == 1, WAIT, "a skipped command")
        finally:
            node.destroy_node()
            sides.destroy()
    expected = [good[n] for n in XTRAINER.joint_names]
    by_driver_name = dict(zip(DRIVER_NAMES, expected, strict=True))
    by_driver_name["finger_l"] = 0.04  # opening 0.5 of 0.08 m
    by_driver_name["right_gripper"] = 0.08
    for cmd in sides.commands:
        np.testing.assert_allclose(cmd.data, [by_driver_name[n] for n in CONTROLLER])
    assert len(sides.commands) == 2


def test_a_joint_trajectory_controller_gets_one_point_a_control_period_ahead():
    with ros_context() as ctx:
        topic = "/joint_trajectory_controller/joint_trajectory"
        node = bridge(ctx, command_interface="joint_trajectory", driver_command=topic, driver_joint_states="")
        sides = Sides(ctx, topic, JointTrajectory)
        try:
            with spinning([node, sides.driver, sides.graph], context=ctx):
                wait_for_subscribers(sides.pub_cmd, timeout=WAIT)
                wait_for_publishers(sides.sub_cmd, timeout=WAIT)
                assert sides.pub_driver_js.get_subscription_count() == 0  # driver_joint_states '': relay none
                sides.command({n: 0.2 for n in XTRAINER.joint_names})
                sides.command({**{n: 0.2 for n in XTRAINER.joint_names}, "right_joint4": math.nan})
                sides.command({n: 0.3 for n in XTRAINER.joint_names})
                wait_for(lambda: len(sides.commands) == 2, WAIT, "two trajectories")
                wait_for(lambda: node.counts["refused_commands"] == 1, WAIT, "the NaN command refused")
        finally:
            node.destroy_node()
            sides.destroy()
    first, second = sides.commands
    assert list(first.joint_names) == CONTROLLER
    (point,) = first.points
    assert point.time_from_start.sec == 0 and point.time_from_start.nanosec == int(1e9 / XTRAINER.control_rate_hz)

    def expected(v):  # grippers as finger travel: an opening v of 0.08 m
        return [v * 0.08 if n in ("finger_l", "right_gripper") else v for n in CONTROLLER]

    np.testing.assert_allclose(point.positions, expected(0.2))
    np.testing.assert_allclose(second.points[0].positions, expected(0.3))


def test_a_bridge_whose_driver_topic_is_the_graphs_own_refuses_to_start():
    with ros_context() as ctx:
        with pytest.raises(ConfigError, match="driver's topic /joint_states is the graph's joint_states"):
            DriverBridge(context=ctx, parameter_overrides=[Parameter("robot", value="xtrainer")])
