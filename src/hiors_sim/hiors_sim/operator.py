"""The simulated operator: a stand-in for the person who watches the robot and takes over when it must.

Pure Python (no rclpy); `operator_node.py` puts it on ROS with the same interface as the real devices.

Behaviour (mode "intervene"): every control step it looks at what a person watching the robot sees (the hands'
and the objects' poses, how they move, the task's progress and the time) and looks for trouble. Nothing it uses
looks ahead of the present step; velocities are finite differences of what it has seen.
  * a wild arm: a policy-driven hand moving faster than `wild_speed_mps`;
  * a shaky hand near an object: within `near_object_m` of an object it has not grasped (now, or where it will be
    in `lookahead_s` at its present velocity), the hand shakes (acceleration averaged over ~0.2 s above
    `shaky_accel_mps2`), rushes (faster than `approach_speed_mps`), comes down off the object's axis by more
    than `aim_tol_m` (its fingers would hit the object, not straddle it), or is closed without being lined up to
    grasp (a fist pushes): a steady, open hand lined up over the object is left alone;
  * the object disturbed: not held, it tilts more than `tilt_rad` or moves faster than `object_speed_mps` relative
    to what carries it (the conveyor), away from its place: it is being pushed and will fall;
  * about to drop: the policy opens the gripper on an object it holds away from the object's place;
  * drift: the end effector moved more than `drift_m` further from the current goal (target, object, or place)
    than the closest it had come since the policy last got control;
  * stall: task progress did not rise by `stall_progress` for `stall_s` seconds;
  * out of time: `patience` of the episode's time limit has passed and the task is not nearly done
    (`finish_progress`): a person finishes it rather than lose the episode.
These keep a decent policy in control (a scripted expert's clean grasp trips none of them), so the operator's share
falls as the policy improves. On trouble it decides (with probability `intervention_prob`, seeded) to step in, and
does so after `reaction_delay_s`. While engaged it drives with the scripted expert plus Gaussian hand noise. It hands
control back once back on track: at least `min_takeover_s` engaged and progress `handback_progress` beyond the best
the policy had reached before it took over, and not while holding an object (or the task succeeded); a person who
has brought the task past `finish_progress`, or stepped in because time was running out, finishes it instead. Mode
"never" never intervenes; mode "demo" is always in control (initial demonstrations).

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
from hiors_core.rotations import (
    IDENTITY_Q,
    quat_conj,
    quat_from_rotvec,
    quat_mul,
    quat_to_matrix,
    quat_to_rotvec,
    quat_unit,
)

from .expert import ScriptedExpert
from .tasks import Task, make_task

MODES = ("intervene", "never", "demo")

PLACE_RADIUS_M = 0.08  # an object this close to its place (box, base) is being put down: it may move and tilt
GRASP_ZONE_M = 0.09  # hand height above an object's centre below which its fingers reach the object
DESCENT_ZONE_M, DESCENT_MPS = 0.2, 0.05  # a hand this high over an object moving down is coming down onto it
CARRY_HORIZON_S = 2.0  # how far along a carried object's path a hand waiting for it may be
CONTACT_RADIUS_M = 0.065  # half the open fingers' span plus an object's half width: closer, a finger hits it
HAND_OPEN = 0.5  # gripper opening above which a hand is open: not holding, not closing on an object

# Joy layout (see the module docstring).
BUTTON_CLUTCH, BUTTON_START, BUTTON_SUCCESS, BUTTON_FAILURE = 0, 1, 2, 3
AXIS_TRIGGER = 0


@dataclass(frozen=True)
class OperatorConfig:
    mode: str = "intervene"
    intervention_prob: float = 1.0
    reaction_delay_s: float = 0.3  # a person already watching closely; the graph adds its own latency
    stall_s: float = 2.5
    stall_progress: float = 0.02
    drift_m: float = 0.15
    tilt_rad: float = 0.15  # an upright object leaning this far while not held is being pushed over
    object_speed_mps: float = 0.15  # a resting object moving this fast (relative to its carrier) is being pushed
    near_object_m: float = 0.15  # hand this close to an object's centre: watch the grasp (0 = never)
    lookahead_s: float = 0.4  # how far ahead a person extrapolates the hand's motion
    shaky_accel_mps2: float = 8.0  # a steady grasp stays under ~6 m/s^2; an untrained policy's hand ~15-20
    aim_tol_m: float = 0.015  # a hand at the object's height this far off its axis hits it instead of grasping
    approach_speed_mps: float = 0.7  # a deliberate grasp approaches at up to ~0.5 m/s
    wild_speed_mps: float = 1.0  # anywhere
    patience: float = 0.6  # share of the time limit after which a person finishes an unfinished task (1 = never)
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
        if not 0.0 < self.patience <= 1.0:
            raise ValueError(f"patience must be in (0, 1], got {self.patience}")
        for name in ("reaction_delay_s", "stall_s", "lookahead_s", "near_object_m", "min_takeover_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


# Every knob's meaning, in one place for the node's parameter descriptions (defaults: OperatorConfig).
KNOBS = {
    "mode": "intervene | never | demo (always in control)",
    "intervention_prob": "probability of stepping in on a detected problem",
    "reaction_delay_s": "delay between noticing a problem and taking over (s)",
    "stall_s": "no progress for this long counts as a stall (s)",
    "stall_progress": "progress rise that counts as progress (0..1)",
    "drift_m": "moving this much further from the goal than the best so far is drift (m)",
    "tilt_rad": "an object not held tilting this far is being pushed over (rad)",
    "object_speed_mps": "an object not held moving this fast relative to its carrier is being pushed (m/s)",
    "near_object_m": "watch a hand this close to an ungrasped object, now or lookahead_s ahead (m; 0 = never)",
    "lookahead_s": "how far ahead the hand's motion is extrapolated (s)",
    "shaky_accel_mps2": "a hand near an object shaking harder than this is taken over (m/s^2)",
    "aim_tol_m": "a hand coming down this far off an object's axis would hit it (m)",
    "approach_speed_mps": "a hand near an object moving faster than this is taken over (m/s)",
    "wild_speed_mps": "a hand moving faster than this anywhere is taken over (m/s)",
    "patience": "share of the time limit after which an unfinished task is finished by the operator (1 = never)",
    "min_takeover_s": "shortest takeover (s)",
    "handback_progress": "progress beyond the policy's best before handing back (0..1)",
    "finish_progress": "progress beyond which the operator finishes instead of handing back (0..1)",
    "hand_noise_m": "std of the hand's position noise per step (m)",
    "seed": "seed of the operator's random choices",
}


SHAKE_WINDOW_S = 0.2  # a person judges a hand's steadiness over a few frames, not one


class Watcher:
    """What a person sees move: the hands' and the object's velocities from consecutive observations (no peeking
    ahead). Pure; `observe` once per task state."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.t: float | None = None
        self.hand: dict[str, np.ndarray] = {}
        self.hand_vel: dict[str, np.ndarray] = {}
        self.shake: dict[str, float] = {}  # mean |acceleration| over ~SHAKE_WINDOW_S (m/s^2)
        self.obj: np.ndarray | None = None
        self.obj_vel = np.zeros(3)  # relative to what carries it
        self.obj_abs_vel = np.zeros(3)
        self.carrier: float | None = None

    def observe(self, state: dict) -> None:
        t, m = float(state["time"]), state["measure"]
        hands = {arm: np.asarray(ee["pos"], dtype=float) for arm, ee in state["proprio"]["ee"].items()}
        obj = np.asarray(m["bottle_pos"], dtype=float) if "bottle_pos" in m else None
        carrier = m.get("plate_y")
        dt = t - self.t if self.t is not None else 0.0
        if dt > 1e-6:
            w = min(1.0, dt / SHAKE_WINDOW_S)
            for arm, p in hands.items():
                if arm not in self.hand:
                    continue
                v = (p - self.hand[arm]) / dt
                if arm in self.hand_vel:
                    a = float(np.linalg.norm(v - self.hand_vel[arm])) / dt
                    self.shake[arm] = (1 - w) * self.shake.get(arm, a) + w * a
                self.hand_vel[arm] = v
            if obj is not None and self.obj is not None:
                self.obj_abs_vel = (obj - self.obj) / dt
                self.obj_vel = self.obj_abs_vel.copy()
                if carrier is not None and self.carrier is not None:
                    self.obj_vel[1] -= (carrier - self.carrier) / dt  # the conveyor carries it along y
        elif self.t is not None and t < self.t:  # a new episode without a reset: start over
            self.reset()
        self.t, self.hand, self.obj, self.carrier = t, hands, obj, carrier


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
        self.watch = Watcher()
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
        self._held = False  # the goal drift is measured against: the object (False) or its place (True)
        self._finishing = False  # stepped in to finish before the time limit: no hand back
        self.watch.reset()

    # ------------------------------------------------------------------
    def goal(self, state: dict) -> np.ndarray:
        m = state["measure"]
        if "target_pos" in m:
            return np.asarray(m["target_pos"])
        if m.get("grasped"):
            place = m.get("box_center") or m.get("base_pos")
            return np.asarray(place[:2] + [m["bottle_pos"][2]])
        return np.asarray(m["bottle_pos"])

    def place(self, state: dict) -> np.ndarray | None:
        m = state["measure"]
        p = m.get("box_center") or m.get("base_pos")
        return None if p is None else np.asarray(p, dtype=float)

    def trouble(self, state: dict) -> str:
        """Why a person would take over now ("" = all well). Call after `self.watch.observe(state)`."""
        c, w = self.config, self.watch
        m, t = state["measure"], state["time"]
        for arm, v in w.hand_vel.items():
            speed = float(np.linalg.norm(v))
            if speed > c.wild_speed_mps:
                return f"wild arm: {arm} hand at {speed:.2f} m/s"
        held = bool(m.get("grasped"))
        if "bottle_pos" in m and not held:
            obj = np.asarray(m["bottle_pos"], dtype=float)
            place = self.place(state)
            at_place = place is not None and float(np.linalg.norm(obj[:2] - place[:2])) < PLACE_RADIUS_M
            if "bottle_quat_xyzw" in m and not at_place:
                up = quat_to_matrix(m["bottle_quat_xyzw"])[:, 2]
                tilt = float(np.arccos(np.clip(up[2], -1, 1)))
                if tilt > c.tilt_rad:
                    return f"object tipping: {tilt:.2f} rad"
            speed = float(np.linalg.norm(w.obj_vel))
            if speed > c.object_speed_mps and not at_place:
                return f"object pushed: moving at {speed:.2f} m/s"
            if c.near_object_m > 0:
                grips = state["proprio"].get("gripper", {})
                for arm, p in w.hand.items():
                    why = self._grasp_trouble(arm, p, w.hand_vel.get(arm, np.zeros(3)), obj, grips.get(arm, 1.0))
                    if why:
                        return why
        if held and "bottle_pos" in m:
            grip = float(state["proprio"]["gripper"].get(self.task.arm, 0.0))
            place = self.place(state)
            obj = np.asarray(m["bottle_pos"], dtype=float)
            away = place is None or float(np.linalg.norm(obj[:2] - place[:2])) > PLACE_RADIUS_M
            if away and grip > HAND_OPEN:
                return f"about to drop: gripper opening {grip:.2f} away from the place"
        ee = np.asarray(m["ee_pos"])
        dist = float(np.linalg.norm(ee - self.goal(state)))
        if held != self._held:  # the goal moved (object -> place, or back): distances start over
            self._held, self._best_dist = held, np.inf
        self._best_dist = min(self._best_dist, dist)
        if dist > self._best_dist + c.drift_m:
            return f"drift: {dist:.2f} m from the goal (had come to {self._best_dist:.2f} m)"
        if state["progress"] > self._best_progress + c.stall_progress:
            self._best_progress, self._progress_time = state["progress"], t
        if t - self._progress_time > c.stall_s:
            return f"stall: no progress for {t - self._progress_time:.1f} s"
        if self.out_of_time(state):
            return f"out of time: progress {state['progress']:.2f} at {t:.1f} s"
        return ""

    def _grasp_trouble(self, arm: str, p: np.ndarray, v: np.ndarray, obj: np.ndarray, opening: float) -> str:
        """A hand near an object it has not grasped: fine while steady and lined up over it."""
        c = self.config
        ahead = p + v * c.lookahead_s  # where it is heading
        near = min(float(np.linalg.norm(p - obj)), float(np.linalg.norm(ahead - obj)))
        if near >= c.near_object_m:
            return ""
        shake, speed = self.watch.shake.get(arm, 0.0), float(np.linalg.norm(v))
        if shake > c.shaky_accel_mps2:
            return f"grasp: {arm} hand shaking ({shake:.0f} m/s^2) {near:.2f} m from the object"
        if speed > c.approach_speed_mps:
            return f"grasp: {arm} hand rushing ({speed:.2f} m/s) {near:.2f} m from the object"
        # Lined up: the hand is over the object's axis (or over its path: a conveyor brings it into the hand) by the
        # time its fingers come down to the object's height.
        height = min(p[2], ahead[2]) - obj[2]
        low = height < GRASP_ZONE_M or (v[2] < -DESCENT_MPS and height < DESCENT_ZONE_M)
        path = (obj[:2], obj[:2] + self.watch.obj_abs_vel[:2] * CARRY_HORIZON_S)
        off = _distance_to_segment(p[:2], *path)
        if opening <= HAND_OPEN:
            # Closing with the object between its fingers, the grasp is under way: a person waits to see whether it
            # holds. A closed hand anywhere else near an object it does not hold can only push it.
            if low and off < CONTACT_RADIUS_M:
                return ""
            return f"grasp: {arm} hand closed ({opening:.2f}) {near:.2f} m from an object it does not hold"
        if low and c.aim_tol_m < off < CONTACT_RADIUS_M:
            return f"grasp: {arm} hand coming down {off:.3f} m off the object's axis (its fingers would hit it)"
        return ""

    def out_of_time(self, state: dict) -> bool:
        limit = state.get("time_limit")
        return bool(
            limit
            and self.config.patience < 1.0
            and state["time"] > self.config.patience * float(limit)
            and state["progress"] < self.config.finish_progress
        )

    def update(self, state: dict) -> OperatorOutput:
        c = self.config
        t = state["time"]
        self.watch.observe(state)
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
                self._finishing = self._pending_reason.startswith("out of time")
                self.expert.reset()
                self.interventions += 1
                reason = f"take over: {self._pending_reason}"
        elif (
            t - self._engaged_at >= c.min_takeover_s
            # Undo the drift, then make real progress: measured from the best the policy had reached.
            and state["progress"] >= max(self._progress_at_engage, self._best_progress) + c.handback_progress
            and state["progress"] < c.finish_progress
            and not self._finishing
            and not self.out_of_time(state)
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


def _distance_to_segment(p, a, b) -> float:
    ab = b - a
    n = float(ab @ ab)
    u = 0.0 if n < 1e-12 else float(np.clip((p - a) @ ab / n, 0.0, 1.0))
    return float(np.linalg.norm(p - (a + u * ab)))


# --------------------------------------------------------------------------- device encodings (pure)
def ee_delta(action, engage_pos, engage_quat_xyzw) -> tuple[np.ndarray, np.ndarray]:
    """Quest-3-style relative command: (position delta, rotation delta quaternion xyzw) from an absolute
    EE-layout action and the EE pose at clutch engage. Inverse of `hiors_core.rotations.apply_delta`, which the
    arbiter applies to it."""
    a = np.asarray(action, dtype=float)
    dp = a[:3] - np.asarray(engage_pos, dtype=float)
    dq = quat_mul(a[3:7], quat_conj(engage_quat_xyzw))
    return dp, quat_unit(dq)


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
        self.dq = IDENTITY_Q.copy()

    def update(self, goal_pos, goal_quat_xyzw, ee_pos, ee_quat_xyzw) -> tuple[np.ndarray, np.ndarray]:
        step = self.gain * (np.asarray(goal_pos, float) - np.asarray(ee_pos, float))
        n = float(np.linalg.norm(step))
        if n > self.max_step_m:
            step *= self.max_step_m / n
        self.dp = self.dp + step
        n = float(np.linalg.norm(self.dp))
        if n > self.reach_m:  # an arm's length: the hand cannot wind up without bound
            self.dp *= self.reach_m / n
        err = quat_mul(goal_quat_xyzw, quat_conj(ee_quat_xyzw))
        v = quat_to_rotvec(err)  # shortest rotation the hand still has to make (base frame)
        v = v * self.gain
        a = float(np.linalg.norm(v))
        if a > self.max_step_rad:
            v *= self.max_step_rad / a
        self.dq = quat_unit(quat_mul(quat_from_rotvec(v), self.dq))
        return self.dp.copy(), self.dq.copy()


def trigger_from_opening(opening: float) -> float:
    return float(np.clip(1.0 - opening, 0.0, 1.0))


def is_ee_task(task: Task) -> bool:
    return task.layout.mode == MODE_EE_POSE
