"""Device bridge nodes: publish a device's TeleopCommand as the teleop topics the arbiter (and the recorder)
read, exactly as the simulated operator does: PoseStamped deltas on teleop/ee_delta/<arm> and Joy on teleop/joy
(buttons[0] engaged, [1] start, [2] success, [3] failure; axes[0] gripper trigger), or leader-arm JointState
targets on teleop/joint."""

from __future__ import annotations

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy

from hiors_core import topics
from hiors_core.robots import get_robot

from .devices import (
    DynamixelLeader,
    JointStateLeader,
    LeaderArmMapping,
    Quest3Topics,
    Quest3WebXR,
    TeleopCommand,
    TeleopDevice,
)


class _Bridge(Node):
    device: TeleopDevice

    def publish_command(self, cmd: TeleopCommand) -> None:
        stamp = self.get_clock().now().to_msg()
        joy = Joy(buttons=[int(cmd.engaged), *(int(b) for b in cmd.buttons)], axes=[float(cmd.trigger or 0.0)])
        joy.header.stamp = stamp
        if cmd.ee_delta is not None:
            dp, dq = cmd.ee_delta
            m = PoseStamped()
            m.header.stamp = stamp
            m.header.frame_id = self.robot.base_frame
            m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in dp)
            o = m.pose.orientation
            o.x, o.y, o.z, o.w = (float(v) for v in dq)
            self.pub_delta.publish(m)
        if cmd.joints is not None:
            js = JointState(name=list(cmd.joints), position=list(cmd.joints.values()))
            js.header.stamp = stamp
            self.pub_joint.publish(js)
        self.pub_joy.publish(joy)

    def on_timer(self) -> None:
        cmd = self.device.read()
        if cmd is not None:
            self.publish_command(cmd)


class Quest3Bridge(_Bridge):
    def __init__(self, **kwargs):
        super().__init__("quest3", **kwargs)
        p = self.declare_parameter
        self.robot = get_robot(p("robot", "tora_one").value)
        p("task", "")
        arm = p("arm", "left").value
        source = p("source", "webxr").value  # "webxr" or "topics" (Quest2ROS-style absolute controller pose + Joy)
        hand = p("hand", "right").value
        scale = float(p("scale", 1.0).value)
        self.pub_delta = self.create_publisher(PoseStamped, topics.TELEOP_EE_DELTA.format(arm=arm), 10)
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, 10)
        self.pub_joint = None
        if source == "webxr":
            self.device = Quest3WebXR(
                host=p("host", "127.0.0.1").value,
                port=int(p("port", 8443).value),
                token=p("token", "").value,
                hand=hand,
                scale=scale,
                certfile=p("certfile", "").value,
                keyfile=p("keyfile", "").value,
            )
            self.device.connect()
            self.get_logger().info(f"open {self.device.url} in the Quest 3 browser")
        elif source == "topics":
            self.device = Quest3Topics(scale=scale)
            self.create_subscription(
                PoseStamped,
                p("pose_topic", f"q2r/{hand}_hand_pose").value,
                lambda m: self.device.feed_pose(
                    [m.pose.position.x, m.pose.position.y, m.pose.position.z],
                    [m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w],
                ),
                10,
            )
            self.create_subscription(
                Joy,
                p("joy_topic", f"q2r/{hand}_hand_inputs").value,
                lambda m: self.device.feed_joy(m.buttons, m.axes),
                10,
            )
        else:
            raise ValueError(f"quest3 source must be 'webxr' or 'topics', got {source!r}")
        self.create_timer(1.0 / float(p("rate_hz", 50.0).value), self.on_timer)


class LeaderArmBridge(_Bridge):
    def __init__(self, **kwargs):
        super().__init__("leader_arm", **kwargs)
        p = self.declare_parameter
        self.robot = get_robot(p("robot", "xtrainer").value)
        p("task", "")
        arm = self.robot.arm(p("arm", "left").value)
        names = tuple(p("joint_names", list(arm.joint_names) + [arm.gripper_name]).value)
        lower = list(self.robot.joint_lower)
        upper = list(self.robot.joint_upper)
        index = {n: i for i, n in enumerate(self.robot.joint_names)}
        mapping = LeaderArmMapping(
            names=names,
            offsets=tuple(p("offsets", [0.0] * len(names)).value),
            signs=tuple(p("signs", [1.0] * len(names)).value),
            lower=tuple(lower[index[n]] for n in names),
            upper=tuple(upper[index[n]] for n in names),
        )
        source = p("source", "topic").value  # "topic" or "dynamixel"
        self.pub_joint = self.create_publisher(JointState, topics.TELEOP_JOINT, 10)
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, 10)
        self.pub_delta = None
        if source == "topic":
            self.device = JointStateLeader(mapping, tuple(p("raw_names", list(names)).value))
            self.create_subscription(
                JointState,
                p("input_topic", "leader/joint_states").value,
                lambda m: self.device.feed(m.name, m.position),
                10,
            )
        elif source == "dynamixel":
            self.device = DynamixelLeader(
                mapping,
                p("port", "/dev/ttyUSB0").value,
                tuple(p("ids", list(range(1, len(names) + 1))).value),
                int(p("baudrate", 1_000_000).value),
            )
            self.device.connect()
        else:
            raise ValueError(f"leader_arm source must be 'topic' or 'dynamixel', got {source!r}")
        # Engagement: a foot pedal / button as a Joy (buttons[0]) on engage_topic, or always engaged.
        self.device.engaged = bool(p("always_engaged", False).value)
        self.create_subscription(Joy, p("engage_topic", "leader/engage").value, self.on_engage, 10)
        self.create_timer(1.0 / float(p("rate_hz", 50.0).value), self.on_timer)

    def on_engage(self, msg: Joy) -> None:
        self.device.engaged = bool(msg.buttons and msg.buttons[0])


def _run(cls, args=None):
    rclpy.init(args=args)
    node = None
    try:
        node = cls()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.device.disconnect()
            node.destroy_node()
        rclpy.try_shutdown()


def quest3_main(args=None):
    _run(Quest3Bridge, args)


def leader_main(args=None):
    _run(LeaderArmBridge, args)
