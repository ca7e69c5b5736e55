"""The three Hi-ORS tasks: scene objects, randomised initial states, success checks and progress.

Each task adds its objects to its robot's scene as an MJCF fragment, randomises the initial state from a seeded
generator (object start on a grid cell, see `grid.Grid`), and judges a *measurement* dict (object poses, end-effector
poses, grasp contacts) with a pure `evaluate()` so the success check can be tested on hand-made states.

| task               | robot    | action layout                        | success                                         |
| ------------------ | -------- | ------------------------------------ | ----------------------------------------------- |
| raise_hand         | tora_one | ee_layout("left"): xyz, quat xyzw, g | left EE within 3 cm / 0.25 rad of the target    |
| pack_detergent     | tora_one | ee_layout("left")                    | bottle inside the box, released, at rest        |
| insert_moisturizer | xtrainer | joint_layout(XTRAINER), 14 dims      | bottle upright in the base's socket, released   |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from hiors_core.robots import TORA_ONE, XTRAINER, ActionLayout, RobotSpec, ee_layout, joint_layout
from hiors_core.rotations import (
    IDENTITY_Q,
    from_mujoco,
    quat_angle,
    quat_from_axis_angle,
    quat_mul,
    quat_to_matrix,
    to_mujoco,
)
from hiors_core.tasks import PLACE_GOAL, POSE_GOAL, UnknownTaskError, get_task
from hiors_core.tasks import tasks_for as registry_tasks_for

from .grid import Grid


def _inertial_box(mass, hx, hy, hz) -> str:
    return (
        f'<inertial pos="0 0 0" mass="{mass}" diaginertia="{mass * (hy * hy + hz * hz) / 3:.6g} '
        f'{mass * (hx * hx + hz * hz) / 3:.6g} {mass * (hx * hx + hy * hy) / 3:.6g}"/>'
    )


def square_walls(name: str, base, inner: float, t: float, height: float, rgba: str) -> str:
    """MJCF geoms of four walls of thickness `t` around a square opening of half-width `inner`, standing on
    `base` (x, y, z): a box's sides, a socket's rim."""
    bx, by, bz = base
    sides = [
        (inner + t, 0, t, inner + 2 * t),
        (-inner - t, 0, t, inner + 2 * t),
        (0, inner + t, inner, t),
        (0, -inner - t, inner, t),
    ]
    return "".join(
        f'<geom name="{name}{i}" class="col" type="box" size="{sx} {sy} {height / 2}" '
        f'pos="{bx + dx} {by + dy} {bz + height / 2}" rgba="{rgba}"/>'
        for i, (dx, dy, sx, sy) in enumerate(sides)
    )


@dataclass
class Task:
    """Base class. Subclasses define the scene fragment, reset, measure and evaluate."""

    name: str = ""  # the task's name in the task registry (hiors_core.tasks)
    robot: RobotSpec = TORA_ONE
    time_limit: float = 20.0  # s of simulated time per episode
    grid: Grid = field(default_factory=lambda: Grid(center=(0.0, 0.0)))
    arm: str = "left"  # the arm that does the work

    @property
    def instruction(self) -> str:
        """The task's one instruction, from the task registry: the prompt of its demonstrations and evaluation."""
        return get_task(self.name, self.robot.name).instruction

    @property
    def layout(self) -> ActionLayout:
        return ee_layout(self.arm)

    # --- scene ---
    def xml(self) -> tuple[str, str]:
        """(worldbody fragment, actuator fragment)."""
        return "", ""

    def bind(self, model: mujoco.MjModel) -> None:
        self.model = model

    # --- episode ---
    def initial_joints(self, rng: np.random.Generator) -> dict[str, float]:
        """Arm joints at the start of an episode: a rest posture with a little noise."""
        rest = np.array([0.1, 0.0, 0.0, -2.0, 0.0, 1.2, 0.0])
        q = {}
        for a in self.robot.arms:
            v = rest[: len(a.joint_names)] + rng.uniform(-0.05, 0.05, size=len(a.joint_names))
            q.update({j: float(x) for j, x in zip(a.joint_names, v, strict=True)})
        return q

    def reset(self, env, rng: np.random.Generator, cell: int) -> dict:
        """Place objects; returns the episode's task parameters (recorded in the task state)."""
        return {}

    def before_step(self, env) -> None:
        """Called every control step before physics (e.g. to move the conveyor)."""

    def measure(self, env) -> dict:
        return {}

    def goal_values(self, m: dict) -> dict[str, float]:
        """The registry's goal entries (`TaskSpec.goal_names`) from a measurement: what a goal-state policy's
        state carries besides the robot's own."""
        return {}

    @staticmethod
    def evaluate(m: dict) -> dict:
        """{'success': bool, 'failed': bool, 'failure_reason': str, 'progress': 0..1} from a measurement."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------------
@dataclass
class RaiseHand(Task):
    name: str = "raise_hand"
    robot: RobotSpec = TORA_ONE
    time_limit: float = 10.0
    # Targets in front of the chest, inside the head camera's view (the policy must see where to go).
    grid: Grid = field(default_factory=lambda: Grid(center=(0.42, 0.22), rows=3, cols=3, cell=(0.06, 0.06)))
    z_range: tuple[float, float] = (0.98, 1.12)
    hold_s: float = 0.4  # s the hand must stay at the target
    pos_tol: float = 0.03
    rot_tol: float = 0.25

    def xml(self):
        return (
            # A saturated sphere marks the position; a bar of another colour across it shows the roll.
            '<body name="target" mocap="true" pos="0.42 0.22 1.05">'
            '<geom type="sphere" size="0.03" rgba="0.1 0.95 0.2 1" contype="0" conaffinity="0"/>'
            '<geom type="box" size="0.075 0.012 0.012" pos="0.03 0 0" rgba="0.95 0.1 0.8 1" contype="0" conaffinity="0"/>'
            "</body>",
            "",
        )

    def bind(self, model):
        super().bind(model)
        self.mocap = model.body_mocapid[model.body("target").id]

    def reset(self, env, rng, cell):
        xy = self.grid.sample(rng, cell)
        pos = np.array([xy[0], xy[1], rng.uniform(*self.z_range)])
        # Hand pointing forward (approach +x), with a random roll about the approach axis and a slight pitch.
        pitch = rng.uniform(-0.3, 0.2)  # < 0: pointing a little upwards
        q = quat_mul(
            quat_from_axis_angle((0, 1, 0), -np.pi / 2 + pitch),
            # [1, 0, 0, 0]: half a turn about x
            quat_mul(np.array([1.0, 0, 0, 0]), quat_from_axis_angle((0, 0, 1), rng.uniform(-0.5, 0.5))),
        )
        env.data.mocap_pos[self.mocap] = pos
        env.data.mocap_quat[self.mocap] = to_mujoco(q)
        return {"target_pos": pos.tolist(), "target_quat_xyzw": q.tolist()}

    def measure(self, env):
        pos, quat = env.ee_pose(self.arm)
        m = {
            "ee_pos": pos.tolist(),
            "ee_quat_xyzw": quat.tolist(),
            "target_pos": env.data.mocap_pos[self.mocap].tolist(),
            "target_quat_xyzw": from_mujoco(env.data.mocap_quat[self.mocap]).tolist(),
            "start_distance": env.episode.get("start_distance", 0.5),
            "hold_s": self.hold_s,
        }
        # How long the hand has stayed at the target: a hand passing through it has not reached it.
        d, a = self.pose_errors(m)
        if d < self.pos_tol and a < self.rot_tol:
            since = env.episode.setdefault("at_target_since", env.time)
            m["held_s"] = env.time - since
        else:
            env.episode.pop("at_target_since", None)
            m["held_s"] = 0.0
        return m

    @staticmethod
    def pose_errors(m) -> tuple[float, float]:
        """(position error in m, orientation error in rad) of the hand against the target."""
        d = float(np.linalg.norm(np.subtract(m["ee_pos"], m["target_pos"])))
        a = quat_angle(m["ee_quat_xyzw"], m["target_quat_xyzw"])
        return d, a

    def goal_values(self, m):
        return dict(zip(POSE_GOAL, (*m["target_pos"], *m["target_quat_xyzw"]), strict=True))

    @staticmethod
    def evaluate(m, pos_tol=0.03, rot_tol=0.25):
        d, a = RaiseHand.pose_errors(m)
        progress = float(np.clip(1.0 - d / max(m.get("start_distance", 0.5), 1e-3), 0.0, 1.0))
        # Success is the pose held for hold_s (a hand-made measurement without the hold counts as held).
        ok = d < pos_tol and a < rot_tol and m.get("held_s", 0.0) >= m.get("hold_s", 0.0) - 1e-9
        return {
            "success": ok,
            "failed": False,
            "failure_reason": "",
            "progress": 1.0 if ok else 0.95 * progress,
            "position_error": d,
            "orientation_error": a,
        }


# ---------------------------------------------------------------------------------------------------------------
TABLE_Z = 0.78  # Tora One's table top (conveyor belt top)
BOX_CENTER = (0.34, 0.47)
BOX_INNER = 0.075  # half width of the box's inside
BOX_WALL_H = 0.09
BOTTLE_HALF = (0.018, 0.03, 0.06)  # detergent bottle (box): narrow side along its local x


@dataclass
class PackDetergent(Task):
    name: str = "pack_detergent"
    robot: RobotSpec = TORA_ONE
    time_limit: float = 25.0
    # Cells: bottle x across the belt (rows) and the carrier plate's start y along the belt (columns).
    grid: Grid = field(default_factory=lambda: Grid(center=(0.40, -0.06), rows=2, cols=4, cell=(0.04, 0.05)))
    plate_end: float = 0.22  # the carrier stops here (within reach of the left arm)

    def xml(self):
        bx, by = BOX_CENTER
        walls = square_walls("box_wall", (bx, by, TABLE_Z), BOX_INNER, 0.008, BOX_WALL_H, "0.75 0.55 0.3 1")
        hx, hy, hz = BOTTLE_HALF
        world = f"""
    <geom name="table" class="col" type="box" size="0.22 0.55 0.015" pos="0.42 0.15 {TABLE_Z - 0.035}" rgba="0.55 0.45 0.35 1"/>
    <geom name="belt" type="box" size="0.09 0.38 0.01" pos="0.40 -0.05 {TABLE_Z - 0.01}" rgba="0.12 0.12 0.12 1"/>
    <geom name="box_floor" class="col" type="box" size="{BOX_INNER + 0.016} {BOX_INNER + 0.016} 0.004" pos="{bx} {by} {TABLE_Z - 0.004}" rgba="0.75 0.55 0.3 1"/>
    {walls}
    <body name="carrier" pos="0.40 0 {TABLE_Z}">
      {_inertial_box(1.0, 0.07, 0.07, 0.01)}
      <joint name="carrier" type="slide" axis="0 1 0" range="-0.4 0.4" damping="50" armature="0"/>
      <geom name="plate" class="col" type="box" size="0.075 0.075 0.008" pos="0 0 0.008" rgba="0.3 0.5 0.8 1"/>
    </body>
    <body name="bottle" pos="0.40 0 {TABLE_Z + 0.016 + hz}">
      <freejoint name="bottle"/>
      {_inertial_box(0.15, hx, hy, hz)}
      <geom name="bottle" class="col" type="box" size="{hx} {hy} {hz}" rgba="0.95 0.45 0.1 1"/>
      <geom name="bottle_cap" type="cylinder" size="0.012 0.012" pos="0 0.012 {hz + 0.012}" rgba="0.9 0.9 0.9 1"/>
    </body>"""
        act = '    <position name="carrier" joint="carrier" kp="3000" kv="300" forcerange="-200 200"/>\n'
        return world, act

    def bind(self, model):
        super().bind(model)
        self.carrier_q = model.jnt_qposadr[model.joint("carrier").id]
        self.carrier_act = model.actuator("carrier").id
        self.bottle_q = model.jnt_qposadr[model.joint("bottle").id]
        self.bottle_body = model.body("bottle").id

    def reset(self, env, rng, cell):
        xy = self.grid.sample(rng, cell)
        y0 = float(xy[1])
        speed = float(rng.uniform(0.03, 0.045))
        yaw = float(rng.uniform(-0.5, 0.5))
        env.data.qpos[self.carrier_q] = y0
        env.data.ctrl[self.carrier_act] = y0
        bottle = np.array([xy[0], y0 + rng.uniform(-0.02, 0.02), TABLE_Z + 0.016 + BOTTLE_HALF[2] + 0.001])
        env.data.qpos[self.bottle_q : self.bottle_q + 3] = bottle - np.array([0, 0, 0])
        env.data.qpos[self.bottle_q + 3 : self.bottle_q + 7] = to_mujoco(quat_from_axis_angle((0, 0, 1), yaw))
        return {"plate_start": y0, "conveyor_speed": speed, "bottle_yaw": yaw}

    def before_step(self, env):
        y = min(env.episode["plate_start"] + env.episode["conveyor_speed"] * env.time, self.plate_end)
        env.data.ctrl[self.carrier_act] = y

    def measure(self, env):
        d = env.data
        pos = d.qpos[self.bottle_q : self.bottle_q + 3].copy()
        quat = d.qpos[self.bottle_q + 3 : self.bottle_q + 7].copy()
        ee, _ = env.ee_pose(self.arm)
        return {
            "bottle_pos": pos.tolist(),
            "bottle_quat_xyzw": from_mujoco(quat).tolist(),
            "bottle_speed": float(np.linalg.norm(d.qvel[env.model.jnt_dofadr[env.model.joint("bottle").id] :][:3])),
            "plate_y": float(d.qpos[self.carrier_q]),
            "ee_pos": ee.tolist(),
            "grasped": env.grasped(self.arm, self.bottle_body),
            "box_center": [BOX_CENTER[0], BOX_CENTER[1], TABLE_Z],
        }

    def goal_values(self, m):
        return dict(zip(PLACE_GOAL, (*m["bottle_pos"], *m["box_center"]), strict=True))

    @staticmethod
    def evaluate(m):
        p = np.asarray(m["bottle_pos"])
        box = np.asarray(m["box_center"])
        up = quat_to_matrix(m["bottle_quat_xyzw"])[:, 2]
        in_box = bool(np.all(np.abs(p[:2] - box[:2]) < BOX_INNER) and p[2] < box[2] + BOX_WALL_H)
        success = in_box and not m["grasped"] and m["bottle_speed"] < 0.1
        failed, reason = False, ""
        if p[2] < box[2] - 0.15:
            failed, reason = True, "bottle fell off the table"
        elif not m["grasped"] and not in_box and up[2] < 0.5 and m["bottle_speed"] < 0.05:
            failed, reason = True, "bottle knocked over"
        ee = np.asarray(m["ee_pos"])
        if success:
            progress = 1.0
        elif in_box:
            progress = 0.9
        elif m["grasped"] and p[2] > box[2] + 0.03:
            d = np.linalg.norm(p[:2] - box[:2])
            progress = 0.5 + 0.35 * float(np.clip(1 - d / 0.5, 0, 1))
        elif m["grasped"]:
            progress = 0.45
        else:
            progress = 0.4 * float(np.clip(1 - np.linalg.norm(ee - p) / 0.6, 0, 1))
        return {"success": success, "failed": failed, "failure_reason": reason, "progress": progress, "in_box": in_box}


# ---------------------------------------------------------------------------------------------------------------
SOCKET_INNER = 0.021  # half width of the base's hole
SOCKET_H = 0.05
MOIST_R, MOIST_HALF = 0.016, 0.055  # slim moisturizer bottle (cylinder)


@dataclass
class InsertMoisturizer(Task):
    name: str = "insert_moisturizer"
    robot: RobotSpec = XTRAINER
    time_limit: float = 25.0
    grid: Grid = field(default_factory=lambda: Grid(center=(0.10, -0.19), rows=3, cols=3, cell=(0.05, 0.05)))
    arm: str = "right"

    @property
    def layout(self) -> ActionLayout:
        return joint_layout(XTRAINER)

    def initial_joints(self, rng):
        q = {}
        for side in ("left", "right"):
            base = np.array([0.0, 0.2, 0.3, 0.0, 1.07, 0.0]) + rng.uniform(-0.05, 0.05, size=6)
            q.update({f"{side}_joint{i + 1}": float(v) for i, v in enumerate(base)})
        return q

    def xml(self):
        walls = square_walls("socket_wall", (0.0, 0.0, 0.0), SOCKET_INNER, 0.012, SOCKET_H, "0.3 0.6 0.85 1")
        world = f"""
    <body name="base" mocap="true" pos="0.10 0.0 0">{walls}
      <geom type="box" size="{SOCKET_INNER} {SOCKET_INNER} 0.001" pos="0 0 0.001" rgba="0.1 0.2 0.5 1"/>
    </body>
    <body name="moisturizer" pos="0.1 -0.15 {MOIST_HALF}">
      <freejoint name="moisturizer"/>
      <inertial pos="0 0 0" mass="0.08" diaginertia="8.5e-5 8.5e-5 1.0e-5"/>
      <geom name="moisturizer" class="col" type="cylinder" size="{MOIST_R} {MOIST_HALF}" rgba="0.9 0.15 0.55 1"/>
      <geom type="cylinder" size="{MOIST_R * 0.8} 0.01" pos="0 0 {MOIST_HALF + 0.01}" rgba="0.85 0.2 0.5 1"/>
    </body>"""
        return world, ""

    def bind(self, model):
        super().bind(model)
        self.mocap = model.body_mocapid[model.body("base").id]
        self.bottle_q = model.jnt_qposadr[model.joint("moisturizer").id]
        self.bottle_dof = model.jnt_dofadr[model.joint("moisturizer").id]
        self.bottle_body = model.body("moisturizer").id

    def reset(self, env, rng, cell):
        xy = self.grid.sample(rng, cell)
        base = np.array([0.10 + rng.uniform(-0.02, 0.02), 0.0 + rng.uniform(-0.02, 0.02), 0.0])
        env.data.mocap_pos[self.mocap] = base
        env.data.qpos[self.bottle_q : self.bottle_q + 3] = [xy[0], xy[1], MOIST_HALF + 0.001]
        env.data.qpos[self.bottle_q + 3 : self.bottle_q + 7] = to_mujoco(IDENTITY_Q)
        return {"base_pos": base.tolist()}

    def measure(self, env):
        d = env.data
        ee, _ = env.ee_pose(self.arm)
        return {
            "bottle_pos": d.qpos[self.bottle_q : self.bottle_q + 3].tolist(),
            "bottle_quat_xyzw": from_mujoco(d.qpos[self.bottle_q + 3 : self.bottle_q + 7]).tolist(),
            "bottle_speed": float(np.linalg.norm(d.qvel[self.bottle_dof : self.bottle_dof + 3])),
            "base_pos": d.mocap_pos[self.mocap].tolist(),
            "ee_pos": ee.tolist(),
            "grasped": env.grasped(self.arm, self.bottle_body),
        }

    def goal_values(self, m):
        return dict(zip(PLACE_GOAL, (*m["bottle_pos"], *m["base_pos"]), strict=True))

    @staticmethod
    def evaluate(m):
        p = np.asarray(m["bottle_pos"])
        base = np.asarray(m["base_pos"])
        up = quat_to_matrix(m["bottle_quat_xyzw"])[:, 2]
        bottom = p[2] - MOIST_HALF * up[2]
        xy_err = float(np.linalg.norm(p[:2] - base[:2]))
        inserted = xy_err < 0.015 and bottom < base[2] + 0.03 and up[2] > np.cos(0.35)
        success = bool(inserted and not m["grasped"])
        failed, reason = False, ""
        if p[2] < -0.1:
            failed, reason = True, "bottle fell off the table"
        elif not m["grasped"] and up[2] < 0.5 and m["bottle_speed"] < 0.05:
            failed, reason = True, "bottle knocked over"
        ee = np.asarray(m["ee_pos"])
        if success:
            progress = 1.0
        elif inserted:
            progress = 0.9
        elif m["grasped"] and bottom > 0.01:
            progress = 0.5 + 0.35 * float(np.clip(1 - xy_err / 0.35, 0, 1))
        elif m["grasped"]:
            progress = 0.45
        else:
            progress = 0.4 * float(np.clip(1 - np.linalg.norm(ee - p) / 0.5, 0, 1))
        return {
            "success": success,
            "failed": failed,
            "failure_reason": reason,
            "progress": progress,
            "inserted": bool(inserted),
        }


# The twin's scene of each registered task; the registry (hiors_core.tasks) owns the task list and each task's
# robot, instruction, arms and control mode.
SCENES: dict[str, type[Task]] = {
    "raise_hand": RaiseHand,
    "pack_detergent": PackDetergent,
    "insert_moisturizer": InsertMoisturizer,
}


def make_task(name: str, **overrides) -> Task:
    """A fresh task instance by name; `overrides` replace dataclass fields (e.g. grid=Grid(...), time_limit=30).
    Raises UnknownTaskError (a KeyError) naming the known tasks."""
    get_task(name)
    try:
        cls = SCENES[name]
    except KeyError:
        raise UnknownTaskError(f"task {name!r} has no simulated scene; known tasks with one: {list(SCENES)}") from None
    return cls(**overrides)


def tasks_for(robot: str) -> list[str]:
    """The robot's registered tasks that have a scene, in registry order (the first is the robot's default)."""
    return [n for n in registry_tasks_for(robot) if n in SCENES]
