"""The scripted expert: a waypoint state machine with clipped end-effector steps and closed-loop correction.

    expert = ScriptedExpert("pack_detergent")
    expert.reset()
    action = expert.act(env.task_state())      # absolute action in the task's layout

It moves an internal end-effector target towards the current waypoint by at most `max_step` metres and
`max_rot` radians per control step (a person's hand at 25 Hz), recomputing every waypoint from the latest object
poses (so a moving conveyor or a bottle that sits off-centre in the fingers is corrected for). For joint-space
tasks (X-Trainer) the target is converted to joints with the same damped-least-squares IK as the twin, seeded from
the previously commanded joints. The state machine can start from any state (e.g. when the simulated operator
takes over mid-episode): it infers from the grasp whether to approach or to carry. No ROS, no rendering.
"""

from __future__ import annotations

import mujoco
import numpy as np

from hiors_core.robots import MODE_JOINT
from hiors_core.rotations import quat_from_axis_angle, quat_mul, quat_step_towards, quat_to_matrix

from .env import IK_POSTURE
from .ik import ArmIK
from .models import BUILDERS
from .tasks import (
    BOX_CENTER,
    MOIST_HALF,
    SOCKET_H,
    TABLE_Z,
    Task,
    make_task,
)


def _yaw_of(quat_xyzw) -> float:
    """Yaw of a roughly top-down hand: the direction its fingers close along (hand y axis = (sin, -cos))."""
    y = quat_to_matrix(quat_xyzw)[:, 1]
    return float(np.arctan2(y[0], -y[1]))


def _top_down(yaw: float) -> np.ndarray:
    """(x, y, z, w) of a hand pointing straight down (approach -z) with the fingers closing along yaw's y axis:
    half a turn about x, then yaw about z."""
    return quat_mul(quat_from_axis_angle((0, 0, 1), yaw), np.array([1.0, 0.0, 0.0, 0.0]))


def _closest_mod_pi(angle: float, ref: float) -> float:
    return angle + np.pi * np.round((ref - angle) / np.pi)


class ScriptedExpert:
    def __init__(
        self, task: str | Task, noise: float = 0.0, seed: int = 0, max_step: float = 0.018, max_rot: float = 0.1
    ):
        self.task = task if isinstance(task, Task) else make_task(task)
        self.noise = noise
        self.max_step = max_step
        self.max_rot = max_rot
        self.rng = np.random.default_rng(seed)
        self.layout = self.task.layout
        self._ik = None
        if self.layout.mode == MODE_JOINT:
            spec = self.task.robot
            model = mujoco.MjModel.from_xml_string(BUILDERS[spec.name]())
            arm = spec.arm(self.task.arm)
            self._ik = ArmIK(
                model, arm.joint_names, f"{arm.name}_ee", posture=IK_POSTURE[spec.name][: len(arm.joint_names)]
            )
        self.reset()

    def reset(self) -> None:
        self.phase = ""
        self.counter = 0
        self.cmd_pos = None
        self.cmd_quat = None
        self.grip = 1.0
        self.q_cmd = None
        self._last_obj = None
        self._obj_vel = np.zeros(3)
        self.yaw = None

    # ------------------------------------------------------------------
    def act(self, task_state: dict, proprio: dict | None = None) -> np.ndarray:
        proprio = proprio or task_state["proprio"]
        arm = self.task.arm
        ee = proprio["ee"][arm]
        ee_pos = np.asarray(ee["pos"])
        ee_quat = np.array(ee["quat_xyzw"], dtype=float)
        if self.cmd_pos is None:
            self.cmd_pos, self.cmd_quat = ee_pos.copy(), ee_quat.copy()
            self.grip = float(proprio["gripper"][arm])
            names = proprio["joint_names"]
            self.q_cmd = np.asarray(
                proprio.get("commanded_joints", proprio["joint_positions"][: len(names) - 2]), dtype=float
            )
        m = task_state["measure"]
        name = self.task.name
        if name == "raise_hand":
            pos, quat, grip = self._raise(m)
        elif name == "pack_detergent":
            pos, quat, grip = self._pack(m, ee_pos, ee_quat)
        else:
            pos, quat, grip = self._insert(m, ee_pos, ee_quat)
        step = pos - self.cmd_pos
        n = np.linalg.norm(step)
        if n > self.max_step:
            step *= self.max_step / n
        self.cmd_pos = self.cmd_pos + step
        if self.noise > 0:
            self.cmd_pos = self.cmd_pos + self.rng.normal(0, self.noise, 3)
        self.cmd_quat = quat_step_towards(self.cmd_quat, quat, self.max_rot)
        self.grip = float(np.clip(grip, 0.0, 1.0))
        return self._to_action()

    def _to_action(self) -> np.ndarray:
        spec = self.task.robot
        if self.layout.mode != MODE_JOINT:
            lo, hi = np.array(spec.workspace_min), np.array(spec.workspace_max)
            self.cmd_pos = np.clip(self.cmd_pos, lo, hi)
            return np.concatenate([self.cmd_pos, self.cmd_quat, [self.grip]])
        # Joint layout: IK for the working arm from the commanded joints; other arms hold.
        i0 = 0
        q = self.q_cmd.copy()
        for a in spec.arms:
            n = len(a.joint_names)
            if a.name == self.task.arm:
                q[i0 : i0 + n], _, _ = self._ik.solve(q[i0 : i0 + n], self.cmd_pos, self.cmd_quat)
            i0 += n
        self.q_cmd = q
        grips = [self.grip if a.name == self.task.arm else 1.0 for a in spec.arms]
        vals = dict(zip([j for a in spec.arms for j in a.joint_names], q, strict=True))
        vals.update({a.gripper_name: g for a, g in zip(spec.arms, grips, strict=True)})
        return np.array([vals[n] for n in self.layout.names])

    def _track(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        if self._last_obj is not None:
            v = (p - self._last_obj) * self.task.robot.control_rate_hz
            self._obj_vel = 0.7 * self._obj_vel + 0.3 * v
        self._last_obj = p
        return p

    def _goto(self, phase: str) -> None:
        self.phase, self.counter = phase, 0

    # ------------------------------------------------------------------ raise_hand
    def _raise(self, m):
        self.phase = "reach"
        return np.asarray(m["target_pos"]), np.array(m["target_quat_xyzw"], dtype=float), 1.0

    # ------------------------------------------------------------------ pick and place (shared)
    def _pick_place(
        self,
        m,
        ee_pos,
        ee_quat,
        *,
        grasp_dz,
        hover,
        lift_z,
        place_xy,
        place_bottle_z,
        insert_bottle_z,
        lead,
        min_y=None,
        place_tol=0.005,
    ):
        obj = self._track(m["bottle_pos"])
        grasped = bool(m["grasped"])
        if self.yaw is None:
            self.yaw = _yaw_of(ee_quat)
        if not self.phase:
            self._goto("lift" if grasped else "approach")
        self.counter += 1
        lead_pos = obj + self._obj_vel * lead
        grasp = lead_pos + np.array([0, 0, grasp_dz])
        if min_y is not None:
            grasp[1] = max(grasp[1], min_y)
        quat = _top_down(self.yaw)
        offset = ee_pos - obj  # object's place in the hand, for closed-loop placing
        ph = self.phase
        if ph == "approach":
            grip = 1.0
            target = grasp + np.array([0, 0, hover])
            if ee_pos[2] < target[2] - 0.03 and np.linalg.norm((ee_pos - obj)[:2]) < 0.08:
                # Taking over with the fingers beside the object: rise clear before moving across, or they sweep it over.
                target = np.array([self.cmd_pos[0], self.cmd_pos[1], target[2]])
            if np.linalg.norm((ee_pos - target)[:2]) < 0.02 and abs(ee_pos[2] - target[2]) < 0.04 and self.counter > 3:
                self._goto("descend")
        elif ph == "descend":
            grip = 1.0
            target = grasp
            if np.linalg.norm((ee_pos - grasp)[:2]) > 0.05:
                self._goto("approach")
            elif np.linalg.norm(ee_pos - grasp) < 0.012:
                self._goto("close")
        elif ph == "close":
            grip, target = 0.0, grasp
            if self.counter > 8:
                self._goto("lift")
        elif ph == "lift":
            grip = 0.0
            target = np.array([ee_pos[0], ee_pos[1], lift_z])
            target[:2] = self.cmd_pos[:2]
            if self.counter > 6 and not grasped:
                self._goto("approach")
            elif grasped and ee_pos[2] > lift_z - 0.03:
                self._goto("carry")
        elif ph == "carry":
            grip = 0.0
            target = np.array([place_xy[0] + offset[0], place_xy[1] + offset[1], place_bottle_z + offset[2]])
            if not grasped and self.counter > 3:
                self._goto("approach")
            elif np.linalg.norm(obj[:2] - place_xy) < place_tol and abs(obj[2] - place_bottle_z) < 0.02:
                self._goto("insert")
        elif ph == "insert":
            grip = 0.0
            target = np.array([place_xy[0] + offset[0], place_xy[1] + offset[1], insert_bottle_z + offset[2]])
            if not grasped and self.counter > 3:
                self._goto("approach")
            elif obj[2] < insert_bottle_z + 0.008 or self.counter > 60:
                self._goto("release")
        elif ph == "release":
            grip = 1.0
            target = self.cmd_pos.copy()
            if self.counter > 8:
                self._goto("retreat")
        else:  # retreat
            grip = 1.0
            target = np.array([self.cmd_pos[0], self.cmd_pos[1], lift_z])
        return target, quat, grip

    def _pack(self, m, ee_pos, ee_quat):
        narrow = quat_to_matrix(m["bottle_quat_xyzw"])[:, 0]  # fingers close across the bottle's narrow side
        if self.phase in ("", "approach"):
            yaw = np.arctan2(narrow[1], narrow[0]) + np.pi / 2
            self.yaw = _closest_mod_pi(yaw, _yaw_of(ee_quat))
        box = np.array(BOX_CENTER)
        return self._pick_place(
            m,
            ee_pos,
            ee_quat,
            grasp_dz=0.03,
            hover=0.12,
            lift_z=TABLE_Z + 0.30,
            place_xy=box,
            place_bottle_z=TABLE_Z + 0.17,
            insert_bottle_z=TABLE_Z + 0.075,
            lead=0.3,
            min_y=-0.02,
            place_tol=0.025,
        )

    def _insert(self, m, ee_pos, ee_quat):
        base = np.asarray(m["base_pos"])
        return self._pick_place(
            m,
            ee_pos,
            ee_quat,
            grasp_dz=0.035,
            hover=0.10,
            lift_z=0.28,
            place_xy=base[:2],
            place_bottle_z=SOCKET_H + 0.02 + MOIST_HALF,
            insert_bottle_z=MOIST_HALF + 0.004,
            lead=0.0,
        )
