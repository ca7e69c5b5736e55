"""Quaternion and pose helpers (x, y, z, w order, like geometry_msgs and hiors_core's EE layout). Pure numpy."""

from __future__ import annotations

import numpy as np

IDENTITY_Q = np.array([0.0, 0.0, 0.0, 1.0])


def quat_unit(q) -> np.ndarray:
    """`q` scaled to unit length, its sign kept (commands: see safety.make_safe)."""
    q = np.asarray(q, dtype=np.float64)
    m = float(np.max(np.abs(q))) if q.size else 0.0
    if np.isfinite(m) and m > 0:
        q = q / m  # avoids overflow in the norm for huge (but finite) components
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"quaternion {q.tolist()} has no orientation (norm {n})")
    return q / n


def quat_normalize(q) -> np.ndarray:
    """Unit quaternion in the w >= 0 hemisphere, so that equal rotations compare equal."""
    q = quat_unit(q)
    return q if q[3] >= 0 else -q


def quat_mul(a, b) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_conj(q) -> np.ndarray:
    return np.array([-q[0], -q[1], -q[2], q[3]], dtype=np.float64)


def quat_angle(a, b) -> float:
    """Rotation angle (rad, 0..pi) between two unit quaternions."""
    d = abs(float(np.dot(quat_normalize(a), quat_normalize(b))))
    return 2.0 * float(np.arccos(min(1.0, d)))


def quat_slerp(a, b, t: float) -> np.ndarray:
    a, b = quat_normalize(a), quat_normalize(b)
    d = float(np.dot(a, b))
    if d < 0.0:
        b, d = -b, -d
    if d > 0.9995:
        return quat_normalize(a + t * (b - a))
    theta = np.arccos(d)
    s = np.sin(theta)
    return quat_normalize((np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / s)


def quat_to_matrix(q) -> np.ndarray:
    x, y, z, w = quat_normalize(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(m) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    return quat_normalize(q)


def apply_delta(anchor_pos, anchor_q, delta_pos, delta_q) -> tuple[np.ndarray, np.ndarray]:
    """Relative (clutch) control: target = anchor translated by delta_pos and rotated by delta_q, both in the
    base frame: p = p0 + dp, q = dq * q0."""
    p = np.asarray(anchor_pos, dtype=np.float64) + np.asarray(delta_pos, dtype=np.float64)
    q = quat_normalize(quat_mul(quat_normalize(delta_q), quat_normalize(anchor_q)))
    return p, q
