"""Pure tests of the arbiter's safety math, authority state machine, chunk timing and dual-frequency sampling."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiors_core.robots import TORA_ONE, XTRAINER
from hiors_core.rotations import quat_angle, quat_mul, quat_normalize, quat_unit
from hiors_core.schema import AUTHORITY_HOLD, AUTHORITY_HUMAN, AUTHORITY_POLICY
from hiors_teleop.authority import ArbiterConfig, ArbiterCore, Chunk, LatencyEstimate, Sampler
from hiors_teleop.safety import Limits, RefusedCommand, layout_for, make_safe, step_ok, within_limits

EE = Limits.for_robot(TORA_ONE, layout_for(TORA_ONE, "ee", "left"))
JOINT = Limits.for_robot(XTRAINER, layout_for(XTRAINER, "joint"))
PERIOD = int(1e9 / 25)
HOME_EE = np.array([0.3, 0.2, 1.1, 0, 0, 0, 1, 0.5])


def ee_core(**kw):
    core = ArbiterCore(EE, ArbiterConfig(k_auto=kw.pop("k_auto", 5), **kw))
    core.set_measured(HOME_EE)
    return core


def chunk_at(pos, stamp, h=10, version=1):
    a = np.tile(HOME_EE, (h, 1))
    a[:, :3] = pos
    return Chunk(a, stamp, PERIOD, version)


floats = st.floats(allow_nan=True, allow_infinity=True, width=64, min_value=None, max_value=None)


@settings(max_examples=300, deadline=None)
@given(st.lists(floats, min_size=0, max_size=16), st.booleans())
def test_no_command_outside_limits_ever(values, joint):
    limits = JOINT if joint else EE
    prev = make_safe(np.zeros(limits.dim) if joint else HOME_EE, None, limits).action
    try:
        out = make_safe(values, prev, limits)
    except RefusedCommand:
        assert len(values) != limits.dim or not np.all(np.isfinite(values)) or not joint
        return
    assert within_limits(out.action, limits)
    assert step_ok(out.action, prev, limits)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(floats, min_size=8, max_size=8), min_size=1, max_size=6), st.integers(0, 3))
def test_core_never_emits_outside_limits(chunks, takeover_at):
    core = ee_core(k_auto=3)
    now = 10 * PERIOD
    for i, c in enumerate(chunks):
        core.offer_chunk(Chunk(np.array([c, c, c]), now, PERIOD, i), now)
        if i == takeover_at:
            core.human_joy(now, True, gripper=c[7] if np.isfinite(c[7]) else None)
            core.human_ee_delta(now, c[:3], c[3:7])
        prev = core.last_cmd
        for _ in range(3):
            r = core.tick(now)
            assert within_limits(r.action, EE)
            assert prev is None or step_ok(r.action, prev, EE)
            prev = r.action
            now += PERIOD


def test_refuses_nan_wrong_dim_and_zero_quaternion():
    with pytest.raises(RefusedCommand, match="non-finite"):
        make_safe([np.nan] * 8, None, EE)
    with pytest.raises(RefusedCommand, match="dimension"):
        make_safe([0.0] * 7, None, EE)
    with pytest.raises(RefusedCommand, match="quaternion"):
        make_safe([0.3, 0, 1, 0, 0, 0, 0, 1], None, EE)
    core = ee_core()
    bad = chunk_at([0.3, 0.2, 1.1], 0)
    bad.actions[3, 1] = np.inf
    assert "refused" in core.offer_chunk(bad, 0)
    assert core.refused == 1
    r = core.tick(0)
    assert r.authority == AUTHORITY_HOLD and np.allclose(r.action, HOME_EE)


def test_clamps_workspace_and_steps():
    out = make_safe([5.0, 0.2, 1.1, 0, 0, 0, 1, 3.0], None, EE)
    assert out.clamped and out.action[0] == EE.upper[0] and out.action[7] == 1.0
    out = make_safe([0.5, 0.2, 1.1, 0, 0, 0, 1, 0.5], HOME_EE, EE)
    assert out.clamped and np.isclose(np.linalg.norm(out.action[:3] - HOME_EE[:3]), EE.max_ee_step)
    q = quat_normalize([0, 0, np.sin(0.5), np.cos(0.5)])  # 1 rad about z
    out = make_safe(np.r_[HOME_EE[:3], q, 0.5], HOME_EE, EE)
    assert np.isclose(quat_angle(out.action[3:7], HOME_EE[3:7]), EE.max_rot_step, atol=1e-6)
    j = make_safe(np.full(JOINT.dim, 10.0), np.zeros(JOINT.dim), JOINT)
    assert np.allclose(j.action, JOINT.max_step)


@settings(max_examples=50, deadline=None)
@given(st.floats(-0.05, 0.05), st.floats(-0.05, 0.05), st.booleans())
def test_commanded_quaternions_keep_the_sign_of_the_stream(wx, wy, flip):
    """q and -q are one orientation; a command keeps the previous command's sign whichever it is given in (no
    jump of the training labels between the two), and stands for the target's rotation. The hand points
    forward here, so w is near 0 and small turns cross the w = 0 plane (where a w >= 0 convention flips)."""
    forward = quat_unit([0.70, 0.10, 0.69, 0.02])
    prev = np.r_[HOME_EE[:3], forward, 1.0]
    q = quat_unit(quat_mul(forward, quat_unit([wx, wy, 0.0, 1.0])))  # a small turn
    target = np.r_[prev[:3], -q if flip else q, 1.0]
    out = make_safe(target, prev, EE).action
    assert np.dot(out[3:7], prev[3:7]) > 0.9
    assert quat_angle(out[3:7], q) < 1e-6
    # The stream starts from the measured pose as given (not flipped into w >= 0).
    measured = np.r_[HOME_EE[:3], quat_unit([0.70, 0.10, 0.69, -0.02]), 1.0]
    assert np.allclose(make_safe(measured, None, EE).action, measured)


@pytest.mark.parametrize("schedule, runs", [("sequential", 5), ("early", 10)])
def test_policy_executes_k_auto_and_watchdog_holds_within_two_periods(schedule, runs):
    """With no next chunk the paper's loop stops at k_auto and the early schedule runs the chunk on to its horizon
    (10 actions); then nothing is left and the arbiter holds in the very next period."""
    core = ee_core(k_auto=5, chunk_schedule=schedule)
    now = 100 * PERIOD
    assert core.offer_chunk(chunk_at([0.31, 0.2, 1.1], now), now) == ""
    auth = []
    for _ in range(runs + 3):
        auth.append(core.tick(now).authority)
        now += PERIOD
    assert auth[:runs] == [AUTHORITY_POLICY] * runs
    assert auth[runs:] == [AUTHORITY_HOLD] * 3  # nothing left: hold in the very next period
    assert "chunk finished" in core.reason


def test_late_chunk_skips_past_actions_and_stale_chunk_refused():
    core = ee_core(k_auto=5, chunk_schedule="sequential")
    now = 100 * PERIOD
    c = chunk_at([0.3, 0.2, 1.1], now - 2 * PERIOD)
    c.actions[:, 0] = 0.3 + 0.001 * np.arange(10)  # action i at x = 0.3 + i mm
    assert core.offer_chunk(c, now) == ""
    r = core.tick(now)
    assert r.first_of_chunk and np.isclose(r.action[0], 0.302)
    assert sum(core.tick(now + k * PERIOD).authority == AUTHORITY_POLICY for k in range(1, 6)) == 2
    assert "stale" in core.offer_chunk(chunk_at([0.3, 0.2, 1.1], now - 6 * PERIOD), now)
    assert "stale" in core.offer_chunk(chunk_at([0.3, 0.2, 1.1], now - 40 * PERIOD), now)
    # The early schedule would run a chunk on to its horizon (10): stale only once all 10 actions are past.
    early = ee_core(k_auto=5)
    assert early.offer_chunk(chunk_at([0.3, 0.2, 1.1], now - 6 * PERIOD), now) == ""
    assert "stale" in early.offer_chunk(chunk_at([0.3, 0.2, 1.1], now - 10 * PERIOD), now)


def test_next_chunk_waits_for_k_auto_and_samples_once_per_chunk():
    core = ee_core(k_auto=4, chunk_schedule="sequential")
    now = 100 * PERIOD
    core.offer_chunk(chunk_at([0.3, 0.2, 1.1], now, version=1), now)
    results = []
    for k in range(8):
        if k == 1:  # a chunk arrives while the first executes, and a newer one replaces it
            core.offer_chunk(chunk_at([0.3, 0.2, 1.1], now, version=2), now)
        if k == 3:
            core.offer_chunk(chunk_at([0.3, 0.2, 1.1], now, version=3), now)
        results.append(core.tick(now))
        now += PERIOD
    # Chunk 3's action 0 belongs to step 3, so at step 4 its actions 1..3 remain (time-aligned, late part skipped).
    assert [r.policy_version for r in results] == [1, 1, 1, 1, 3, 3, 3, 0]
    assert [r.is_sample for r in results] == [True, False, False, False, True, False, False, False]


def test_takeover_marks_exactly_the_human_steps_and_never_jumps():
    core = ee_core(k_auto=50, teleop_timeout_s=1.0)
    now = 100 * PERIOD
    core.offer_chunk(chunk_at([0.4, 0.2, 1.1], now, h=60), now)  # policy drives towards +x
    log = []
    for k in range(30):
        if k == 8:
            core.human_joy(now, True, gripper=0.2)
        if 8 <= k < 18:
            core.human_joy(now, True, gripper=0.2)
            core.human_ee_delta(now, [0.0, 0.002 * (k - 8), 0.0], [0, 0, 0, 1])
        if k == 18:
            core.human_joy(now, False)
        if k == 19:
            core.offer_chunk(chunk_at([0.3, 0.3, 1.2], now, h=60, version=3), now)
        prev = HOME_EE if core.last_cmd is None else core.last_cmd.copy()
        r = core.tick(now)
        log.append(r)
        assert step_ok(r.action, prev, EE)
        now += PERIOD
    human = [r.authority == AUTHORITY_HUMAN for r in log]
    assert human == [8 <= k < 18 for k in range(30)]
    # Takeover anchors at the commanded pose: the first human command equals the last policy command (zero delta).
    assert np.allclose(log[8].action[:3], log[7].action[:3])
    assert all(r.is_sample for r in log[8:18])  # f_high while the human drives
    assert [r.authority for r in log[18:20]] == [AUTHORITY_HOLD, AUTHORITY_POLICY]  # old chunk dropped on takeover
    assert log[19].is_sample and log[19].policy_version == 3
    assert sum(r.is_sample for r in log[:8]) == 1


def test_orientation_delta_applied_to_anchor():
    core = ee_core(teleop_timeout_s=1.0)
    core.human_joy(0, True)
    dq = quat_normalize([0, 0, np.sin(0.05), np.cos(0.05)])
    core.human_ee_delta(0, [0.01, 0, 0], dq)
    r = core.tick(0)
    assert r.authority == AUTHORITY_HUMAN
    assert np.allclose(r.action[:3], HOME_EE[:3] + [0.01, 0, 0])
    assert np.isclose(quat_angle(r.action[3:7], quat_mul(dq, HOME_EE[3:7])), 0, atol=1e-6)


def test_estop_holds_at_once_and_is_latched_until_released():
    core = ee_core(k_auto=50)
    now = 100 * PERIOD
    core.offer_chunk(chunk_at([0.4, 0.2, 1.1], now, h=60), now)
    assert core.tick(now).authority == AUTHORITY_POLICY
    core.set_estop(True)
    core.human_joy(now, True)
    for _ in range(3):
        now += PERIOD
        r = core.tick(now)
        assert r.authority == AUTHORITY_HOLD and r.reason == "estop"
    core.set_estop(False)
    assert core.tick(now).authority == AUTHORITY_HUMAN


def test_stale_teleop_holds():
    core = ee_core(teleop_timeout_s=0.1)
    core.human_joy(0, True)
    assert core.tick(0).authority == AUTHORITY_HUMAN
    r = core.tick(int(0.2e9))
    assert r.authority == AUTHORITY_HOLD and r.reason == "teleop stale"


def test_leader_arm_joint_takeover_is_rate_limited():
    core = ArbiterCore(JOINT, ArbiterConfig(human_source="leader_arm", teleop_timeout_s=1.0))
    core.set_measured(np.zeros(JOINT.dim))
    core.human_joy(0, True)
    core.human_joint(0, ["left_joint1", "unknown"], [1.0, 5.0])
    r = core.tick(0)
    assert r.authority == AUTHORITY_HUMAN and r.source == "leader_arm" and r.clamped
    assert np.isclose(r.action[0], JOINT.max_step[0]) and np.allclose(r.action[1:], 0)


@pytest.mark.parametrize(
    ("mode", "human", "policy"),
    [
        ("dual", [1] * 6, [1, 0, 0, 0]),
        ("fixed_high", [1] * 6, [1] * 4),
        ("fixed_low", [1, 0, 0, 0, 1, 0], [1, 0, 0, 0]),
    ],
)
def test_sampling_modes(mode, human, policy):
    s = Sampler(mode=mode, k_auto=4)
    assert [int(s.is_sample(AUTHORITY_HUMAN, False, k)) for k in range(6)] == human
    assert [int(s.is_sample(AUTHORITY_POLICY, k == 0, k)) for k in range(4)] == policy
    assert s.is_sample(AUTHORITY_HOLD, True, 0) is False
    assert s.rate_hz(AUTHORITY_HUMAN, 25.0) == (25.0 / 4 if mode == "fixed_low" else 25.0)


def test_resync_holds_where_the_robot_now_is_not_where_the_last_command_was():
    core = ee_core()
    for k in range(3):
        core.tick(k * PERIOD)
    core.offer_chunk(chunk_at([0.35, 0.2, 1.1], 3 * PERIOD), 3 * PERIOD)
    core.tick(3 * PERIOD)
    core.resync()  # the scene was reset: the twin jumped home
    assert core.tick(4 * PERIOD) is None  # no command until the robot state after the reset is known
    moved = HOME_EE.copy()
    moved[:3] = [0.1, -0.2, 0.9]
    core.set_measured(moved)
    for k in range(5, 10):
        r = core.tick(k * PERIOD)
        assert r.authority == AUTHORITY_HOLD and np.allclose(r.action, moved)


def test_chunks_from_before_a_resync_are_refused_and_later_ones_drive():
    core = ee_core()
    core.set_measured(HOME_EE)
    core.tick(0)
    core.resync(2 * PERIOD)  # the twin jumped home at step 2
    core.set_measured(HOME_EE)
    refused = core.refused
    # Predicted from an observation of the old scene, delivered after the move: it must not drive.
    why = core.offer_chunk(chunk_at([0.35, 0.2, 1.1], PERIOD), 3 * PERIOD)
    assert "before the robot was moved" in why and core.refused == refused + 1
    assert core.tick(3 * PERIOD).authority == AUTHORITY_HOLD
    assert core.offer_chunk(chunk_at([0.35, 0.2, 1.1], 3 * PERIOD), 3 * PERIOD) == ""
    assert core.tick(4 * PERIOD).authority == AUTHORITY_POLICY


def test_a_resync_after_the_clock_went_back_takes_the_new_time_base():
    core = ee_core()
    core.set_measured(HOME_EE)
    core.resync(1000 * PERIOD)  # late in a long session
    core.resync(2 * PERIOD)  # the twin restarted: its clock began again from zero
    core.set_measured(HOME_EE)
    assert core.offer_chunk(chunk_at([0.35, 0.2, 1.1], 3 * PERIOD), 3 * PERIOD) == ""


# chunk requests ------------------------------------------------------------------------------------------------------
T0 = 100  # steps before the first tick (observations from before it are not older than the start)


def ramp_chunk(stamp_step: int, h: int, version: int) -> Chunk:
    """A chunk whose action i is planned for step stamp_step + i, and says so in its x (0.1 mm per step)."""
    c = chunk_at([0.3, 0.2, 1.1], (T0 + stamp_step) * PERIOD, h=h, version=version)
    c.actions[:, 0] = 0.3 + 1e-4 * (stamp_step + np.arange(h))
    return c


def drive(core, ticks, latency, obs_age=2, h=16, engaged=range(0)):
    """Tick `core` with a policy that answers each request latency(n) periods later with an h-action chunk from the
    newest observation, `obs_age` periods older than the request; the human holds the clutch during `engaged`.
    Returns the tick results and the steps at which a chunk was asked for."""
    due, log, asked = [], [], []

    def ask(k):
        asked.append(k)
        due.append((k + latency(len(asked)), ramp_chunk(k - obs_age, h, len(asked))))

    for k in range(ticks):
        now = (T0 + k) * PERIOD
        for item in [d for d in due if d[0] <= k]:
            due.remove(item)
            core.offer_chunk(item[1], now)
            if core.poll_request(now):  # as the node does when a chunk arrives
                ask(k)
        if k in engaged:
            core.human_joy(now, True)
            core.human_ee_delta(now, [0, 0, 0], [0, 0, 0, 1])
        elif k - 1 in engaged:
            core.human_joy(now, False)
        r = core.tick(now)
        if r.request_chunk:
            ask(k)
        log.append(r)
    return log, asked


def test_early_requests_keep_the_robot_moving_and_each_chunk_on_its_stamp():
    rng = np.random.default_rng(0)
    jitter = {}

    def latency(n):  # 2..7 periods, drawn once per request
        return jitter.setdefault(n, int(rng.integers(2, 8)))

    core = ee_core(k_auto=12)
    log, asked = drive(core, 400, latency)
    start = next(k for k, r in enumerate(log) if r.authority == AUTHORITY_POLICY)
    assert start <= 8  # the first chunk: one request's latency
    assert all(r.authority == AUTHORITY_POLICY for r in log[start:])  # never waits after that
    # Every action runs at the time it was planned for (chunk start aligned to its observation's stamp).
    assert all(np.isclose(r.action[0], 0.3 + 1e-4 * k) for k, r in enumerate(log) if k >= start)
    # Few inferences wasted: nearly every chunk asked for drives (a newer one may replace a waiting one when the
    # latency jumps).
    assert len({r.policy_version for r in log[start:]}) >= 0.85 * len(asked)
    assert 2 <= core.executor.latency.mean <= 7


def test_the_sequential_loop_waits_one_latency_per_chunk():
    core = ee_core(k_auto=12, chunk_schedule="sequential")
    log, asked = drive(core, 300, lambda n: 4)
    auth = [r.authority for r in log[20:]]
    # Ask when the chunk has run out at k_auto, hold 3 periods (the chunk drives in the 4th), then run its actions
    # 6..11 (the observation was 2 periods older than the request): 3 of every 9 periods held.
    assert auth.count(AUTHORITY_HOLD) / len(auth) == pytest.approx(3 / 9, abs=0.02)
    assert sum(k >= 20 for k in asked) == pytest.approx(len(auth) / 9, abs=2)


def test_latency_estimate_sets_the_lead():
    est = LatencyEstimate()
    assert est.lead(2) is None
    for _ in range(30):
        est.add(4)
    assert est.lead(2) == 6  # steady latency: its own value plus the margin
    for v in (2, 9, 3, 8) * 10:
        est.add(v)
    assert est.lead(2) > 9  # a spread one: the mean plus twice the deviation
    core = ee_core(k_auto=12)
    assert core.executor.lead_steps() == 12  # nothing measured yet: ask as early as possible


def test_unanswered_request_is_repeated_after_the_timeout_only():
    core = ee_core(policy_timeout_steps=25)
    # Before any answer (the policy may not be up yet): every RETRY_MIN_STEPS (5) periods.
    asked = [k for k in range(16) if core.tick(k * PERIOD).request_chunk]
    assert asked == [0, 5, 10, 15]
    core.chunk_arrived(16 * PERIOD)  # any chunk answers, even one refused
    assert core.tick(17 * PERIOD).request_chunk
    # Once answers came: well past the latency measured (about 8 periods: 8 + 4 deviations + margin 2), at most the
    # timeout.
    for _ in range(30):
        core.executor.latency.add(8)
    retry = core.executor.retry_steps()
    assert 10 <= retry <= 12
    asked = [k for k in range(17, 60) if core.tick(k * PERIOD).request_chunk]
    assert np.diff(asked).tolist() == [retry] * (len(asked) - 1) and len(asked) >= 3
    core.executor.latency.add(100)
    assert core.executor.retry_steps() == 25


def test_a_chunk_late_past_k_auto_takes_over_when_it_comes():
    core = ee_core(k_auto=4)
    core.offer_chunk(ramp_chunk(0, 10, 1), T0 * PERIOD)
    versions = []
    for k in range(9):
        if k == 6:  # the next chunk, from an observation at step 3, comes two periods after k_auto
            assert core.offer_chunk(ramp_chunk(3, 10, 2), (T0 + k) * PERIOD) == ""
        r = core.tick((T0 + k) * PERIOD)
        versions.append(r.policy_version)
        assert np.isclose(r.action[0], 0.3 + 1e-4 * k)  # on time throughout
    assert versions == [1, 1, 1, 1, 1, 1, 2, 2, 2]  # the first ran on past k_auto instead of holding


def test_requests_while_the_human_drives_leave_a_fresh_chunk_for_the_hand_back():
    core = ee_core(k_auto=12, teleop_timeout_s=1.0)
    log, asked = drive(core, 120, lambda n: 4, engaged=range(30, 80))
    assert [r.authority for r in log[30:80]] == [AUTHORITY_HUMAN] * 50
    assert sum(30 <= k < 80 for k in asked) >= 3
    assert log[80].authority == AUTHORITY_POLICY and log[80].first_of_chunk  # no wait at the hand-back
    assert all(r.authority == AUTHORITY_POLICY for r in log[80:])


def test_a_request_names_the_oldest_observation_a_chunk_may_come_from():
    core = ee_core()
    core.resync(5 * PERIOD)
    core.set_measured(HOME_EE)
    assert core.request_floor_ns() == 5 * PERIOD  # the scene was reset at step 5
    assert core.tick(5 * PERIOD).request_chunk
    core.resync(6 * PERIOD)  # moved again while that request is out: ask again at once, from after the move
    core.set_measured(HOME_EE)
    assert core.tick(6 * PERIOD).request_chunk and core.request_floor_ns() == 6 * PERIOD
    core.offer_chunk(chunk_at([0.3, 0.2, 1.1], 9 * PERIOD), 9 * PERIOD)
    assert core.request_floor_ns() == 9 * PERIOD  # a chunk from before the one held would be refused


def test_no_requests_during_estop():
    core = ee_core()
    core.set_estop(True)
    assert not any(core.tick(k * PERIOD).request_chunk for k in range(50))
    core.set_estop(False)
    assert core.tick(50 * PERIOD).request_chunk
