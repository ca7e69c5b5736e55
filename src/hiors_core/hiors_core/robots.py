"""Robot facts in one place: joint names and limits, action layouts, cameras, workspace, control rate, default
control mode and human input device (a task's own facts are in `hiors_core.tasks`).

The simulated twins build their MJCF joint ranges from these specs, the arbiter enforces the same limits,
and the policy sizes its state and action vectors from them, so a limit can never differ between them.
Link lengths and limits are the published figures of the real arms where known, rounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MODE_JOINT = 0  # absolute joint positions (rad) + gripper opening (0..1); = ActionChunk.MODE_JOINT
MODE_EE_POSE = 1  # absolute end-effector pose (m, quaternion xyzw) + gripper opening; = ActionChunk.MODE_EE_POSE
CONTROL_MODES = {"joint": MODE_JOINT, "ee": MODE_EE_POSE}  # the arbiter's `control_mode` values -> MODE_*


@dataclass(frozen=True)
class ArmSpec:
    name: str  # "left" / "right"
    joint_names: tuple[str, ...]
    lower: tuple[float, ...]  # rad
    upper: tuple[float, ...]  # rad
    max_velocity: tuple[float, ...]  # rad/s
    link_lengths: tuple[float, ...]  # m, shoulder to wrist, rough
    gripper_name: str = ""


@dataclass(frozen=True)
class RobotSpec:
    name: str
    arms: tuple[ArmSpec, ...]
    cameras: tuple[str, ...]
    control_rate_hz: float
    # Axis-aligned workspace box for end-effector targets in the base frame (m): (min xyz, max xyz).
    workspace_min: tuple[float, float, float]
    workspace_max: tuple[float, float, float]
    control_mode: str  # default control mode of its tasks and its arbiter: "ee" | "joint" (CONTROL_MODES)
    human_source: str  # the human input device it is teleoperated with: "quest3" | "leader_arm"
    base_frame: str = "base_link"
    max_ee_step: float = 0.03  # m per control step, for end-effector targets
    max_rot_step: float = 0.25  # rad per control step
    extra: dict = field(default_factory=dict)

    def arm(self, name: str) -> ArmSpec:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(f"robot {self.name!r} has no arm {name!r} (arms: {[a.name for a in self.arms]})")

    @property
    def joint_names(self) -> tuple[str, ...]:
        """All arm joints, then all grippers, in a fixed order."""
        return tuple(j for a in self.arms for j in a.joint_names) + tuple(a.gripper_name for a in self.arms)

    @property
    def joint_lower(self) -> np.ndarray:
        return np.array([x for a in self.arms for x in a.lower] + [0.0] * len(self.arms), dtype=np.float64)

    @property
    def joint_upper(self) -> np.ndarray:
        return np.array([x for a in self.arms for x in a.upper] + [1.0] * len(self.arms), dtype=np.float64)

    @property
    def max_joint_step(self) -> np.ndarray:
        """Largest allowed change of each joint target in one control step."""
        dt = 1.0 / self.control_rate_hz
        v = [x for a in self.arms for x in a.max_velocity] + [4.0] * len(self.arms)  # gripper: full stroke in 0.25 s
        return np.array(v, dtype=np.float64) * dt


@dataclass(frozen=True)
class ActionLayout:
    """How a task's action vector is laid out: control mode, names, and limits per column."""

    mode: int
    names: tuple[str, ...]
    arm: str = ""  # for MODE_EE_POSE: the arm that is commanded

    @property
    def dim(self) -> int:
        return len(self.names)


EE_ACTION_NAMES = ("x", "y", "z", "qx", "qy", "qz", "qw", "gripper")


def ee_layout(arm: str) -> ActionLayout:
    return ActionLayout(MODE_EE_POSE, tuple(f"{arm}_{n}" for n in EE_ACTION_NAMES), arm)


def joint_layout(spec: RobotSpec) -> ActionLayout:
    return ActionLayout(MODE_JOINT, spec.joint_names)


def _arm(side: str, n: int, lower, upper, vel, links) -> ArmSpec:
    return ArmSpec(
        name=side,
        joint_names=tuple(f"{side}_joint{i + 1}" for i in range(n)),
        lower=tuple(lower),
        upper=tuple(upper),
        max_velocity=tuple(vel),
        link_lengths=tuple(links),
        gripper_name=f"{side}_gripper",
    )


# Paxini Tora One: torso with two 7-DoF arms and parallel grippers; head (top) camera and a left wrist camera.
_TORA_LOWER = (-3.05, -1.57, -3.05, -2.35, -3.05, -1.57, -1.57)
_TORA_UPPER = (3.05, 1.57, 3.05, 0.0, 3.05, 1.57, 1.57)
_TORA_VEL = (2.0, 2.0, 2.5, 2.5, 3.0, 3.0, 3.0)
TORA_ONE = RobotSpec(
    name="tora_one",
    arms=(
        _arm("left", 7, _TORA_LOWER, _TORA_UPPER, _TORA_VEL, (0.12, 0.28, 0.25, 0.10)),
        _arm("right", 7, _TORA_LOWER, _TORA_UPPER, _TORA_VEL, (0.12, 0.28, 0.25, 0.10)),
    ),
    cameras=("top", "left_wrist"),
    control_rate_hz=25.0,
    workspace_min=(-0.2, -0.7, 0.6),
    workspace_max=(0.8, 0.7, 1.8),
    control_mode="ee",
    human_source="quest3",
)

# Dobot X-Trainer: two 6-DoF arms with parallel grippers on a table; top camera and two wrist cameras.
_XT_LOWER = (-3.05, -1.8, -2.6, -3.05, -1.8, -3.05)
_XT_UPPER = (3.05, 1.8, 2.6, 3.05, 1.8, 3.05)
_XT_VEL = (3.0, 3.0, 3.0, 4.0, 4.0, 4.0)
XTRAINER = RobotSpec(
    name="xtrainer",
    arms=(
        _arm("left", 6, _XT_LOWER, _XT_UPPER, _XT_VEL, (0.10, 0.26, 0.24, 0.08)),
        _arm("right", 6, _XT_LOWER, _XT_UPPER, _XT_VEL, (0.10, 0.26, 0.24, 0.08)),
    ),
    cameras=("top", "left_wrist", "right_wrist"),
    control_rate_hz=25.0,
    workspace_min=(-0.6, -0.6, 0.0),
    workspace_max=(0.6, 0.6, 0.6),
    control_mode="joint",
    human_source="leader_arm",
)

ROBOTS = {r.name: r for r in (TORA_ONE, XTRAINER)}


def get_robot(name: str) -> RobotSpec:
    try:
        return ROBOTS[name]
    except KeyError:
        raise KeyError(f"unknown robot {name!r}; known robots: {sorted(ROBOTS)}") from None
