"""Small quaternion helpers. MuJoCo stores quaternions as (w, x, y, z); ROS and the action layouts use (x, y, z, w)."""

from __future__ import annotations

import numpy as np


def wxyz_to_xyzw(q) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    return np.array([q[1], q[2], q[3], q[0]])


def xyzw_to_wxyz(q) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    return np.array([q[3], q[0], q[1], q[2]])


def normalize(q) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    return q / np.linalg.norm(q)


def mul(a, b) -> np.ndarray:
    """Hamilton product of two (w, x, y, z) quaternions."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def conj(q) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def from_axis_angle(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


def to_rotvec(q) -> np.ndarray:
    """Rotation vector (axis * angle, shortest way) of a (w, x, y, z) quaternion."""
    q = normalize(q)
    if q[0] < 0:
        q = -q
    s = np.linalg.norm(q[1:])
    if s < 1e-12:
        return np.zeros(3)
    return q[1:] / s * 2.0 * np.arctan2(s, q[0])


def from_rotvec(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    a = np.linalg.norm(v)
    if a < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return from_axis_angle(v / a, a)


def angle_between(a, b) -> float:
    """Angle (rad) of the rotation taking (w, x, y, z) quaternion a to b."""
    return float(np.linalg.norm(to_rotvec(mul(b, conj(a)))))


def to_matrix(q) -> np.ndarray:
    w, x, y, z = normalize(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def step_towards(q_from, q_to, max_angle: float) -> np.ndarray:
    """Rotate (w, x, y, z) q_from towards q_to by at most max_angle (rad)."""
    v = to_rotvec(mul(q_to, conj(q_from)))
    a = np.linalg.norm(v)
    if a > max_angle:
        v = v * (max_angle / a)
    return normalize(mul(from_rotvec(v), q_from))


def top_down(yaw: float) -> np.ndarray:
    """(w, x, y, z) of a hand pointing straight down (approach -z) with the fingers closing along yaw's y axis."""
    return mul(from_axis_angle((0, 0, 1), yaw), np.array([0.0, 1.0, 0.0, 0.0]))
