"""What the device bridge nodes share: each publishes its device's TeleopCommand as the teleop topics the
arbiter (and the recorder) read, exactly as the simulated operator does: PoseStamped deltas on
teleop/ee_delta/<arm> and Joy on teleop/joy (buttons[0] engaged, [1] start, [2] success, [3] failure; axes[0]
gripper trigger), or leader-arm JointState targets on teleop/joint.

The devices (ROS-free) decide what is a command: input they refuse is counted and never published; when the newest
input is older than `max_age_s` a bridge publishes nothing, so the arbiter's teleop watchdog holds the robot.
Callbacks and the timer only move data. The counters go to /diagnostics once a second."""

from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy

from hiors_core import topics

from .teleoperator import TeleopCommand, TeleopDevice, refusal_line


class TeleopBridge(Node):
    """A device bridge: `_start` once its device and publishers are made (pub_delta, pub_joint, pub_joy)."""

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
        reasons = self.device.drain_refusals()
        refused = {k: v for k, v in stats.items() if k in ("rejected", "malformed", "refused") and v}
        if reasons or any(v > self._last_stats.get(k, 0) for k, v in refused.items()):
            self.get_logger().warning(refusal_line(refused, reasons, getattr(self.device, "last_refusal", "")))
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
