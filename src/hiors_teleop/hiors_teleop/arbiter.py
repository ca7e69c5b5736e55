"""The arbiter: the only node that commands the robot. It wires messages into `ArbiterCore` (pure, tested without
ROS) and publishes what the core decides: robot commands, ExecutedCommand, ControlState and rviz markers."""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool, Header, String
from visualization_msgs.msg import MarkerArray

from hiors_core import topics
from hiors_core.convert import stamp_to_ns
from hiors_core.convert_ros import time_msg
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.robots import MODE_EE_POSE, get_robot
from hiors_core.schema import AUTHORITY_HUMAN
from hiors_core.tasks import task_or_default
from hiors_msgs.msg import ActionChunk, ControlState, ExecutedCommand

from .authority import ArbiterConfig, ArbiterCore, Chunk, Sampler
from .markers import build_markers
from .params import ARBITER
from .safety import Limits, layout_for


class Arbiter(Node):
    def __init__(self, **kwargs):
        super().__init__("arbiter", **kwargs)
        p = declare(self, ARBITER)  # types and ranges: hiors_teleop.params
        self.robot = get_robot(p["robot"])
        # Control mode, commanded arm and human input device default to the task's (hiors_core.tasks).
        task = task_or_default(self.robot.name, p["task"])
        mode = p["control_mode"] or task.control_mode
        self.arm = p["arm"] or task.commanded_arm or "left"
        rate = p["control_rate_hz"] or self.robot.control_rate_hz
        self.layout = layout_for(self.robot, mode, self.arm)
        self.limits = Limits.for_robot(self.robot, self.layout, rate)
        k_auto = p["k_auto"]
        sampler = Sampler(
            mode=p["sampling_mode"],
            human_period=p["human_sample_period"],
            policy_period=p["policy_sample_period"],
            k_auto=k_auto,
        )
        self.cfg = ArbiterConfig(
            control_rate_hz=rate,
            k_auto=k_auto,
            policy_timeout_steps=p["policy_timeout_steps"],
            teleop_timeout_s=p["teleop_timeout_s"],
            human_source=p["human_source"] or task.human_source,
            sampler=sampler,
            chunk_schedule=p["chunk_schedule"],
            request_margin_steps=p["request_margin_steps"],
        )
        self.trigger_closes = p["trigger_closes"]
        self.marker_rate = p["marker_rate_hz"]
        self.core = ArbiterCore(self.limits, self.cfg)
        self.lock = threading.Lock()
        self.ee_mode = self.layout.mode == MODE_EE_POSE
        self._measured_joints: dict[str, float] = {}
        self._measured_ee: np.ndarray | None = None
        self._trail: deque = deque(maxlen=p["trail_length"])
        self._authority_now = 0
        self._predicted: np.ndarray | None = None

        inputs = MutuallyExclusiveCallbackGroup()
        control = MutuallyExclusiveCallbackGroup()
        slow = MutuallyExclusiveCallbackGroup()
        # Outputs.
        if self.ee_mode:
            self.pub_ee = self.create_publisher(
                PoseStamped, topics.CMD_EE_POSE.format(arm=self.arm), topics.qos(topics.CMD_EE_POSE)
            )
            self.pub_grip = self.create_publisher(JointState, topics.CMD_GRIPPER, topics.qos(topics.CMD_GRIPPER))
        else:
            self.pub_joint = self.create_publisher(JointState, topics.CMD_JOINT, topics.qos(topics.CMD_JOINT))
        self.pub_exec = self.create_publisher(ExecutedCommand, topics.EXECUTED, topics.qos(topics.EXECUTED))
        self.pub_state = self.create_publisher(ControlState, topics.CONTROL_STATE, topics.qos(topics.CONTROL_STATE))
        self.pub_markers = self.create_publisher(MarkerArray, topics.MARKERS, topics.qos(topics.MARKERS))
        self.pub_request = self.create_publisher(Header, topics.CHUNK_REQUEST, topics.qos(topics.CHUNK_REQUEST))
        # Inputs.
        sub = self.create_subscription
        sub(ActionChunk, topics.ACTION_CHUNK, self.on_chunk, topics.qos(topics.ACTION_CHUNK), callback_group=inputs)
        sub(Joy, topics.TELEOP_JOY, self.on_joy, topics.qos(topics.TELEOP_JOY), callback_group=inputs)
        sub(
            PoseStamped,
            topics.TELEOP_EE_DELTA.format(arm=self.arm),
            self.on_ee_delta,
            topics.qos(topics.TELEOP_EE_DELTA),
            callback_group=inputs,
        )
        sub(
            JointState,
            topics.TELEOP_JOINT,
            self.on_teleop_joint,
            topics.qos(topics.TELEOP_JOINT),
            callback_group=inputs,
        )
        sub(Bool, topics.ESTOP, self.on_estop, topics.qos(topics.ESTOP), callback_group=inputs)
        sub(
            JointState,
            topics.JOINT_STATES,
            self.on_joint_states,
            topics.qos(topics.JOINT_STATES),
            callback_group=inputs,
        )
        sub(
            PoseStamped,
            topics.EE_POSE.format(arm=self.arm),
            self.on_ee_pose,
            topics.qos(topics.EE_POSE),
            callback_group=inputs,
        )
        sub(
            String,
            topics.EPISODE_STATUS,
            self.on_episode_status,
            topics.qos(topics.EPISODE_STATUS),
            callback_group=inputs,
        )
        sub(Header, topics.RESYNC, self.on_resync, topics.qos(topics.RESYNC), callback_group=inputs)
        self._episode = ""
        self.create_timer(1.0 / rate, self.on_control, callback_group=control)
        self.create_timer(1.0, self.publish_state, callback_group=slow)
        if self.marker_rate > 0:
            self.create_timer(1.0 / self.marker_rate, self.publish_markers, callback_group=slow)
        self.get_logger().info(
            f"arbiter: robot={self.robot.name} mode={mode} rate={rate} Hz k_auto={k_auto} sampling={sampler.mode}"
        )

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    # input callbacks: only move data into the core ---------------------------------------------------------------
    def on_chunk(self, msg: ActionChunk) -> None:
        now = self.now_ns()
        h, d = int(msg.horizon), int(msg.action_dim)
        with self.lock:
            self.core.chunk_arrived(now)  # taken or refused, it answers the request
            if msg.control_mode != self.layout.mode:
                why = f"refused chunk: control mode {msg.control_mode}, expected {self.layout.mode}"
                self.core.refuse(why)
            elif h <= 0 or d != self.limits.dim or len(msg.actions) != h * d:
                why = f"refused chunk: wrong dimension {h}x{d} with {len(msg.actions)} values"
                self.core.refuse(why)
            elif not math.isfinite(msg.dt):
                why = f"refused chunk: non-finite dt {msg.dt}"
                self.core.refuse(why)
            else:
                why = self._offer(msg, h, d, now)
            ask = self.core.poll_request(now)
        if ask:
            self._request_chunk()
        if why:
            self.get_logger().warn(why, throttle_duration_sec=2.0)
            self.publish_state()

    def _offer(self, msg: ActionChunk, h: int, d: int, now: int) -> str:
        actions = np.asarray(msg.actions, dtype=np.float64).reshape(h, d)
        names = list(msg.action_names)
        if names and names != list(self.limits.names):
            if sorted(names) != sorted(self.limits.names):
                why = f"refused chunk: action names {names[:3]}... do not match the layout"
                self.core.refuse(why)
                return why
            actions = actions[:, [names.index(n) for n in self.limits.names]]
        chunk = Chunk(actions, stamp_to_ns(msg.header.stamp), int(round(msg.dt * 1e9)), int(msg.policy_version))
        why = self.core.offer_chunk(chunk, now)
        if not why and self.ee_mode:
            self._predicted = self.core.executor.pending.actions[:, :3].copy()
        return why

    def on_joy(self, msg: Joy) -> None:
        engaged = len(msg.buttons) > 0 and bool(msg.buttons[0])
        grip = None
        if len(msg.axes) > 0:
            trig = float(msg.axes[0])
            grip = 1.0 - trig if self.trigger_closes else trig
        with self.lock:
            self.core.human_joy(self.now_ns(), engaged, grip)

    def on_ee_delta(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        with self.lock:
            self.core.human_ee_delta(self.now_ns(), [p.x, p.y, p.z], [o.x, o.y, o.z, o.w])

    def on_teleop_joint(self, msg: JointState) -> None:
        with self.lock:
            self.core.human_joint(self.now_ns(), list(msg.name), list(msg.position))

    def on_episode_status(self, msg: String) -> None:
        # A new episode starts after the scene was reset (in simulation the twin jumps home): hold where the robot
        # is now, not where the last episode left the command, or the first hold would drag the arm back.
        if msg.data and msg.data != self._episode:
            self._resync()
            self.get_logger().info(f"episode {msg.data}: holding at the measured pose")
        self._episode = msg.data

    def on_resync(self, msg: Header) -> None:
        self._resync()
        self.get_logger().info(
            f"the robot was moved at t={stamp_to_ns(msg.stamp) / 1e9:.2f}s: holding at its measured pose"
        )

    def _resync(self) -> None:
        # Measurements cached from before the move would be held to as well.
        self._measured_joints.clear()
        self._measured_ee = None
        with self.lock:
            self.core.resync(self.now_ns())

    def on_estop(self, msg: Bool) -> None:
        with self.lock:
            changed = self.core.estop != bool(msg.data)
            self.core.set_estop(bool(msg.data))
        if changed:
            self.get_logger().warn(f"e-stop {'ENGAGED' if msg.data else 'released'}")
            self.publish_state()

    def on_joint_states(self, msg: JointState) -> None:
        self._measured_joints.update(zip(msg.name, msg.position, strict=False))
        self._update_measured()

    def on_ee_pose(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        self._measured_ee = np.array([p.x, p.y, p.z, o.x, o.y, o.z, o.w])
        self._trail.append((self._measured_ee[:3].copy(), self._authority_now))
        self._update_measured()

    def _update_measured(self) -> None:
        if self.ee_mode:
            if self._measured_ee is None:
                return
            grip = self._measured_joints.get(self.robot.arm(self.arm).gripper_name, 1.0)
            vec = np.r_[self._measured_ee, grip]
        else:
            if not all(n in self._measured_joints for n in self.limits.names):
                return
            vec = np.array([self._measured_joints[n] for n in self.limits.names])
        with self.lock:
            self.core.set_measured(vec)

    # the control loop ----------------------------------------------------------------------------------------------
    def on_control(self) -> None:
        now = self.now_ns()
        with self.lock:
            r = self.core.tick(now)
        if r is None:
            return
        self._authority_now = r.authority
        self._send(r.action, now)
        if r.request_chunk:
            self._request_chunk()
        msg = ExecutedCommand(
            step=r.step,
            authority=r.authority,
            source=r.source,
            control_mode=self.layout.mode,
            action_names=list(self.limits.names),
            action=r.action.astype(np.float32).tolist(),
            policy_version=r.policy_version,
            clamped=r.clamped,
            is_sample=r.is_sample,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_exec.publish(msg)
        if r.changed:
            self.publish_state()

    def _request_chunk(self) -> None:
        with self.lock:
            floor = self.core.request_floor_ns()
        self.pub_request.publish(Header(stamp=time_msg(floor), frame_id=self.robot.base_frame))

    def _send(self, a: np.ndarray, now_ns: int) -> None:
        stamp = self.get_clock().now().to_msg()
        if self.ee_mode:
            pose = PoseStamped()
            pose.header.stamp = stamp
            pose.header.frame_id = self.robot.base_frame
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in a[:3])
            o = pose.pose.orientation
            o.x, o.y, o.z, o.w = (float(v) for v in a[3:7])
            self.pub_ee.publish(pose)
            grip = JointState(name=[self.robot.arm(self.arm).gripper_name], position=[float(a[7])])
            grip.header.stamp = stamp
            self.pub_grip.publish(grip)
        else:
            cmd = JointState(name=list(self.limits.names), position=[float(v) for v in a])
            cmd.header.stamp = stamp
            self.pub_joint.publish(cmd)

    def publish_state(self) -> None:
        with self.lock:
            c = self.core
            msg = ControlState(
                authority=c.authority,
                source=c.source,
                estop=c.estop,
                reason=c.reason,
                episode_id="",
                step=c.step,
                sampling_rate_hz=float(c.sampling_rate_hz()),
                policy_version=c.policy_version,
                refused_commands=c.refused,
                clamped_commands=c.clamped,
            )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_state.publish(msg)

    def publish_markers(self) -> None:
        with self.lock:
            target = None if self.core.last_cmd is None else self.core.last_cmd.copy()
            authority, source = self.core.authority, self.core.source
            predicted = self._predicted if authority != AUTHORITY_HUMAN else None
        self.pub_markers.publish(
            build_markers(
                frame=self.robot.base_frame,
                stamp=self.get_clock().now().to_msg(),
                trail=list(self._trail),
                predicted=predicted,
                target=target if self.ee_mode else None,
                authority=authority,
                source=source,
            )
        )


def main(args=None):
    return run_node(Arbiter, args, threads=3)


if __name__ == "__main__":
    main()
