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
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy

from hiors_core import topics
from hiors_core.node_main import run_node
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
    device: TeleopDevice | None = None

    def _param(self, name, default, desc):
        return self.declare_parameter(name, default, ParameterDescriptor(description=desc)).value

    def _start(self, rate_hz: float) -> None:
        self.published = 0
        self._last_stats: dict[str, int] = {}
        self.pub_diag = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
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
        p = self._param
        self.robot = get_robot(p("robot", "tora_one", "robot name"))
        p("task", "", "task (informational)")
        arm = p("arm", "left", "the robot arm the controller drives")
        source = p("source", "webxr", "webxr (page + WebSocket) or topics (Quest2ROS-style absolute pose + Joy)")
        hand = p("hand", "right", "controller hand: right or left")
        scale = float(p("scale", 1.0, "controller motion -> robot motion scale"))
        max_age = float(p("max_age_s", 0.5, "publish nothing once the newest controller input is older (s; 0 = off)"))
        self.pub_delta = self.create_publisher(PoseStamped, topics.TELEOP_EE_DELTA.format(arm=arm), 10)
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, 10)
        self.pub_joint = None
        if source == "webxr":
            self.device = Quest3WebXR(
                host=p("host", "127.0.0.1", "address the page is served on (0.0.0.0 for the LAN, with TLS)"),
                port=int(p("port", 8443, "port of the page and the WebSocket (0 = any free port)")),
                token=p("token", "", "access token ('' = a random one, logged)"),
                hand=hand,
                scale=scale,
                certfile=p("certfile", "", "TLS certificate (https/wss; WebXR needs a secure context on the LAN)"),
                keyfile=p("keyfile", "", "TLS key"),
                max_age_s=max_age,
            )
            self.device.connect()
            self.get_logger().info(f"open {self.device.url} in the Quest 3 browser")
        elif source == "topics":
            self.device = Quest3Topics(scale=scale, max_age_s=max_age)
            self.create_subscription(
                PoseStamped,
                p("pose_topic", f"q2r/{hand}_hand_pose", "absolute controller pose (Quest2ROS)"),
                self.on_pose,
                10,
            )
            self.create_subscription(
                Joy,
                p("joy_topic", f"q2r/{hand}_hand_inputs", "controller buttons and trigger (Quest2ROS)"),
                lambda m: self.device.feed_joy(m.buttons, m.axes),
                10,
            )
        else:
            raise ValueError(f"quest3 source must be 'webxr' or 'topics', got {source!r}")
        self._start(float(p("rate_hz", 50.0, "teleop publishing rate (Hz)")))

    def on_pose(self, m: PoseStamped) -> None:
        p, o = m.pose.position, m.pose.orientation
        self.device.feed_pose([p.x, p.y, p.z], [o.x, o.y, o.z, o.w])


class LeaderArmBridge(_Bridge):
    def __init__(self, **kwargs):
        super().__init__("leader_arm", **kwargs)
        p = self._param
        self.robot = get_robot(p("robot", "xtrainer", "robot name"))
        p("task", "", "task (informational)")
        arm = self.robot.arm(p("arm", "left", "the follower arm"))
        names = tuple(
            p("joint_names", list(arm.joint_names) + [arm.gripper_name], "follower joints the leader commands")
        )
        lower = list(self.robot.joint_lower)
        upper = list(self.robot.joint_upper)
        index = {n: i for i, n in enumerate(self.robot.joint_names)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ValueError(f"leader arm: robot {self.robot.name!r} has no joints {unknown}")
        mapping = LeaderArmMapping(
            names=names,
            offsets=tuple(p("offsets", [0.0] * len(names), "target = sign * raw + offset (rad)")),
            signs=tuple(p("signs", [1.0] * len(names), "+1 or -1 per joint")),
            lower=tuple(lower[index[n]] for n in names),
            upper=tuple(upper[index[n]] for n in names),
            max_excess=float(
                p("max_excess_rad", 0.2, "targets this far beyond a joint limit are clipped; further out refused")
            ),
        )
        source = p("source", "topic", "topic (raw JointState) or dynamixel (servos on a serial port)")
        max_age = float(p("max_age_s", 0.5, "publish nothing once the newest reading is older (s; 0 = off)"))
        self.pub_joint = self.create_publisher(JointState, topics.TELEOP_JOINT, 10)
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, 10)
        self.pub_delta = None
        if source == "topic":
            self.device = JointStateLeader(
                mapping, tuple(p("raw_names", list(names), "names of the raw readings, in joint order")), max_age
            )
            self.create_subscription(
                JointState,
                p("input_topic", "leader/joint_states", "raw leader readings"),
                lambda m: self.device.feed(m.name, m.position),
                10,
            )
        elif source == "dynamixel":
            self.device = DynamixelLeader(
                mapping,
                p("port", "/dev/ttyUSB0", "serial port of the servos"),
                tuple(p("ids", list(range(1, len(names) + 1)), "servo ids in joint order")),
                int(p("baudrate", 1_000_000, "serial baud rate")),
            )
            self.device.connect()
        else:
            raise ValueError(f"leader_arm source must be 'topic' or 'dynamixel', got {source!r}")
        # Engagement: a foot pedal / button as a Joy (buttons[0]) on engage_topic, or always engaged.
        self.device.engaged = bool(p("always_engaged", False, "engaged without a pedal"))
        self.create_subscription(
            Joy, p("engage_topic", "leader/engage", "pedal / button (Joy buttons[0] = engaged)"), self.on_engage, 10
        )
        self._start(float(p("rate_hz", 50.0, "teleop publishing rate (Hz)")))

    def on_engage(self, msg: Joy) -> None:
        self.device.engaged = bool(msg.buttons and msg.buttons[0])


def quest3_main(args=None):
    return run_node(Quest3Bridge, args)


def leader_main(args=None):
    return run_node(LeaderArmBridge, args)
