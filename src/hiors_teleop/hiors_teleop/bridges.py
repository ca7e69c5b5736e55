"""Device bridge nodes: publish a device's TeleopCommand as the teleop topics the arbiter (and the recorder)
read, exactly as the simulated operator does: PoseStamped deltas on teleop/ee_delta/<arm> and Joy on teleop/joy
(buttons[0] engaged, [1] start, [2] success, [3] failure; axes[0] gripper trigger), or leader-arm JointState
targets on teleop/joint.

The devices (`devices.py`, ROS-free) decide what is a command: input they refuse (no token, malformed packets or
poses, leader readings out of limits or NaN) is counted and never published; when the newest input is older than
`max_age_s` a bridge publishes nothing, so the arbiter's teleop watchdog holds the robot. Callbacks and the timer
only move data. The counters go to /diagnostics once a second."""

from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy

from hiors_core import topics
from hiors_core.node_main import run_node
from hiors_core.params import declare
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
from .params import LEADER_ARM, QUEST3


class _Bridge(Node):
    device: TeleopDevice | None = None

    def _start(self, rate_hz: float) -> None:
        self.published = 0
        self._last_stats: dict[str, int] = {}
        self.pub_diag = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, topics.qos(topics.DIAGNOSTICS))
        self.create_timer(1.0 / rate_hz, self.on_timer)
        self.create_timer(1.0, self.publish_diagnostics)

    def publish_command(self, cmd: TeleopCommand) -> None:
        stamp = self.get_clock().now().to_msg()
        trigger = float(cmd.trigger or 0.0)  # 0 released .. 1 pressed, whatever the device says
        trigger = min(max(trigger, 0.0), 1.0) if math.isfinite(trigger) else 0.0
        joy = Joy(buttons=[int(cmd.engaged), *(int(b) for b in cmd.buttons)], axes=[trigger])
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
        self.published += 1

    def on_timer(self) -> None:
        cmd = self.device.read()
        if cmd is not None:
            self.publish_command(cmd)

    def publish_diagnostics(self) -> None:
        stats = self.device.stats()
        refused = {k: v for k, v in stats.items() if k in ("rejected", "malformed", "refused") and v}
        if any(v > self._last_stats.get(k, 0) for k, v in refused.items()):
            why = getattr(self.device, "last_refusal", "")
            self.get_logger().warning(f"refused teleop input: {refused}{'; last: ' + why if why else ''}")
        self._last_stats = stats
        st = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: teleop device", hardware_id=self.get_name())
        st.level = DiagnosticStatus.WARN if refused else DiagnosticStatus.OK
        st.message = f"{self.published} commands published" + (f"; refused {refused}" if refused else "")
        st.values = [KeyValue(key=k, value=str(v)) for k, v in {**stats, "published": self.published}.items()]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)

    def shutdown(self) -> None:
        """Stop the device (the web server's thread, the serial port); also done by destroy_node."""
        if self.device is not None:
            self.device.disconnect()

    def destroy_node(self):
        self.shutdown()
        return super().destroy_node()


class Quest3Bridge(_Bridge):
    def __init__(self, **kwargs):
        super().__init__("quest3", **kwargs)
        p = declare(self, QUEST3)  # types and ranges: hiors_teleop.params
        self.robot = get_robot(p["robot"])
        arm, source, hand, scale, max_age = p["arm"], p["source"], p["hand"], p["scale"], p["max_age_s"]
        self.pub_delta = self.create_publisher(
            PoseStamped, topics.TELEOP_EE_DELTA.format(arm=arm), topics.qos(topics.TELEOP_EE_DELTA)
        )
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, topics.qos(topics.TELEOP_JOY))
        self.pub_joint = None
        if source == "webxr":
            self.device = Quest3WebXR(
                host=p["host"],
                port=p["port"],
                token=p["token"],
                hand=hand,
                scale=scale,
                certfile=p["certfile"],
                keyfile=p["keyfile"],
                max_age_s=max_age,
            )
            self.device.connect()
            self.get_logger().info(f"open {self.device.url} in the Quest 3 browser")
        elif source == "topics":
            self.device = Quest3Topics(scale=scale, max_age_s=max_age)
            self.create_subscription(
                PoseStamped,
                p["pose_topic"] or f"q2r/{hand}_hand_pose",
                self.on_pose,
                topics.profile(topics.QOS_DEFAULT),
            )
            self.create_subscription(
                Joy,
                p["joy_topic"] or f"q2r/{hand}_hand_inputs",
                lambda m: self.device.feed_joy(m.buttons, m.axes),
                topics.profile(topics.QOS_DEFAULT),
            )
        else:
            raise ValueError(f"quest3 source must be 'webxr' or 'topics', got {source!r}")
        self._start(p["rate_hz"])

    def on_pose(self, m: PoseStamped) -> None:
        p, o = m.pose.position, m.pose.orientation
        self.device.feed_pose([p.x, p.y, p.z], [o.x, o.y, o.z, o.w])


class LeaderArmBridge(_Bridge):
    def __init__(self, **kwargs):
        super().__init__("leader_arm", **kwargs)

        def arm_joints(v):
            arm = get_robot(v["robot"]).arm(v["arm"])
            return list(arm.joint_names) + [arm.gripper_name]

        p = declare(  # types and ranges: hiors_teleop.params; the lists' defaults follow the arm's joints
            self,
            LEADER_ARM,
            {
                "joint_names": arm_joints,
                "offsets": lambda v: [0.0] * len(v["joint_names"]),
                "signs": lambda v: [1.0] * len(v["joint_names"]),
                "raw_names": lambda v: list(v["joint_names"]),
                "ids": lambda v: list(range(1, len(v["joint_names"]) + 1)),
            },
        )
        self.robot = get_robot(p["robot"])
        names = tuple(p["joint_names"])
        lower = list(self.robot.joint_lower)
        upper = list(self.robot.joint_upper)
        index = {n: i for i, n in enumerate(self.robot.joint_names)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ValueError(f"leader arm: robot {self.robot.name!r} has no joints {unknown}")
        mapping = LeaderArmMapping(
            names=names,
            offsets=tuple(p["offsets"]),
            signs=tuple(p["signs"]),
            lower=tuple(lower[index[n]] for n in names),
            upper=tuple(upper[index[n]] for n in names),
            max_excess=p["max_excess_rad"],
        )
        source, max_age = p["source"], p["max_age_s"]
        self.pub_joint = self.create_publisher(JointState, topics.TELEOP_JOINT, topics.qos(topics.TELEOP_JOINT))
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, topics.qos(topics.TELEOP_JOY))
        self.pub_delta = None
        if source == "topic":
            self.device = JointStateLeader(mapping, tuple(p["raw_names"]), max_age)
            self.create_subscription(
                JointState,
                p["input_topic"],
                lambda m: self.device.feed(m.name, m.position),
                topics.profile(topics.QOS_DEFAULT),
            )
        elif source == "dynamixel":
            self.device = DynamixelLeader(
                mapping,
                p["port"],
                tuple(p["ids"]),
                p["baudrate"],
            )
            self.device.connect()
        else:
            raise ValueError(f"leader_arm source must be 'topic' or 'dynamixel', got {source!r}")
        # Engagement: a foot pedal / button as a Joy (buttons[0]) on engage_topic, or always engaged.
        self.device.engaged = p["always_engaged"]
        self.create_subscription(Joy, p["engage_topic"], self.on_engage, topics.profile(topics.QOS_DEFAULT))
        self._start(p["rate_hz"])

    def on_engage(self, msg: Joy) -> None:
        self.device.engaged = bool(msg.buttons and msg.buttons[0])


def quest3_main(args=None):
    return run_node(Quest3Bridge, args)


def leader_main(args=None):
    return run_node(LeaderArmBridge, args)
