"""`SimRobot`: a MuJoCo twin of one robot running one task, pure Python (no rclpy).

    env = SimRobot("tora_one", "pack_detergent")
    state = env.reset(seed=3, cell=-1)          # deterministic under the seed; cell -1 = a random train cell
    result = env.step(action)                   # one control period (1 / control rate) of physics
    SimRobot(..., end_on="unrecoverable")       # a knocked-over bottle does not end the episode (test-time budget)
    images = env.render(("top", "left_wrist"), (224, 224))

Commands are absolute: joint targets (rad, grippers as opening 0 closed .. 1 open), end-effector pose targets
(position m and quaternion x, y, z, w in the base frame = world frame; solved with damped-least-squares IK from the
previously *commanded* joints), gripper openings. A command with NaN/inf, a wrong length, an unknown name or a value
outside the robot's limits (joint range, workspace box) is refused as a whole, its reason logged and returned,
and the twin holds its previous targets.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import mujoco
import numpy as np

from hiors_core.robots import MODE_EE_POSE, MODE_JOINT, RobotSpec, get_robot
from hiors_core.rotations import from_mujoco

from .grid import Grid
from .ik import ArmIK
from .models import BUILDERS, FINGER_TRAVEL, PHYSICS_DT
from .tasks import Task, make_task, tasks_for

log = logging.getLogger("hiors_sim")

IK_POSTURE = {
    "tora_one": np.array([-0.3, 0.0, 0.0, -1.3, 0.0, 0.3, 0.0]),
    "xtrainer": np.array([0.0, 0.2, 0.3, 0.0, 1.07, 0.0]),
}
LIMIT_TOL = 1e-6
# Failures a policy can still repair within the attempt (pick the bottle up again, as a person would); the tasks'
# other failures (a bottle off the table) cannot be repaired. A reason not named here counts as unrecoverable.
RECOVERABLE_FAILURES = frozenset({"bottle knocked over"})
END_ON = ("failure", "unrecoverable")  # what ends an episode besides success and the time limit


@dataclass
class Command:
    """One command; any field may be None. Joint names are the robot's (`RobotSpec.joint_names`), grippers may be
    named by gripper ("left_gripper") or arm ("left"). `ee` maps arm -> (position xyz, quaternion xyzw)."""

    joints: dict[str, float] | None = None
    ee: dict[str, tuple] | None = None
    gripper: dict[str, float] | None = None


@dataclass
class StepResult:
    accepted: bool
    reason: str = ""
    time: float = 0.0
    success: bool = False
    done: bool = False  # success, failure (with end_on "unrecoverable": an unrecoverable one) or time limit
    failure: str = ""  # the reason of the failure that ended the episode ("" if none did)


@dataclass
class _Targets:
    q: np.ndarray  # arm joints in spec order
    grip: dict[str, float] = field(default_factory=dict)


class SimRobot:
    def __init__(
        self,
        robot: str | RobotSpec = "tora_one",
        task: str | Task | None = None,
        *,
        grid: Grid | None = None,
        control_rate_hz: float | None = None,
        physics_dt: float = PHYSICS_DT,
        time_limit: float | None = None,
        end_on: str = "failure",
    ):
        if end_on not in END_ON:
            raise ValueError(f"end_on must be one of {END_ON}, got {end_on!r}")
        # "unrecoverable": a recoverable failure (RECOVERABLE_FAILURES) leaves the episode running, so that a
        # policy can repair it within a test-time budget (`hiors eval`'s success vs time)
        self.end_on = end_on
        self.spec = get_robot(robot) if isinstance(robot, str) else robot
        self._grid, self._time_limit = grid, time_limit
        self.control_rate_hz = control_rate_hz or self.spec.control_rate_hz
        self.physics_dt = physics_dt
        self.n_substeps = max(1, int(round(1.0 / (self.control_rate_hz * physics_dt))))
        self.control_dt = self.n_substeps * physics_dt
        self.refused = 0
        self.last_refusal = ""
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._render_thread: int | None = None
        self._load_task(task or tasks_for(self.spec.name)[0])

    # ------------------------------------------------------------------ set-up
    def _load_task(self, task: str | Task) -> None:
        t = task if isinstance(task, Task) else make_task(task)
        if t.robot.name != self.spec.name:
            raise ValueError(
                f"task {t.name!r} runs on {t.robot.name!r}, not on {self.spec.name!r}; tasks of {self.spec.name}: {tasks_for(self.spec.name)}"
            )
        if self._grid is not None:
            t.grid = self._grid
        if self._time_limit is not None:
            t.time_limit = self._time_limit
        world, acts = t.xml()
        self.model = mujoco.MjModel.from_xml_string(BUILDERS[self.spec.name](world, acts))
        self.model.opt.timestep = self.physics_dt
        self.data = mujoco.MjData(self.model)
        self.task = t
        t.bind(self.model)
        m = self.model
        self.arm_joints = [j for a in self.spec.arms for j in a.joint_names]
        self._qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in self.arm_joints])
        self._dadr = np.array([m.jnt_dofadr[m.joint(j).id] for j in self.arm_joints])
        self._act = np.array([m.actuator(j).id for j in self.arm_joints])
        self._finger_q = {
            a.name: [m.jnt_qposadr[m.joint(a.gripper_name + s).id] for s in ("", "_b")] for a in self.spec.arms
        }
        self._finger_act = {a.name: [m.actuator(a.gripper_name + s).id for s in ("", "_b")] for a in self.spec.arms}
        self._site = {a.name: m.site(f"{a.name}_ee").id for a in self.spec.arms}
        self._pads = {a.name: {m.geom(f"{a.name}_pad").id, m.geom(f"{a.name}_pad_b").id} for a in self.spec.arms}
        self._arm_slice = {}
        i = 0
        for a in self.spec.arms:
            self._arm_slice[a.name] = slice(i, i + len(a.joint_names))
            i += len(a.joint_names)
        self.ik = {
            a.name: ArmIK(m, a.joint_names, f"{a.name}_ee", posture=IK_POSTURE[self.spec.name][: len(a.joint_names)])
            for a in self.spec.arms
        }
        self.lower = np.array([x for a in self.spec.arms for x in a.lower])
        self.upper = np.array([x for a in self.spec.arms for x in a.upper])
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
        self.targets = _Targets(q=np.zeros(len(self.arm_joints)))
        self.episode: dict = {}
        self.seed, self.cell, self.steps = 0, -1, 0

    @property
    def layout(self):
        return self.task.layout

    @property
    def time(self) -> float:
        return self.steps * self.control_dt

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int = 0, task: str | Task | None = None, cell: int = -1, split: str = "train") -> dict:
        """New episode, deterministic under `seed`. `cell` -1 = random cell of `split` ("train"/"test"/"all")."""
        if task is not None and (not isinstance(task, str) or task != self.task.name):
            self._load_task(task)
        rng = np.random.default_rng(seed)
        self.seed = int(seed)
        self.cell = self.task.grid.pick_cell(rng, cell, split)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        q0 = self.task.initial_joints(rng)
        q = np.array([q0.get(j, 0.0) for j in self.arm_joints])
        q = np.clip(q, self.lower, self.upper)
        d.qpos[self._qadr] = q
        d.ctrl[self._act] = q
        self.targets = _Targets(q=q.copy(), grip={a.name: 1.0 for a in self.spec.arms})
        self._apply_gripper_ctrl()
        for a in self.spec.arms:
            d.qpos[self._finger_q[a.name]] = FINGER_TRAVEL
        self.steps = 0
        self.episode = {"seed": self.seed, "cell": self.cell}
        self.episode.update(self.task.reset(self, rng, self.cell))
        mujoco.mj_forward(m, d)
        # Let contacts settle (objects resting on surfaces) before the clock starts.
        for _ in range(50):
            self.task.before_step(self)
            mujoco.mj_step(m, d)
        d.time = 0.0
        self._state_cache = None
        self.episode["start_distance"] = None
        st = self.task_state()
        return st

    # ------------------------------------------------------------------ commands
    def refuse(self, reason: str) -> tuple[bool, str]:
        self.refused += 1
        self.last_refusal = reason
        log.warning("refused command: %s", reason)
        return False, reason

    def apply(self, cmd: Command) -> tuple[bool, str]:
        """Validate and apply a command atomically; on refusal nothing changes (the twin holds still)."""
        q = self.targets.q.copy()
        grip = dict(self.targets.grip)
        gripper_names = {a.gripper_name: a.name for a in self.spec.arms}
        idx = {j: i for i, j in enumerate(self.arm_joints)}
        for name, v in (cmd.joints or {}).items():
            v = float(v)
            if not np.isfinite(v):
                return self.refuse(f"joint {name!r}: non-finite value {v}")
            if name in gripper_names:
                if not -LIMIT_TOL <= v <= 1 + LIMIT_TOL:
                    return self.refuse(f"gripper {name!r}: opening {v:.4g} outside 0..1")
                grip[gripper_names[name]] = float(np.clip(v, 0, 1))
                continue
            if name not in idx:
                return self.refuse(f"unknown joint {name!r}; joints: {list(self.spec.joint_names)}")
            i = idx[name]
            if not self.lower[i] - LIMIT_TOL <= v <= self.upper[i] + LIMIT_TOL:
                return self.refuse(f"joint {name!r}: {v:.4g} outside [{self.lower[i]:.4g}, {self.upper[i]:.4g}]")
            q[i] = np.clip(v, self.lower[i], self.upper[i])
        for name, v in (cmd.gripper or {}).items():
            arm = gripper_names.get(name, name)
            if arm not in self._site:
                return self.refuse(f"unknown gripper {name!r}")
            v = float(v)
            if not np.isfinite(v) or not -LIMIT_TOL <= v <= 1 + LIMIT_TOL:
                return self.refuse(f"gripper {name!r}: opening {v} not finite or outside 0..1")
            grip[arm] = float(np.clip(v, 0, 1))
        for arm, pose in (cmd.ee or {}).items():
            if arm not in self._site:
                return self.refuse(f"unknown arm {arm!r}")
            try:
                pos = np.asarray(pose[0], dtype=float).reshape(-1)
                quat = np.asarray(pose[1], dtype=float).reshape(-1)
            except (TypeError, ValueError, IndexError) as e:
                return self.refuse(f"end-effector pose of {arm!r} malformed: {e}")
            if pos.shape != (3,) or quat.shape != (4,):
                return self.refuse(f"end-effector pose of {arm!r}: need 3 + 4 values, got {pos.size} + {quat.size}")
            if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
                return self.refuse(f"end-effector pose of {arm!r}: non-finite value")
            nq = np.linalg.norm(quat)
            if not 0.5 < nq < 1.5:
                return self.refuse(f"end-effector pose of {arm!r}: quaternion norm {nq:.3g} is not ~1")
            lo, hi = np.array(self.spec.workspace_min), np.array(self.spec.workspace_max)
            if np.any(pos < lo - LIMIT_TOL) or np.any(pos > hi + LIMIT_TOL):
                return self.refuse(
                    f"end-effector target {np.round(pos, 3).tolist()} of {arm!r} outside the workspace {lo.tolist()}..{hi.tolist()}"
                )
            s = self._arm_slice[arm]
            q[s], _, _ = self.ik[arm].solve(q[s], pos, quat / nq)
        self.targets = _Targets(q=q, grip=grip)
        self.data.ctrl[self._act] = q
        self._apply_gripper_ctrl()
        return True, ""

    def action_to_command(self, action) -> Command | str:
        """A task-layout action vector as a Command, or the reason it cannot be one."""
        lay = self.task.layout
        try:
            a = np.asarray(action, dtype=float).reshape(-1)
        except (TypeError, ValueError) as e:
            return f"action not numeric: {e}"
        if a.size != lay.dim:
            return f"action has {a.size} values, task {self.task.name!r} expects {lay.dim} ({', '.join(lay.names)})"
        if not np.all(np.isfinite(a)):
            return f"action has non-finite values at {np.flatnonzero(~np.isfinite(a)).tolist()}"
        if lay.mode == MODE_EE_POSE:
            return Command(ee={lay.arm: (a[:3], a[3:7])}, gripper={lay.arm: a[7]})
        if lay.mode == MODE_JOINT:
            return Command(joints=dict(zip(lay.names, a.tolist(), strict=True)))
        return f"unsupported control mode {lay.mode}"

    def apply_action(self, action) -> tuple[bool, str]:
        cmd = self.action_to_command(action)
        if isinstance(cmd, str):
            return self.refuse(cmd)
        return self.apply(cmd)

    def _apply_gripper_ctrl(self) -> None:
        for arm, g in self.targets.grip.items():
            self.data.ctrl[self._finger_act[arm]] = g * FINGER_TRAVEL

    def step(self, action=None) -> StepResult:
        """Apply `action` (task layout vector, a Command, or None = keep targets) and advance one control period."""
        ok, reason = True, ""
        if isinstance(action, Command):
            ok, reason = self.apply(action)
        elif action is not None:
            ok, reason = self.apply_action(action)
        self.task.before_step(self)
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        self.steps += 1
        self._state_cache = None
        if not np.all(np.isfinite(self.data.qpos)):  # never expected; recover rather than propagate NaN
            log.error("physics diverged at t=%.3f; restoring the episode start", self.time)
            self.reset(self.seed, cell=self.cell)
        ev = self.evaluation()
        why = ev.get("failure_reason") or "failed"
        ends = ev["failed"] and (self.end_on == "failure" or why not in RECOVERABLE_FAILURES)
        failure = why if ends and not ev["success"] else ""
        done = ev["success"] or ends or self.time >= self.task.time_limit
        return StepResult(ok, reason, self.time, ev["success"], done, failure)

    # ------------------------------------------------------------------ measurements
    def ee_pose(self, arm: str) -> tuple[np.ndarray, np.ndarray]:
        """Measured end-effector position and (x, y, z, w) orientation in the base frame."""
        sid = self._site[arm]
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[sid])
        return self.data.site_xpos[sid].copy(), from_mujoco(quat)

    def gripper_opening(self, arm: str) -> float:
        return float(np.clip(np.mean(self.data.qpos[self._finger_q[arm]]) / FINGER_TRAVEL, 0.0, 1.0))

    def grasped(self, arm: str, body: int) -> bool:
        """Both finger pads of `arm` touch `body`."""
        pads = self._pads[arm]
        touching = set()
        d, m = self.data, self.model
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = int(c.geom1), int(c.geom2)
            if g1 in pads and m.geom_bodyid[g2] == body:
                touching.add(g1)
            elif g2 in pads and m.geom_bodyid[g1] == body:
                touching.add(g2)
        return len(touching) == 2

    def joint_positions(self) -> np.ndarray:
        """Arm joints (rad) then gripper openings (0..1), in `spec.joint_names` order."""
        return np.concatenate([self.data.qpos[self._qadr], [self.gripper_opening(a.name) for a in self.spec.arms]])

    def joint_velocities(self) -> np.ndarray:
        return np.concatenate([self.data.qvel[self._dadr], np.zeros(len(self.spec.arms))])

    def commanded_action(self) -> np.ndarray:
        """The current targets expressed in the task's action layout (what a hold command would be)."""
        lay = self.task.layout
        if lay.mode == MODE_JOINT:
            vals = dict(zip(self.arm_joints, self.targets.q, strict=True))
            vals.update({a.gripper_name: self.targets.grip[a.name] for a in self.spec.arms})
            return np.array([vals[n] for n in lay.names])
        s = self._arm_slice[lay.arm]
        pos, quat = self.ik[lay.arm].forward(self.targets.q[s])
        return np.concatenate([pos, quat, [self.targets.grip[lay.arm]]])

    def proprio(self) -> dict:
        ee = {}
        for a in self.spec.arms:
            p, q = self.ee_pose(a.name)
            ee[a.name] = {"pos": p.tolist(), "quat_xyzw": q.tolist()}
        return {
            "joint_names": list(self.spec.joint_names),
            "joint_positions": self.joint_positions().tolist(),
            "gripper": {a.name: self.gripper_opening(a.name) for a in self.spec.arms},
            "ee": ee,
            "commanded_joints": self.targets.q.tolist(),
        }

    def state_vector(self) -> tuple[list[str], np.ndarray]:
        """Policy proprioception: joints, grippers, then each arm's EE position and quaternion (xyzw)."""
        names = list(self.spec.joint_names)
        vals = [self.joint_positions()]
        for a in self.spec.arms:
            p, q = self.ee_pose(a.name)
            names += [f"{a.name}_ee_{k}" for k in ("x", "y", "z", "qx", "qy", "qz", "qw")]
            vals.append(np.concatenate([p, q]))
        return names, np.concatenate(vals)

    def measurement(self) -> dict:
        m = self.task.measure(self)
        if "start_distance" in m:
            if self.episode.get("start_distance") is None:
                self.episode["start_distance"] = float(np.linalg.norm(np.subtract(m["ee_pos"], m["target_pos"])))
            m["start_distance"] = self.episode["start_distance"]
        return m

    def evaluation(self) -> dict:
        if self._state_cache is None:
            m = self.measurement()
            self._state_cache = (m, self.task.evaluate(m))
        return self._state_cache[1]

    def task_state(self) -> dict:
        """Privileged, JSON-serialisable task state: objects, success, failure, progress, proprioception."""
        ev = self.evaluation()
        m = self._state_cache[0]
        return {
            "robot": self.spec.name,
            "task": self.task.name,
            "instruction": self.task.instruction,
            "time": self.time,
            "step": self.steps,
            "time_limit": self.task.time_limit,
            "timed_out": self.time >= self.task.time_limit,
            "seed": self.seed,
            "cell": self.cell,
            "train_cell": self.task.grid.is_train(self.cell),
            "episode": {k: v for k, v in self.episode.items() if k not in ("seed", "cell")},
            **{k: (bool(v) if isinstance(v, (bool, np.bool_)) else v) for k, v in ev.items()},
            "measure": m,
            "goal": self.task.goal_values(m),
            "proprio": self.proprio(),
        }

    # ------------------------------------------------------------------ rendering
    def render(self, cameras=None, size: tuple[int, int] = (224, 224)) -> dict[str, np.ndarray]:
        """RGB images (H x W x 3 uint8) from the named cameras (default: all of the robot's). The renderer is
        created on first use and bound to the calling thread (EGL): always render from the same thread."""
        me = threading.get_ident()
        if self._render_thread is None:
            self._render_thread = me
        elif self._render_thread != me:
            raise RuntimeError(
                "SimRobot.render must be called from the thread that first rendered (EGL contexts are thread-bound)"
            )
        h, w = int(size[0]), int(size[1])
        r = self._renderers.get((h, w))
        if r is None:
            r = self._renderers[(h, w)] = mujoco.Renderer(self.model, h, w)
        out = {}
        for cam in cameras or self.spec.cameras:
            r.update_scene(self.data, camera=cam)
            out[cam] = r.render().copy()
        return out

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
