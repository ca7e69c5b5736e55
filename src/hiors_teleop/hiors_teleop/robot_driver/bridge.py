"""driver_bridge: an existing robot driver's topics as the graph's robot topics (docs/ROBOT_DRIVER.md).

In: the driver's sensor_msgs/JointState (`driver_joint_states`, e.g. ros2_control's joint_state_broadcaster on
/joint_states) -> out: the graph's `joint_states`, renamed, in the robot's order, grippers as openings 0..1.
In: the arbiter's `command/joint` and `command/gripper` -> out: the driver's command (`driver_command`), a
std_msgs/Float64MultiArray for ros2_control's forward_command_controller or a one-point
trajectory_msgs/JointTrajectory for its joint_trajectory_controller, in the controller's joint order.

The mapping and every check are `mapping.DriverMap` (ROS-free): a command that is non-finite, names an unknown joint
or leaves the robot's joint limits is refused whole and counted, never clamped or forwarded. End-effector commands
(`command/ee_pose/<arm>`) need a driver with a Cartesian interface and are not bridged here. The driver's topics are
absolute by default, so the graph runs in a namespace (`namespace:=hiors`); a bridge whose input would be its own
output refuses to start. Counters go to /diagnostics once a second.
"""

from __future__ import annotations

from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from hiors_core import topics
from hiors_core.errors import BadInputError, ConfigError
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.robots import get_robot

from ..params import DRIVER_BRIDGE
from .mapping import DriverMap, JointStateMerge, Skipped


class DriverBridge(Node):
    def __init__(self, **kwargs):
        super().__init__("driver_bridge", **kwargs)
        p = declare(self, DRIVER_BRIDGE)  # types and ranges: hiors_teleop.params
        self.robot = get_robot(p["robot"])
        self.map = DriverMap.build(
            self.robot, p["joint_map"], p["command_joints"], p["gripper_closed"], p["gripper_open"]
        )
        self.merge = JointStateMerge(self.map)
        self.trajectory = p["command_interface"] == "joint_trajectory"
        period = p["trajectory_time_s"] or 1.0 / self.robot.control_rate_hz
        self.time_from_start = Duration(sec=int(period), nanosec=int(round((period % 1.0) * 1e9)))
        self.counts = {"relayed": 0, "forwarded": 0, "refused_commands": 0, "skipped_commands": 0, "refused_states": 0}
        self._warned: set[str] = set()

        driver_js, driver_cmd = p["driver_joint_states"], p["driver_command"]
        for theirs, ours in ((driver_js, topics.JOINT_STATES), (driver_cmd, topics.CMD_JOINT)):
            if theirs and self.resolve_topic_name(theirs) == self.resolve_topic_name(ours):
                raise ConfigError(
                    f"driver_bridge: the driver's topic {theirs} is the graph's {ours} "
                    f"({self.resolve_topic_name(ours)}): run the graph in a namespace (namespace:=hiors)"
                )
        self.pub_js = self.create_publisher(JointState, topics.JOINT_STATES, topics.qos(topics.JOINT_STATES))
        if driver_js:
            # Best effort takes a reliable publisher's messages too; the newest state is what matters.
            self.create_subscription(JointState, driver_js, self.on_driver_state, topics.profile(topics.QOS_SENSOR))
        self.pub_cmd = None
        if driver_cmd:
            kind = JointTrajectory if self.trajectory else Float64MultiArray
            self.pub_cmd = self.create_publisher(kind, driver_cmd, topics.profile(topics.QOS_DEFAULT))
            for name in (topics.CMD_JOINT, topics.CMD_GRIPPER):
                self.create_subscription(JointState, name, self.on_command, topics.qos(name))
        self.pub_diag = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, topics.qos(topics.DIAGNOSTICS))
        self.create_timer(1.0, self.publish_diagnostics)
        self.get_logger().info(
            f"driver_bridge {self.robot.name}: {driver_js or '-'} -> {self.resolve_topic_name(topics.JOINT_STATES)}; "
            f"{self.resolve_topic_name(topics.CMD_JOINT)} -> {driver_cmd or '-'} ({p['command_interface']}, joints "
            f"{self.map.command_driver_names})"
        )

    def on_driver_state(self, msg: JointState) -> None:
        try:
            state = self.merge.update(msg.name, msg.position, msg.velocity)
        except BadInputError as e:
            self._refuse("refused_states", f"refused driver joint state: {e}")
            return
        if state is None:
            return
        names, position, velocity = state
        out = JointState(name=names, position=position, velocity=velocity)
        stamped = msg.header.stamp.sec or msg.header.stamp.nanosec
        out.header.stamp = msg.header.stamp if stamped else self.get_clock().now().to_msg()
        out.header.frame_id = self.robot.base_frame
        self.pub_js.publish(out)
        self.counts["relayed"] += 1

    def on_command(self, msg: JointState) -> None:
        try:
            values = self.map.command(msg.name, msg.position)
        except Skipped as e:
            self._refuse("skipped_commands", f"command not forwarded: {e}")
            return
        except BadInputError as e:
            self._refuse("refused_commands", f"refused command: {e}")
            return
        data = [float(v) for v in values]  # finite and inside the limits: DriverMap.command refuses anything else
        if self.trajectory:
            out = JointTrajectory(joint_names=self.map.command_driver_names)
            out.points = [JointTrajectoryPoint(positions=data, time_from_start=self.time_from_start)]
        else:
            out = Float64MultiArray(data=data)
        self.pub_cmd.publish(out)
        self.counts["forwarded"] += 1

    def _refuse(self, counter: str, why: str) -> None:
        self.counts[counter] += 1
        if counter not in self._warned:  # the first of each kind at once, then the counts on /diagnostics
            self._warned.add(counter)
            self.get_logger().warning(why)
        else:
            self.get_logger().warning(why, throttle_duration_sec=5.0)

    def publish_diagnostics(self) -> None:
        bad = self.counts["refused_commands"] + self.counts["refused_states"]
        st = DiagnosticStatus(
            name=f"{self.get_fully_qualified_name()}: robot driver bridge", hardware_id=self.get_name()
        )
        st.level = DiagnosticStatus.WARN if bad else DiagnosticStatus.OK
        st.message = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.counts.items())
        st.values = [KeyValue(key=k, value=str(v)) for k, v in self.counts.items()]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)


def main(args=None):
    return run_node(DriverBridge, args)


if __name__ == "__main__":
    main()
