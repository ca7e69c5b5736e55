"""Quaternions and rotations, pure numpy: the one home of the project's quaternion math.

Every quaternion here is (x, y, z, w), the order of geometry_msgs/Quaternion and of the action and state layouts
(`<arm>_ee_qx, _qy, _qz, _qw`). MuJoCo stores (w, x, y, z) (`MjData.xquat`, `mocap_quat`, free-joint `qpos`,
`mju_mat2Quat`); only code that reads or writes MuJoCo's arrays converts, with `from_mujoco` and `to_mujoco`.

q and -q are one orientation; each function says which of the two it returns. `quat_unit` keeps the sign it is
given (a stream of commands must not flip between the two), `quat_normalize` returns the w >= 0 one (equal
rotations compare equal). `quat_mul`, `quat_conj` and `quat_angle` also take batches (quaternions along the last
axis). Angles are in radians.
"""

from __future__ import annotations

import math

import numpy as np

IDENTITY_Q = np.array([0.0, 0.0, 0.0, 1.0])


# --------------------------------------------------------------------------- the MuJoCo boundary
def from_mujoco(q_wxyz) -> np.ndarray:
    """(x, y, z, w) of a quaternion MuJoCo stores as (w, x, y, z)."""
    q = np.asarray(q_wxyz, dtype=np.float64)
    return np.array([q[1], q[2], q[3], q[0]])


def to_mujoco(q_xyzw) -> np.ndarray:
    """(w, x, y, z), MuJoCo's order, of an (x, y, z, w) quaternion."""
    q = np.asarray(q_xyzw, dtype=np.float64)
    return np.array([q[3], q[0], q[1], q[2]])


# --------------------------------------------------------------------------- normalising
def _norm(v) -> float:
    """Euclidean norm of a 1-D vector; what np.linalg.norm computes, without its overhead (the IK calls this in
    its inner loop)."""
    return math.sqrt(float(v.dot(v)))


def quat_unit(q) -> np.ndarray:
    """`q` scaled to unit length, its sign kept. Raises ValueError for a zero or non-finite quaternion."""
    q = np.asarray(q, dtype=np.float64)
    m = max(map(abs, q.ravel().tolist()), default=0.0)  # NaN or inf: no scaling, then refused below
    if math.isfinite(m) and m > 0:
        q = q / m  # commands from outside may be huge or tiny: the norm then neither over- nor underflows
    n = _norm(q)
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"quaternion {q.tolist()} has no orientation (norm {n})")
    return q / n


def quat_normalize(q) -> np.ndarray:
    """Unit quaternion in the w >= 0 hemisphere, so that equal rotations compare equal."""
    q = quat_unit(q)
    return q if q[3] >= 0 else -q


# --------------------------------------------------------------------------- algebra
def quat_mul(a, b) -> np.ndarray:
    """Hamilton product a * b (apply b, then a); batched over the last axis."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    one = a.ndim == 1 and b.ndim == 1  # one pair: Python floats are several times faster than numpy scalars
    ax, ay, az, aw = a.tolist() if one else np.moveaxis(a, -1, 0)
    bx, by, bz, bw = b.tolist() if one else np.moveaxis(b, -1, 0)
    q = [
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ]
    return np.array(q) if one else np.stack(q, axis=-1)


def quat_conj(q) -> np.ndarray:
    """Conjugate (the inverse of a unit quaternion); batched over the last axis."""
    q = np.array(q, dtype=np.float64)
    q[..., :3] *= -1.0
    return q


def quat_angle(a, b):
    """Angle (rad, 0..pi) of the rotation taking a to b, for any norms and signs; batched over the last axis (a
    float for one pair). atan2 keeps small angles exact, where an arccos of the dot product loses half the digits."""
    d = quat_mul(b, quat_conj(a))
    if d.ndim == 1:
        return 2.0 * math.atan2(_norm(d[:3]), abs(float(d[3])))
    return 2.0 * np.arctan2(np.linalg.norm(d[..., :3], axis=-1), np.abs(d[..., 3]))


# --------------------------------------------------------------------------- other representations
def quat_from_axis_angle(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    return np.concatenate([np.sin(angle / 2) * axis, [np.cos(angle / 2)]])


def quat_to_rotvec(q) -> np.ndarray:
    """Rotation vector (axis * angle, rad, the shorter way round) of a quaternion."""
    q = quat_unit(q)
    if q[3] < 0:
        q = -q
    s = _norm(q[:3])
    if s < 1e-12:
        return np.zeros(3)
    return q[:3] / s * 2.0 * math.atan2(s, float(q[3]))


def quat_from_rotvec(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    a = np.linalg.norm(v)
    if a < 1e-12:
        return IDENTITY_Q.copy()
    return quat_from_axis_angle(v / a, a)


def quat_to_matrix(q) -> np.ndarray:
    """3x3 rotation matrix; its columns are the rotated frame's x, y, z axes."""
    x, y, z, w = quat_unit(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(m) -> np.ndarray:
    """Quaternion (w >= 0) of a 3x3 rotation matrix."""
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


# --------------------------------------------------------------------------- moving towards a target
def quat_slerp(a, b, t: float) -> np.ndarray:
    """The fraction t (0..1) of the shorter way from a to b, w >= 0."""
    a, b = quat_normalize(a), quat_normalize(b)
    d = float(np.dot(a, b))
    if d < 0.0:
        b, d = -b, -d
    if d > 0.9995:
        return quat_normalize(a + t * (b - a))
    theta = np.arccos(d)
    s = np.sin(theta)
    return quat_normalize((np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / s)


def quat_step_towards(q_from, q_to, max_angle: float) -> np.ndarray:
    """q_from rotated the shorter way towards q_to by at most max_angle (rad); the sign follows q_from's, so a
    stream of steps never flips."""
    v = quat_to_rotvec(quat_mul(q_to, quat_conj(q_from)))
    a = np.linalg.norm(v)
    if a > max_angle:
        v = v * (max_angle / a)
    return quat_unit(quat_mul(quat_from_rotvec(v), q_from))


# --------------------------------------------------------------------------- poses
def apply_delta(anchor_pos, anchor_q, delta_pos, delta_q) -> tuple[np.ndarray, np.ndarray]:
    """Relative (clutch) control: target = anchor translated by delta_pos and rotated by delta_q, both in the
    base frame: p = p0 + dp, q = dq * q0 (w >= 0)."""
    p = np.asarray(anchor_pos, dtype=np.float64) + np.asarray(delta_pos, dtype=np.float64)
    q = quat_normalize(quat_mul(quat_normalize(delta_q), quat_normalize(anchor_q)))
    return p, q
