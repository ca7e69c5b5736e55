"""`sim_operator`: the simulated operator (see `operator.py`) on ROS 2, driving through the real devices' topics.

Subscribes to the privileged task state (`sim/task_state`); publishes `teleop/joy` on every state message and,
while engaged, `teleop/ee_delta/<arm>` (Tora One, relative motion since clutch engage, steered by eye: `QuestHand`) or
`teleop/joint` (X-Trainer leader arm, absolute joints). Joy layout and conventions: `hiors_sim.operator`.
"""

from __future__ import annotations

import json

from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import String

from hiors_core import topics
from hiors_core.node_main import run_node

from .operator import (
    AXIS_TRIGGER,
    BUTTON_CLUTCH,
    BUTTON_FAILURE,
    BUTTON_SUCCESS,
    OperatorConfig,
    QuestHand,
    SimOperator,
    is_ee_task,
    trigger_from_opening,
)
from .tasks import make_task, tasks_for


class SimOperatorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sim_operator", **kwargs)

        def p(name, default, desc):
            return self.declare_parameter(name, default, ParameterDescriptor(description=desc)).value

        robot = p("robot", "tora_one", "robot: tora_one or xtrainer")
        task = p("task", "", "task name ('' = the robot's first task)") or tasks_for(robot)[0]
        self.cfg = OperatorConfig(
            mode=p("mode", "intervene", "intervene | never | demo (always in control)"),
            intervention_prob=float(p("intervention_prob", 1.0, "probability of stepping in on a detected problem")),
            reaction_delay_s=float(p("reaction_delay_s", 0.4, "delay between noticing a problem and taking over (s)")),
            stall_s=float(p("stall_s", 4.0, "no progress for this long counts as a stall (s)")),
            drift_m=float(
                p("drift_m", 0.15, "moving this much further from the goal than the best so far is drift (m)")
            ),
            near_object_m=float(
                p("near_object_m", 0.07, "take over when the policy's hand is this close to an ungrasped object (m)")
            ),
            min_takeover_s=float(p("min_takeover_s", 1.0, "shortest takeover (s)")),
            hand_noise_m=float(p("hand_noise_m", 0.002, "std of the hand's position noise per step (m)")),
            seed=int(p("seed", 0, "seed of the operator's random choices")),
        )
        self.episode_buttons = bool(
            p("episode_buttons", False, "press success/failure buttons at the end of an episode")
        )
        self.task = make_task(task)
        if self.task.robot.name != robot:
            raise ValueError(f"task {task!r} is not a task of {robot!r}: {tasks_for(robot)}")
        self.op = SimOperator(self.task, self.cfg)
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, 10)
        self.ee_mode = is_ee_task(self.task)
        if self.ee_mode:
            self.pub_delta = self.create_publisher(PoseStamped, topics.TELEOP_EE_DELTA.format(arm=self.task.arm), 10)
        else:
            self.pub_joint = self.create_publisher(JointState, topics.TELEOP_JOINT, 10)
        self.create_subscription(String, topics.SIM_TASK_STATE, self._on_state, 10)
        self.hand = QuestHand()
        self._hand_engaged = False
        self._last_key = None
        self._ended = False
        self.get_logger().info(f"simulated operator for {robot}/{task}, mode {self.cfg.mode}")

    def _on_state(self, msg: String):
        st = json.loads(msg.data)
        key = (st.get("seed"), st.get("cell"))
        if key != self._last_key or st["step"] < getattr(self, "_last_step", 0):
            self.op.reset()
            self._ended = False
            self._hand_engaged = False
        self._last_key, self._last_step = key, st["step"]
        out = self.op.update(st)
        if out.reason:
            self.get_logger().info(f"t={st['time']:.2f}s {out.reason}")
        joy = Joy(axes=[0.0], buttons=[0, 0, 0, 0])
        joy.header.stamp = self.get_clock().now().to_msg()
        if out.engaged and out.action is not None:
            joy.buttons[BUTTON_CLUTCH] = 1
            a = out.action
            if self.ee_mode:
                if not self._hand_engaged:
                    self.hand.reset()  # clutch pressed: the relative command starts at zero
                    self._hand_engaged = True
                ee = st["proprio"]["ee"][self.task.arm]
                dp, dq = self.hand.update(a[:3], a[3:7], ee["pos"], ee["quat_xyzw"])
                pm = PoseStamped()
                pm.header = joy.header
                pm.header.frame_id = self.task.robot.base_frame
                pm.pose.position.x, pm.pose.position.y, pm.pose.position.z = (float(v) for v in dp)
                pm.pose.orientation.x, pm.pose.orientation.y, pm.pose.orientation.z, pm.pose.orientation.w = (
                    float(v) for v in dq
                )
                self.pub_delta.publish(pm)
                joy.axes[AXIS_TRIGGER] = trigger_from_opening(a[7])
            else:
                js = JointState(name=list(self.task.layout.names), position=[float(v) for v in a])
                js.header = joy.header
                self.pub_joint.publish(js)
                grips = [
                    float(v) for n, v in zip(self.task.layout.names, a, strict=True) if n == f"{self.task.arm}_gripper"
                ]
                joy.axes[AXIS_TRIGGER] = trigger_from_opening(grips[0] if grips else 1.0)
        else:
            self._hand_engaged = False
        if self.episode_buttons and not self._ended and (st.get("success") or st.get("failed") or st.get("timed_out")):
            self._ended = True
            joy.buttons[BUTTON_SUCCESS if st.get("success") else BUTTON_FAILURE] = 1
        self.pub_joy.publish(joy)


def main(args=None):
    return run_node(SimOperatorNode, args, threads=1)


if __name__ == "__main__":
    main()
