"""The simulated operator: a stand-in for the person who watches the robot and takes over when it must.

Pure Python (no rclpy); `operator_node.py` puts it on ROS with the same interface as the real devices.

Behaviour (mode "intervene"): every control step it reads the privileged task state and looks for trouble:
  * drift: the end effector moved more than `drift_m` further from the current goal (target, object, or place)
    than the closest it had come since the policy last got control;
  * stall: task progress did not rise by `stall_progress` for `stall_s` seconds;
  * heading into failure: the object tips (> `tilt_rad`) while not held, or the hand goes below the work surface;
  * a critical moment: the policy's hand comes within `near_object_m` of an object it has not grasped (people
    watch grasps closely: a knocked-over object ends the episode before a reaction to the tipping can help).
On trouble it decides (with probability `intervention_prob`, seeded) to step in, and does so after
`reaction_delay_s`. While engaged it drives with the scripted expert plus Gaussian hand noise. It hands control back
once back on track: at least `min_takeover_s` engaged and progress `handback_progress` beyond the best the policy had
reached before it took over, and not while holding an object
(or the task succeeded); a person who has brought the task past `finish_progress` finishes it instead. Mode "never" never intervenes; mode "demo" is always in control (initial demonstrations).

Device interface (what `operator_node` publishes, the same as the real devices):

Tora One (Quest 3 style, relative end-effector control with a clutch), `teleop/ee_delta/<arm>` PoseStamped:
    position    = desired EE position - EE position measured when the clutch engaged (base frame, m)
    orientation = q_delta (x, y, z, w) with desired orientation = q_delta * q_engage (rotation in the base frame)
X-Trainer (leader arm): `teleop/joint` JointState with absolute joint targets (rad) and gripper openings (0..1).

`teleop/joy` sensor_msgs/Joy (both robots):
    buttons[0]  clutch / grip (Tora One) or "leader engaged" (X-Trainer): 1 while held = human in control
    buttons[1]  episode start (pressed for one message)
    buttons[2]  episode success
    buttons[3]  episode failure
    axes[0]     trigger = gripper closure: 0.0 released = gripper fully open (opening 1),
                1.0 fully pressed = gripper closed (opening 0); opening = 1 - trigger
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hiors_core.robots import MODE_EE_POSE

from . import rot
from .expert import ScriptedExpert
from .tasks import Task, make_task

MODES = ("intervene", "never", "demo")

# Joy layout (see the module docstring).
BUTTON_CLUTCH, BUTTON_START, BUTTON_SUCCESS, BUTTON_FAILURE = 0, 1, 2, 3
AXIS_TRIGGER = 0


@dataclass(frozen=True)
class OperatorConfig:
    mode: str = "intervene"
    intervention_prob: float = 1.0
    reaction_delay_s: float = 0.4
    stall_s: float = 4.0
    stall_progress: float = 0.02
    drift_m: float = 0.15
    tilt_rad: float = 0.5
    near_object_m: float = 0.07  # 0 = never take over just for a grasp
    min_takeover_s: float = 1.0
    handback_progress: float = 0.1
    finish_progress: float = 0.8  # this close to done, a person finishes the task rather than hand back
    hand_noise_m: float = 0.002
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"operator mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= self.intervention_prob <= 1.0:
            raise ValueError(f"intervention_prob must be in [0, 1], got {self.intervention_prob}")


@dataclass
class OperatorOutput:
    engaged: bool
    action: np.ndarray | None = None  # absolute action in the task's layout while engaged
    reason: str = ""  # why it took over / handed back (set on the step where that happens)


class SimOperator:
    def __init__(self, task: str | Task, config: OperatorConfig | None = None):
        self.task = task if isinstance(task, Task) else make_task(task)
        self.config = config or OperatorConfig()
        self.rng = np.random.default_rng(self.config.seed)
        self.expert = ScriptedExpert(self.task, noise=self.config.hand_noise_m, seed=self.config.seed)
        self.interventions = 0
        self.reset()

    def reset(self) -> None:
        self.engaged = self.config.mode == "demo"
        self.expert.reset()
        self._pending_at: float | None = None
        self._pending_reason = ""
        self._engaged_at = 0.0
        self._progress_at_engage = 0.0
        self._best_dist = np.inf
        self._best_progress = 0.0
        self._progress_time = 0.0
        self._declined: set[str] = set()

    # ------------------------------------------------------------------
    def goal(self, state: dict) -> np.ndarray:
        m = state["measure"]
        if "target_pos" in m:
            return np.asarray(m["target_pos"])
        if m.get("grasped"):
            place = m.get("box_center") or m.get("base_pos")
            return np.asarray(place[:2] + [m["bottle_pos"][2]])
        return np.asarray(m["bottle_pos"])

    def trouble(self, state: dict) -> str:
        """Why a person would take over now ("" = all well)."""
        c = self.config
        m, t = state["measure"], state["time"]
        ee = np.asarray(m["ee_pos"])
        if "bottle_quat_xyzw" in m and not m.get("grasped"):
            up = rot.to_matrix(rot.xyzw_to_wxyz(m["bottle_quat_xyzw"]))[:, 2]
            if np.arccos(np.clip(up[2], -1, 1)) > c.tilt_rad and not state.get("failed"):
                return "object tipping"
        if c.near_object_m > 0 and "bottle_pos" in m and not m.get("grasped"):
            near = float(np.linalg.norm(ee - np.asarray(m["bottle_pos"])))
            if near < c.near_object_m:
                return f"grasp: hand {near:.2f} m from the object"
        dist = float(np.linalg.norm(ee - self.goal(state)))
        self._best_dist = min(self._best_dist, dist)
        if dist > self._best_dist + c.drift_m:
            return f"drift: {dist:.2f} m from the goal (had come to {self._best_dist:.2f} m)"
        if state["progress"] > self._best_progress + c.stall_progress:
            self._best_progress, self._progress_time = state["progress"], t
        if t - self._progress_time > c.stall_s:
            return f"stall: no progress for {t - self._progress_time:.1f} s"
        return ""

    def update(self, state: dict) -> OperatorOutput:
        c = self.config
        t = state["time"]
        if c.mode == "never" or state.get("success") or state.get("failed"):
            if self.engaged and c.mode != "demo":
                self.engaged = False
                return OperatorOutput(False, None, "episode over")
            if c.mode != "demo":
                return OperatorOutput(False)
        if c.mode == "demo":
            return OperatorOutput(True, self.expert.act(state))
        reason = ""
        if not self.engaged:
            why = self.trouble(state)
            if why and self._pending_at is None:
                kind = why.split(":")[0]
                if kind not in self._declined:
                    if self.rng.random() < c.intervention_prob:
                        self._pending_at, self._pending_reason = t + c.reaction_delay_s, why
                    else:
                        self._declined.add(kind)  # decided to let it be; do not roll again for the same kind
            if self._pending_at is not None and t >= self._pending_at:
                self.engaged, self._pending_at = True, None
                self._engaged_at, self._progress_at_engage = t, state["progress"]
                self.expert.reset()
                self.interventions += 1
                reason = f"take over: {self._pending_reason}"
        elif (
            t - self._engaged_at >= c.min_takeover_s
            # Undo the drift, then make real progress: measured from the best the policy had reached.
            and state["progress"] >= max(self._progress_at_engage, self._best_progress) + c.handback_progress
            and state["progress"] < c.finish_progress
            and not state["measure"].get("grasped")  # an object in hand is placed before letting go of control
            and self.expert.phase not in ("close", "release")
        ):
            self.engaged = False
            self._best_dist = np.inf
            self._best_progress, self._progress_time = state["progress"], t
            self._declined.clear()
            return OperatorOutput(False, None, "hand back: on track again")
        if self.engaged:
            return OperatorOutput(True, self.expert.act(state), reason)
        return OperatorOutput(False, None, reason)


# --------------------------------------------------------------------------- device encodings (pure)
def ee_delta(action, engage_pos, engage_quat_xyzw) -> tuple[np.ndarray, np.ndarray]:
    """Quest-3-style relative command: (position delta, rotation delta quaternion xyzw) from an absolute
    EE-layout action and the EE pose at clutch engage. Inverse of `apply_ee_delta`."""
    a = np.asarray(action, dtype=float)
    dp = a[:3] - np.asarray(engage_pos, dtype=float)
    dq = rot.mul(rot.xyzw_to_wxyz(a[3:7]), rot.conj(rot.xyzw_to_wxyz(engage_quat_xyzw)))
    return dp, rot.wxyz_to_xyzw(rot.normalize(dq))


def apply_ee_delta(delta_pos, delta_quat_xyzw, engage_pos, engage_quat_xyzw) -> tuple[np.ndarray, np.ndarray]:
    """Absolute EE target (position, quaternion xyzw) from a relative command and the pose at clutch engage."""
    p = np.asarray(engage_pos, dtype=float) + np.asarray(delta_pos, dtype=float)
    q = rot.mul(rot.xyzw_to_wxyz(delta_quat_xyzw), rot.xyzw_to_wxyz(engage_quat_xyzw))
    return p, rot.wxyz_to_xyzw(rot.normalize(q))


class QuestHand:
    """The operator's hand on a relative (clutch) device, steered by eye: each step the hand moves a fraction of
    the way the arm still has to go, as seen from the arm's measured pose, never by more than a hand's speed.

    A person does not know where the arbiter anchored the relative command (the last *commanded* pose, which may
    differ from where the arm is); closing the loop on what they see makes that offset irrelevant, as it is for a
    real operator. Output: the (position delta, rotation delta xyzw) since engage, what `teleop/ee_delta` carries.
    """

    def __init__(self, gain: float = 0.35, max_step_m: float = 0.03, max_step_rad: float = 0.15, reach_m: float = 1.5):
        self.gain, self.max_step_m, self.max_step_rad, self.reach_m = gain, max_step_m, max_step_rad, reach_m
        self.reset()

    def reset(self) -> None:
        self.dp = np.zeros(3)
        self.dq = np.array([1.0, 0.0, 0.0, 0.0])  # wxyz

    def update(self, goal_pos, goal_quat_xyzw, ee_pos, ee_quat_xyzw) -> tuple[np.ndarray, np.ndarray]:
        step = self.gain * (np.asarray(goal_pos, float) - np.asarray(ee_pos, float))
        n = float(np.linalg.norm(step))
        if n > self.max_step_m:
            step *= self.max_step_m / n
        self.dp = self.dp + step
        n = float(np.linalg.norm(self.dp))
        if n > self.reach_m:  # an arm's length: the hand cannot wind up without bound
            self.dp *= self.reach_m / n
        err = rot.mul(rot.xyzw_to_wxyz(goal_quat_xyzw), rot.conj(rot.xyzw_to_wxyz(ee_quat_xyzw)))
        v = rot.to_rotvec(err)  # shortest rotation the hand still has to make (base frame)
        v = v * self.gain
        a = float(np.linalg.norm(v))
        if a > self.max_step_rad:
            v *= self.max_step_rad / a
        self.dq = rot.normalize(rot.mul(rot.from_rotvec(v), self.dq))
        return self.dp.copy(), rot.wxyz_to_xyzw(self.dq)


def trigger_from_opening(opening: float) -> float:
    return float(np.clip(1.0 - opening, 0.0, 1.0))


def is_ee_task(task: Task) -> bool:
    return task.layout.mode == MODE_EE_POSE
