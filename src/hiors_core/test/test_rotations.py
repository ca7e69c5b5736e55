"""hiors_core.rotations: (x, y, z, w) quaternions, checked by their properties and against MuJoCo's own (w, x, y, z)
functions at the boundary (pure, no rclpy)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hiors_core.rotations import (
    IDENTITY_Q,
    apply_delta,
    from_mujoco,
    matrix_to_quat,
    quat_angle,
    quat_conj,
    quat_from_axis_angle,
    quat_from_rotvec,
    quat_mul,
    quat_normalize,
    quat_slerp,
    quat_step_towards,
    quat_to_matrix,
    quat_to_rotvec,
    quat_unit,
    to_mujoco,
)

unit = st.floats(-1.0, 1.0, allow_nan=False)
quats = st.tuples(unit, unit, unit, unit).filter(lambda q: np.linalg.norm(q) > 0.1).map(quat_unit)
axes = st.tuples(unit, unit, unit).filter(lambda v: np.linalg.norm(v) > 0.1).map(np.array)
angles = st.floats(-3.1, 3.1, allow_nan=False)
fractions = st.floats(0.0, 1.0, allow_nan=False)


def same_rotation(a, b, tol=1e-9) -> bool:
    return np.allclose(quat_to_matrix(a), quat_to_matrix(b), atol=tol)


# --------------------------------------------------------------------------- order and the MuJoCo boundary
def test_order_is_xyzw_and_mujoco_gets_wxyz():
    q = quat_from_axis_angle((0, 0, 1), math.pi / 2)  # a quarter turn about z
    assert np.allclose(q, [0, 0, math.sqrt(0.5), math.sqrt(0.5)])
    assert np.allclose(quat_to_matrix(q) @ [1, 0, 0], [0, 1, 0])
    assert to_mujoco(IDENTITY_Q).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert to_mujoco([1, 2, 3, 4]).tolist() == [4, 1, 2, 3] and from_mujoco([4, 1, 2, 3]).tolist() == [1, 2, 3, 4]


@given(quats, quats)
def test_mul_and_matrix_agree_with_mujoco(a, b):
    mujoco = pytest.importorskip("mujoco")
    ab = np.zeros(4)
    mujoco.mju_mulQuat(ab, to_mujoco(a), to_mujoco(b))
    assert np.allclose(quat_mul(a, b), from_mujoco(ab), atol=1e-12)
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, to_mujoco(a))
    assert np.allclose(quat_to_matrix(a), m.reshape(3, 3), atol=1e-12)


@given(quats)
def test_boundary_round_trips_exactly(q):
    assert np.array_equal(from_mujoco(to_mujoco(q)), q) and np.array_equal(to_mujoco(from_mujoco(q)), q)


# --------------------------------------------------------------------------- normalising, double cover
@given(quats, st.floats(1e-6, 1e6))
def test_unit_keeps_the_sign_and_normalize_picks_w_positive(q, scale):
    assert np.allclose(quat_unit(-scale * q), -q)
    n = quat_normalize(-scale * q)
    assert n[3] >= 0 and np.isclose(np.linalg.norm(n), 1.0) and np.allclose(np.abs(n), np.abs(q))


@pytest.mark.parametrize("q", [[0, 0, 0, 0], [np.nan, 0, 0, 1], [np.inf, 0, 0, 1], []])
def test_unit_refuses_what_has_no_orientation(q):
    with pytest.raises(ValueError, match="no orientation"):
        quat_unit(q)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_unit_copes_with_tiny_and_huge_components(scale):
    assert np.allclose(quat_unit(np.array([1.0, 1.0, 0.0, 0.0]) * scale), [math.sqrt(0.5), math.sqrt(0.5), 0, 0])


@given(quats)
def test_q_and_minus_q_are_one_rotation(q):
    assert np.array_equal(quat_to_matrix(q), quat_to_matrix(-q))
    assert quat_angle(q, -q) < 1e-7
    v = quat_to_rotvec(q)
    assert np.linalg.norm(v) <= math.pi + 1e-12 and same_rotation(quat_from_rotvec(v), q)
    assert np.allclose(v, quat_to_rotvec(-q)) or math.isclose(np.linalg.norm(v), math.pi)  # a half turn: +-pi
    back = matrix_to_quat(quat_to_matrix(q))
    assert back[3] >= 0 and np.isclose(np.linalg.norm(back), 1.0) and same_rotation(back, q)


# --------------------------------------------------------------------------- composition
@given(quats, quats, quats)
def test_composition_is_matrix_product_and_associative(a, b, c):
    assert np.allclose(quat_to_matrix(quat_mul(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-9)
    assert np.allclose(quat_mul(quat_mul(a, b), c), quat_mul(a, quat_mul(b, c)), atol=1e-12)
    assert np.allclose(quat_mul(a, quat_conj(a)), IDENTITY_Q, atol=1e-12)
    assert np.allclose(quat_to_matrix(quat_conj(a)), quat_to_matrix(a).T, atol=1e-9)


@given(st.lists(st.tuples(quats, quats), min_size=1, max_size=5))
def test_batches_equal_one_at_a_time(pairs):
    a, b = (np.array(x) for x in zip(*pairs, strict=True))
    assert np.array_equal(quat_mul(a, b), np.array([quat_mul(x, y) for x, y in pairs]))
    assert np.array_equal(quat_conj(a), np.array([quat_conj(x) for x in a]))
    assert np.allclose(quat_angle(a, b), [quat_angle(x, y) for x, y in pairs], atol=1e-12)


# --------------------------------------------------------------------------- axis-angle, rotation vectors, angles
@given(axes, angles)
def test_axis_angle_rotates_about_the_axis_by_the_angle(axis, angle):
    q = quat_from_axis_angle(axis, angle)
    k = axis / np.linalg.norm(axis)
    assert np.allclose(quat_to_matrix(q) @ k, k, atol=1e-9)  # the axis stays put
    assert math.isclose(quat_angle(IDENTITY_Q, q), abs(angle), abs_tol=1e-9)
    assert np.allclose(quat_to_rotvec(q), k * angle, atol=1e-9)
    assert same_rotation(quat_from_rotvec(k * angle), q)


def test_small_angles_stay_exact():
    for angle in (1e-4, 1e-7, 1e-10):
        q = quat_from_axis_angle((1, 2, 3), angle)
        assert math.isclose(quat_angle(IDENTITY_Q, q), angle, rel_tol=1e-6)
    assert quat_angle(IDENTITY_Q, IDENTITY_Q) == 0.0 and np.array_equal(quat_from_rotvec([0, 0, 0]), IDENTITY_Q)


@given(quats, quats)
def test_angle_is_a_metric_of_rotations(a, b):
    ang = quat_angle(a, b)
    assert 0.0 <= ang <= math.pi + 1e-12
    assert math.isclose(ang, quat_angle(b, a), abs_tol=1e-9)
    assert math.isclose(ang, np.linalg.norm(quat_to_rotvec(quat_mul(b, quat_conj(a)))), abs_tol=1e-9)


# --------------------------------------------------------------------------- moving towards a target
@given(quats, quats, fractions)
def test_slerp_goes_the_fraction_of_the_shorter_way(a, b, t):
    s = quat_slerp(a, b, t)
    total = quat_angle(a, b)
    assert s[3] >= 0 and np.isclose(np.linalg.norm(s), 1.0)
    assert math.isclose(quat_angle(a, s), t * total, abs_tol=1e-6)
    assert math.isclose(quat_angle(s, b), (1 - t) * total, abs_tol=1e-6)
    if total < 3.1:  # (a half turn has two shortest ways)
        assert np.allclose(quat_slerp(a, -b, t), s, atol=1e-9)  # b's sign does not choose the way
    assert same_rotation(quat_slerp(a, b, 0.0), a) and same_rotation(quat_slerp(a, b, 1.0), b)


@given(quats, quats, st.floats(0.01, 1.0))
def test_step_towards_moves_at_most_max_angle_and_keeps_the_sign(a, b, max_angle):
    s = quat_step_towards(a, b, max_angle)
    total = quat_angle(a, b)
    assert math.isclose(quat_angle(a, s), min(max_angle, total), abs_tol=1e-9)
    assert math.isclose(quat_angle(s, b), max(0.0, total - max_angle), abs_tol=1e-9)  # on the way to b
    assert float(np.dot(s, a)) > 0  # a stream of steps never flips sign
    if total <= max_angle:
        assert same_rotation(s, b)


# --------------------------------------------------------------------------- poses
@given(quats, quats, st.tuples(unit, unit, unit), st.tuples(unit, unit, unit))
def test_apply_delta_translates_then_rotates_in_the_base_frame(q0, dq, p0, dp):
    p, q = apply_delta(p0, q0, dp, dq)
    assert np.allclose(p, np.add(p0, dp)) and q[3] >= 0
    assert np.allclose(quat_to_matrix(q), quat_to_matrix(dq) @ quat_to_matrix(q0), atol=1e-9)
    p, q = apply_delta(p0, q0, (0, 0, 0), IDENTITY_Q)
    assert np.allclose(p, p0) and same_rotation(q, q0)
