"""`sim_node`: the MuJoCo twin of one robot on ROS 2 (one class, parameterised by `robot`).

Publishes camera images (sensor-data QoS), joint states, EE poses, /clock and the privileged task state (JSON);
accepts joint, EE-pose and gripper commands and resets on the `reset` service. Physics, rendering and publishing
run in one dedicated thread (the EGL renderer is bound to the thread that created it); callbacks only move data.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header, String

from hiors_core import topics
from hiors_core.convert_ros import image_msg, time_msg
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_msgs.srv import ResetSim

from .env import Command, SimRobot
from .params import SIM


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


class SimNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sim", **kwargs)
        p = declare(self, SIM)  # ranges: hiors_sim.params
        robot, task = p["robot"], p["task"]
        self.seed, self.cell = p["seed"], p["cell"]
        self.camera_rate, self.state_rate = p["camera_rate_hz"], p["task_state_rate_hz"]
        self.width, self.height = p["image_width"], p["image_height"]
        self.rtf = p["real_time_factor"]
        self.env = SimRobot(robot, task or None)
        self.spec = self.env.spec

        self.pub_img = {
            c: self.create_publisher(Image, topics.CAMERA.format(name=c), topics.qos(topics.CAMERA))
            for c in self.spec.cameras
        }
        self.pub_js = self.create_publisher(JointState, topics.JOINT_STATES, topics.qos(topics.JOINT_STATES))
        self.pub_ee = {
            a.name: self.create_publisher(PoseStamped, topics.EE_POSE.format(arm=a.name), topics.qos(topics.EE_POSE))
            for a in self.spec.arms
        }
        self.pub_clock = self.create_publisher(Clock, topics.CLOCK, topics.qos(topics.CLOCK))
        self.pub_state = self.create_publisher(String, topics.SIM_TASK_STATE, topics.qos(topics.SIM_TASK_STATE))
        self.pub_resync = self.create_publisher(Header, topics.RESYNC, topics.qos(topics.RESYNC))

        self._lock = threading.Lock()
        self._pending = Command(joints={}, ee={}, gripper={})
        self._reset_req: list = []
        self.create_subscription(JointState, topics.CMD_JOINT, self._on_joint, topics.qos(topics.CMD_JOINT))
        self.create_subscription(JointState, topics.CMD_GRIPPER, self._on_gripper, topics.qos(topics.CMD_GRIPPER))
        for a in self.spec.arms:
            self.create_subscription(
                PoseStamped,
                topics.CMD_EE_POSE.format(arm=a.name),
                lambda m, arm=a.name: self._on_ee(arm, m),
                topics.qos(topics.CMD_EE_POSE),
            )
        self.create_service(ResetSim, topics.RESET, self._on_reset, callback_group=MutuallyExclusiveCallbackGroup())

        self.sim_time = 0.0  # monotonic across resets (the /clock)
        self._running = True
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sim", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"sim {robot}/{self.env.task.name}: cameras {list(self.spec.cameras)} {self.width}x{self.height} @ {self.camera_rate} Hz, rtf {self.rtf}"
        )

    # ---------------------------------------------------------------- callbacks: only move data
    def _on_joint(self, msg: JointState):
        with self._lock:
            if len(msg.name) != len(msg.position):
                self.get_logger().warning(
                    f"refused joint command: {len(msg.name)} names, {len(msg.position)} positions"
                )
                return
            self._pending.joints.update(dict(zip(msg.name, msg.position, strict=True)))

    def _on_gripper(self, msg: JointState):
        with self._lock:
            if len(msg.name) != len(msg.position):
                self.get_logger().warning("refused gripper command: names and positions differ in length")
                return
            self._pending.gripper.update(dict(zip(msg.name, msg.position, strict=True)))

    def _on_ee(self, arm: str, msg: PoseStamped):
        p, o = msg.pose.position, msg.pose.orientation
        with self._lock:
            self._pending.ee[arm] = ((p.x, p.y, p.z), (o.x, o.y, o.z, o.w))

    def _on_reset(self, req, resp):
        done = threading.Event()
        item = {"seed": req.seed, "task": req.task, "cell": req.cell, "done": done}
        with self._lock:
            self._reset_req.append(item)
        if not done.wait(30.0):
            resp.success, resp.message = False, "sim thread did not answer within 30 s"
            return resp
        resp.success, resp.message = item["ok"], item["message"]
        resp.task, resp.cell = self.env.task.name, int(self.env.cell)
        return resp

    # ---------------------------------------------------------------- the sim thread
    def _loop(self):
        try:
            self._run_loop()
        except Exception:
            if rclpy.ok(context=self.context):
                raise
            # Ctrl-C / SIGINT shut the context down under a publish: a normal stop, not an error.
        finally:
            self.env.close()  # in this thread: the EGL renderer is bound to it

    def _run_loop(self):
        env = self.env
        try:
            env.reset(self.seed, cell=self.cell)
        except Exception as e:  # a bad parameter: report and keep going with defaults
            self.get_logger().error(f"initial reset failed: {e}")
            env.reset(0)
        next_cam, next_state = 0.0, 0.0
        wall0, sim0 = time.monotonic(), self.sim_time
        self._ready.set()
        while self._running and rclpy.ok(context=self.context):
            with self._lock:
                reqs, self._reset_req = self._reset_req, []
                cmd, self._pending = self._pending, Command(joints={}, ee={}, gripper={})
            for r in reqs:
                try:
                    env.reset(int(r["seed"]), task=r["task"] or None, cell=int(r["cell"]))
                    r["ok"], r["message"] = True, f"reset {env.task.name} seed {r['seed']} cell {env.cell}"
                    # The twin jumped home: commands aimed at the old scene would drag it back (and knock the new
                    # objects over), so drop the pending one and tell the arbiter to hold where the robot is now.
                    cmd = Command(joints={}, ee={}, gripper={})
                    self.pub_resync.publish(
                        Header(stamp=time_msg(int(round(self.sim_time * 1e9))), frame_id=self.spec.base_frame)
                    )
                except (KeyError, ValueError) as e:
                    r["ok"], r["message"] = False, str(e)
                r["done"].set()
                next_cam = next_state = self.sim_time
            if cmd.joints or cmd.ee or cmd.gripper:
                ok, why = env.apply(cmd)
                if not ok:
                    self.get_logger().warning(f"refused command: {why}", throttle_duration_sec=1.0)
            env.step()
            self.sim_time += env.control_dt
            stamp = time_msg(int(round(self.sim_time * 1e9)))
            self.pub_clock.publish(Clock(clock=stamp))
            if self.sim_time + 1e-9 >= next_state:
                next_state += 1.0 / self.state_rate
                self._publish_state(stamp)
            if self.sim_time + 1e-9 >= next_cam:
                next_cam += 1.0 / self.camera_rate
                for name, img in env.render(self.spec.cameras, (self.height, self.width)).items():
                    self.pub_img[name].publish(image_msg(img, int(round(self.sim_time * 1e9)), name))
            if 0 < self.rtf < 1000:
                ahead = (self.sim_time - sim0) / self.rtf - (time.monotonic() - wall0)
                if ahead > 0:
                    time.sleep(ahead)
                elif ahead < -0.5:  # fell behind (slow machine): do not try to catch up in a burst
                    wall0, sim0 = time.monotonic(), self.sim_time

    def _publish_state(self, stamp):
        env = self.env
        js = JointState(name=list(self.spec.joint_names))
        js.header.stamp = stamp
        js.header.frame_id = self.spec.base_frame
        js.position = env.joint_positions().tolist()
        js.velocity = env.joint_velocities().tolist()
        self.pub_js.publish(js)
        for a in self.spec.arms:
            pos, q = env.ee_pose(a.name)
            msg = PoseStamped()
            msg.header.stamp = stamp
            msg.header.frame_id = self.spec.base_frame
            msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pos)
            msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z, msg.pose.orientation.w = (
                float(v) for v in q
            )
            self.pub_ee[a.name].publish(msg)
        st = env.task_state()
        st["sim_time"] = self.sim_time
        st["refused_commands"] = env.refused
        self.pub_state.publish(String(data=json.dumps(st, default=_json_default)))

    def destroy_node(self):
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        return super().destroy_node()


def main(args=None):
    return run_node(SimNode, args, threads=3)


if __name__ == "__main__":
    main()
