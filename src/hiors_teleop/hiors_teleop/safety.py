"""The arbiter's safety math, pure numpy: validation (NaN/inf, dimension, orientation), limit clamping and
step-size limiting. The contract: `make_safe` never returns a command outside the limits, and (when the previous
command was itself inside the limits) never one further than one control step's worth of motion from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hiors_core.robots import MODE_EE_POSE, MODE_JOINT, ActionLayout, RobotSpec, ee_layout, joint_layout
from hiors_core.rotations import quat_angle, quat_slerp, quat_unit

GRIPPER_SPEED = 4.0  # gripper opening per second (full stroke in 0.25 s), as robots.max_joint_step


class RefusedCommand(ValueError):
    """A command that is refused outright (never clamped into shape): non-finite, wrong dimension, no orientation."""


@dataclass(frozen=True)
class Limits:
    """Everything `make_safe` needs for one action layout."""

    mode: int
    names: tuple[str, ...]
    lower: np.ndarray  # (D,) per-column lower bound (EE mode: workspace for xyz, -1 for quaternion, 0 for gripper)
    upper: np.ndarray  # (D,)
    max_step: np.ndarray  # (D,) per-column step limit (joint mode; EE mode: only the gripper column is used)
    max_ee_step: float = 0.03  # m per control step (EE mode, Euclidean)
    max_rot_step: float = 0.25  # rad per control step (EE mode)

    @property
    def dim(self) -> int:
        return len(self.names)

    @classmethod
    def for_robot(cls, spec: RobotSpec, layout: ActionLayout, control_rate_hz: float | None = None) -> Limits:
        rate = float(control_rate_hz or spec.control_rate_hz)
        scale = spec.control_rate_hz / rate  # a faster loop takes proportionally smaller steps
        if layout.mode == MODE_JOINT:
            names = spec.joint_names
            index = {n: i for i, n in enumerate(names)}
            try:
                cols = [index[n] for n in layout.names]
            except KeyError as e:
                raise ValueError(f"robot {spec.name!r} has no joint {e.args[0]!r}") from None
            return cls(
                mode=MODE_JOINT,
                names=layout.names,
                lower=spec.joint_lower[cols],
                upper=spec.joint_upper[cols],
                max_step=spec.max_joint_step[cols] * scale,
            )
        if layout.mode == MODE_EE_POSE:
            d = layout.dim
            lower = np.array(list(spec.workspace_min) + [-1.0] * 4 + [0.0] * (d - 7))
            upper = np.array(list(spec.workspace_max) + [1.0] * 4 + [1.0] * (d - 7))
            step = np.full(d, np.inf)
            step[7:] = GRIPPER_SPEED / rate
            return cls(
                mode=MODE_EE_POSE,
                names=layout.names,
                lower=lower,
                upper=upper,
                max_step=step,
                max_ee_step=spec.max_ee_step * scale,
                max_rot_step=spec.max_rot_step * scale,
            )
        raise ValueError(f"unknown control mode {layout.mode}")


def layout_for(spec: RobotSpec, mode: str, arm: str = "left") -> ActionLayout:
    """'ee' -> the arm's EE-pose layout; 'joint' -> all joints + grippers of the robot."""
    if mode == "ee":
        spec.arm(arm)
        return ee_layout(arm)
    if mode == "joint":
        return joint_layout(spec)
    raise ValueError(f"control_mode must be 'ee' or 'joint', got {mode!r}")


def validate(action, limits: Limits) -> np.ndarray:
    """Refuse (raise RefusedCommand with the reason) a command of the wrong size, with NaN/inf, or without an
    orientation; return it as float64 otherwise (EE quaternions normalized)."""
    try:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise RefusedCommand("not a numeric vector") from None
    if a.shape[0] != limits.dim:
        raise RefusedCommand(f"wrong dimension: {a.shape[0]} values, expected {limits.dim}")
    if not np.all(np.isfinite(a)):
        bad = np.flatnonzero(~np.isfinite(a)).tolist()
        raise RefusedCommand(f"non-finite values at {[limits.names[i] for i in bad[:4]]}")
    if limits.mode == MODE_EE_POSE:
        try:
            a[3:7] = quat_unit(a[3:7])
        except ValueError:
            raise RefusedCommand("zero quaternion: no orientation") from None
    return a


@dataclass(frozen=True)
class SafeCommand:
    action: np.ndarray  # (D,) float64, inside the limits
    clamped: bool  # a limit (position or step) changed the requested command
    reason: str = ""  # which limits, for the ControlState


def clamp_to_limits(a: np.ndarray, limits: Limits) -> tuple[np.ndarray, list[str]]:
    out = np.clip(a, limits.lower, limits.upper)
    hit = []
    if limits.mode == MODE_EE_POSE:
        if np.any(out[:3] != a[:3]):
            hit.append("workspace")
        out[3:7] = a[3:7]  # already unit; the box does not apply to the quaternion
        if np.any(out[7:] != a[7:]):
            hit.append("gripper range")
    elif np.any(out != a):
        hit.append("joint limits")
    return out, hit


def limit_step(target: np.ndarray, prev: np.ndarray, limits: Limits) -> tuple[np.ndarray, list[str]]:
    out = target.copy()
    hit = []
    if limits.mode == MODE_JOINT:
        out = prev + np.clip(target - prev, -limits.max_step, limits.max_step)
        if np.any(np.abs(out - target) > 1e-12):
            hit.append("joint step")
        return out, hit
    dp = target[:3] - prev[:3]
    n = float(np.linalg.norm(dp))
    if n > limits.max_ee_step:
        out[:3] = prev[:3] + dp * (limits.max_ee_step / n)
        hit.append("ee step")
    ang = quat_angle(prev[3:7], target[3:7])
    if ang > limits.max_rot_step:
        out[3:7] = quat_slerp(prev[3:7], target[3:7], limits.max_rot_step / ang)
        hit.append("rotation step")
    g = slice(7, None)
    out[g] = prev[g] + np.clip(target[g] - prev[g], -limits.max_step[g], limits.max_step[g])
    if np.any(np.abs(out[g] - target[g]) > 1e-12):
        hit.append("gripper step")
    return out, hit


def make_safe(target, prev, limits: Limits) -> SafeCommand:
    """Validate, clamp to limits, limit the step from `prev` (the last command sent; None for the first one).
    Raises RefusedCommand for commands that must not be forwarded at all."""
    a = validate(target, limits)
    a, hit = clamp_to_limits(a, limits)
    if prev is not None:
        p = validate(prev, limits)
        a, hit2 = limit_step(a, p, limits)
        hit += hit2
        # If prev itself was outside the limits (e.g. a measured state), the limits win over the step size.
        a2, hit3 = clamp_to_limits(a, limits)
        if hit3:
            a, hit = a2, hit + hit3
    if limits.mode == MODE_EE_POSE:
        a[3:7] = quat_unit(a[3:7])
        if prev is not None and float(np.dot(a[3:7], p[3:7])) < 0.0:
            # q and -q are one orientation: keep the sign of the stream (which starts from the measured pose's),
            # so that the executed commands, the policy's training labels, never jump between the two.
            a[3:7] = -a[3:7]
    return SafeCommand(action=a, clamped=bool(hit), reason=", ".join(dict.fromkeys(hit)))


def within_limits(a, limits: Limits, tol: float = 1e-9) -> bool:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != (limits.dim,) or not np.all(np.isfinite(a)):
        return False
    if limits.mode == MODE_EE_POSE:
        pos_ok = np.all(a[:3] >= limits.lower[:3] - tol) and np.all(a[:3] <= limits.upper[:3] + tol)
        grip_ok = np.all(a[7:] >= limits.lower[7:] - tol) and np.all(a[7:] <= limits.upper[7:] + tol)
        return bool(pos_ok and grip_ok and abs(np.linalg.norm(a[3:7]) - 1.0) < 1e-6)
    return bool(np.all(a >= limits.lower - tol) and np.all(a <= limits.upper + tol))


def step_ok(a, prev, limits: Limits, tol: float = 1e-6) -> bool:
    a, prev = np.asarray(a, np.float64), np.asarray(prev, np.float64)
    if limits.mode == MODE_JOINT:
        return bool(np.all(np.abs(a - prev) <= limits.max_step + tol))
    return bool(
        np.linalg.norm(a[:3] - prev[:3]) <= limits.max_ee_step + tol
        and quat_angle(a[3:7], prev[3:7]) <= limits.max_rot_step + 1e-4
        and np.all(np.abs(a[7:] - prev[7:]) <= limits.max_step[7:] + tol)
    )
