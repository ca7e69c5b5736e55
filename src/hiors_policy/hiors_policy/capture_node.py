"""capture: cameras + proprioception -> time-aligned hiors_msgs/Observation at a fixed rate.

At each tick the newest joint state is the reference (its stamp becomes Observation.header.stamp). The bundle is
published only when every camera (and, for end-effector tasks, every EE pose) has a sample within `max_skew` of it;
otherwise the tick is dropped and `dropped_stale` counts it, so an old image is never paired with a new state.
A joint state is used at most once. The state layout is `hiors_policy.layout.state_layout(robot, task)`.
With `goal_state` (the twin's goal-state policies only) the state also carries the task's goal entries
(`state_layout(robot, task, goal=True)`), read from the twin's privileged task state (`topics.SIM_TASK_STATE`,
its `goal` values), which must be within `max_skew` of the joint state like every other input: a reset moves the
goal, and an Observation is never built with the previous scene's. Real robots leave it off.
Optionally (real robots) cameras are read from OpenCV devices (`opencv_devices: ["top=0", ...]`, off by default).
"""

from __future__ import annotations

import json
import threading

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from hiors_core import topics
from hiors_core.convert import NS, stamp_to_ns
from hiors_core.convert_ros import image_msg
from hiors_core.errors import ConfigError
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.robots import get_robot
from hiors_msgs.msg import Observation

from .layout import assemble_state, ee_arms, state_layout, task_instruction
from .params import CAPTURE


class CaptureNode(Node):
    def __init__(self, **kwargs):
        super().__init__("capture", **kwargs)
        p = self.p = declare(self, CAPTURE)
        robot, task = str(p["robot"]), str(p["task"])
        rs = get_robot(robot)
        self.robot, self.task = robot, task
        # The task's one instruction (hiors_core.tasks): online episodes are prompted as demonstrations and eval.
        self.instruction = task_instruction(robot, task)
        self.cameras = tuple(c for c in p["cameras"] if c) or rs.cameras
        self.frame_id = str(p["frame_id"]) or rs.base_frame
        self.goal_state = bool(p["goal_state"])
        self.state_names = state_layout(robot, task, goal=self.goal_state)
        if self.goal_state and self.state_names == state_layout(robot, task):
            raise ConfigError(f"goal_state: task {task!r} has no goal entries (hiors_core.tasks goal_names)")
        self.ee_arms = ee_arms(robot, task)
        if float(p["rate_hz"]) <= 0 or float(p["max_skew"]) <= 0:
            raise ConfigError("rate_hz and max_skew must be positive")
        self.max_skew_ns = int(float(p["max_skew"]) * NS)

        self._lock = threading.Lock()
        self.images: dict[str, Image] = {}
        self.joints: JointState | None = None
        self.poses: dict[str, PoseStamped] = {}
        self.task_state: String | None = None  # the twin's latest, parsed only when an Observation is built
        self.last_joint_ns = -1
        self.sequence = 0
        self.dropped_stale = 0
        self.missing = 0

        self.pub = self.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION))
        devices = [d for d in p["opencv_devices"] if d]
        for cam in self.cameras:
            if not any(d.split("=")[0] == cam for d in devices):
                self.create_subscription(
                    Image,
                    topics.CAMERA.format(name=cam),
                    lambda m, c=cam: self._on_image(c, m),
                    topics.qos(topics.CAMERA),
                )
        self.create_subscription(
            JointState, topics.JOINT_STATES, self._on_joints, topics.qos(topics.JOINT_STATES, "capture")
        )
        for arm in self.ee_arms:
            self.create_subscription(
                PoseStamped,
                topics.EE_POSE.format(arm=arm),
                lambda m, a=arm: self._on_pose(a, m),
                topics.qos(topics.EE_POSE, "capture"),
            )
        if self.goal_state:
            self.create_subscription(
                String, topics.SIM_TASK_STATE, self._on_task_state, topics.qos(topics.SIM_TASK_STATE)
            )
        self._stop = threading.Event()
        self._threads = [self._start_device(d) for d in devices]
        self.create_timer(1.0 / float(p["rate_hz"]), self._tick)

    # ---------------------------------------------------------------- inputs
    def _on_image(self, cam: str, msg: Image) -> None:
        with self._lock:
            self.images[cam] = msg

    def _on_joints(self, msg: JointState) -> None:
        with self._lock:
            self.joints = msg

    def _on_pose(self, arm: str, msg: PoseStamped) -> None:
        with self._lock:
            self.poses[arm] = msg

    def _on_task_state(self, msg: String) -> None:
        with self._lock:
            self.task_state = msg

    def _start_device(self, spec: str) -> threading.Thread:
        name, _, index = spec.partition("=")
        if name not in self.cameras or not index:
            raise ConfigError(f"opencv_devices entry {spec!r}: expected <camera>=<device>, camera in {self.cameras}")
        import cv2  # only on real robots

        cap = cv2.VideoCapture(int(index) if index.isdigit() else index)
        if not cap.isOpened():
            raise ConfigError(f"cannot open OpenCV device {index!r} for camera {name!r}")

        def grab():
            while not self._stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    continue
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                self._on_image(name, image_msg(rgb, self.get_clock().now().nanoseconds, name))
            cap.release()

        t = threading.Thread(target=grab, name=f"camera-{name}", daemon=True)
        t.start()
        return t

    # ---------------------------------------------------------------- output
    def build(self) -> Observation | None:
        """The next Observation, or None (nothing new, something missing, or stale: then dropped_stale += 1)."""
        with self._lock:
            joints, images, poses, task_state = self.joints, dict(self.images), dict(self.poses), self.task_state
        if joints is None:
            return None
        ref = stamp_to_ns(joints.header.stamp)
        if self.last_joint_ns - ref > NS:
            # The clock went back by more than a second: the driver (or the twin, with its /clock) restarted. Take
            # its new time base instead of waiting, bundle-less, until it passes the old one.
            self.last_joint_ns = -1
        if ref <= self.last_joint_ns:
            return None  # no new proprioception since the last bundle
        if (
            any(c not in images for c in self.cameras)
            or any(a not in poses for a in self.ee_arms)
            or (self.goal_state and task_state is None)
        ):
            self.missing += 1
            return None
        stamps = [stamp_to_ns(images[c].header.stamp) for c in self.cameras]
        stamps += [stamp_to_ns(poses[a].header.stamp) for a in self.ee_arms]
        goal = None
        if self.goal_state:
            try:
                goal_ns, goal = goal_from_task_state(task_state.data)
            except ValueError as e:
                self.get_logger().warning(f"{topics.SIM_TASK_STATE}: {e}; no observation", throttle_duration_sec=5.0)
                return None
            stamps.append(goal_ns)
        if any(abs(s - ref) > self.max_skew_ns for s in stamps):
            self.dropped_stale += 1
            self.last_joint_ns = ref
            return None
        positions = dict(zip(joints.name, joints.position, strict=False))
        ee = {}
        for arm in self.ee_arms:
            p, q = poses[arm].pose.position, poses[arm].pose.orientation
            ee[arm] = (p.x, p.y, p.z, q.x, q.y, q.z, q.w)
        try:
            state = assemble_state(self.state_names, positions, ee, goal=goal)
        except KeyError as e:
            self.get_logger().warning(f"joint_states: {e}; no observation", throttle_duration_sec=5.0)
            return None
        self.last_joint_ns = ref
        msg = Observation(robot=self.robot, task=self.task, instruction=self.instruction)
        msg.header.stamp = joints.header.stamp
        msg.header.frame_id = self.frame_id
        msg.camera_names = list(self.cameras)
        msg.images = [images[c] for c in self.cameras]
        msg.state_names = list(self.state_names)
        msg.state = state.tolist()
        msg.sequence = self.sequence
        msg.dropped_stale = self.dropped_stale
        self.sequence += 1
        return msg

    def _tick(self) -> None:
        msg = self.build()
        if msg is not None:
            self.pub.publish(msg)

    def destroy_node(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        return super().destroy_node()


def goal_from_task_state(text: str) -> tuple[int, dict[str, float]]:
    """(stamp in ns, goal values by name) of one privileged task state of the twin (the sim node's JSON: its
    `goal` from `task_state()`, its `sim_time` the stamp of the joint state published with it). Raises ValueError
    saying what is missing."""
    try:
        st = json.loads(text)
        goal = {str(k): float(v) for k, v in st["goal"].items()}
        stamp = int(round(float(st["sim_time"]) * NS))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"task state without a readable goal and sim_time ({type(e).__name__}: {e})") from None
    return stamp, goal


def main(args=None):
    return run_node(CaptureNode, args, threads=2)


if __name__ == "__main__":
    main()
