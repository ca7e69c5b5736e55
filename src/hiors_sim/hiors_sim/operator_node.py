"""`sim_operator`: the simulated operator (see `operator.py`) on ROS 2, driving through the real devices' topics.

Subscribes to the privileged task state (`sim/task_state`); publishes `teleop/joy` on every state message and,
while engaged, `teleop/ee_delta/<arm>` (Tora One, relative motion since clutch engage, steered by eye: `QuestHand`) or
`teleop/joint` (X-Trainer leader arm, absolute joints). Joy layout and conventions: `hiors_sim.operator`.
"""

from __future__ import annotations

import json

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import String

from hiors_core import topics
from hiors_core.node_main import run_node
from hiors_core.params import declare

from .operator import KNOBS, OperatorConfig
from .operator_device import OperatorDevice
from .params import SIM_OPERATOR
from .tasks import make_task, tasks_for


class SimOperatorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sim_operator", **kwargs)
        p = declare(self, SIM_OPERATOR)
        robot = p["robot"]
        task = p["task"] or tasks_for(robot)[0]
        self.cfg = OperatorConfig(**{k: p[k] for k in KNOBS})  # every knob a parameter (hiors_sim.params)
        self.episode_buttons = p["episode_buttons"]
        self.task = make_task(task)
        if self.task.robot.name != robot:
            raise ValueError(f"task {task!r} is not a task of {robot!r}: {tasks_for(robot)}")
        self.device = OperatorDevice(self.task, self.cfg, self.episode_buttons)
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, topics.qos(topics.TELEOP_JOY))
        if self.device.ee_mode:
            self.pub_delta = self.create_publisher(
                PoseStamped, topics.TELEOP_EE_DELTA.format(arm=self.task.arm), topics.qos(topics.TELEOP_EE_DELTA)
            )
        else:
            self.pub_joint = self.create_publisher(JointState, topics.TELEOP_JOINT, topics.qos(topics.TELEOP_JOINT))
        self.create_subscription(String, topics.SIM_TASK_STATE, self._on_state, topics.qos(topics.SIM_TASK_STATE))
        self.get_logger().info(f"simulated operator for {robot}/{task}, mode {self.cfg.mode}")

    def _on_state(self, msg: String):
        st = json.loads(msg.data)
        out = self.device.update(st)  # the operator's decision and the device encoding (operator_device.py)
        if out.reason:
            self.get_logger().info(f"t={st['time']:.2f}s {out.reason}")
        joy = Joy(axes=out.axes, buttons=out.buttons)
        joy.header.stamp = self.get_clock().now().to_msg()
        if out.ee_delta is not None:
            dp, dq = out.ee_delta
            pm = PoseStamped()
            pm.header = joy.header
            pm.header.frame_id = self.task.robot.base_frame
            pm.pose.position.x, pm.pose.position.y, pm.pose.position.z = (float(v) for v in dp)
            pm.pose.orientation.x, pm.pose.orientation.y, pm.pose.orientation.z, pm.pose.orientation.w = (
                float(v) for v in dq
            )
            self.pub_delta.publish(pm)
        elif out.joint_positions is not None:
            js = JointState(name=list(out.joint_names), position=[float(v) for v in out.joint_positions])
            js.header = joy.header
            self.pub_joint.publish(js)
        self.pub_joy.publish(joy)


def main(args=None):
    return run_node(SimOperatorNode, args, threads=1)


if __name__ == "__main__":
    main()
