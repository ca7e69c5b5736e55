"""Bad input, arbiter: hypothesis-generated malformed messages on every input of two live arbiters (Tora One in
end-effector mode, X-Trainer in joint mode): ActionChunk, teleop Joy, teleop EE deltas, leader-arm JointState,
measured joint states and EE poses. Everything that reaches the robot command topics is checked on arrival (finite,
within limits, step-limited); no callback may raise; every refusal is counted and nothing of a refused chunk runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from hypothesis import strategies as st
from rclpy.node import Node
from rclpy.parameter import Parameter
from rel_support import SCALES, CommandGuard, f32_floats, fuzz, instrumented, pick, record, wild_floats
from sensor_msgs.msg import JointState, Joy

from hiors_core import topics
from hiors_msgs.msg import ActionChunk, ControlState
from hiors_teleop.arbiter import Arbiter
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

pytestmark = pytest.mark.node

CALLBACKS = ["on_chunk", "on_joy", "on_ee_delta", "on_teleop_joint", "on_joint_states", "on_ee_pose"]
FuzzArbiter = instrumented(Arbiter, CALLBACKS)
BAD_VERSION = 1_000_000_000  # refused chunks carry versions from here up: none of them may ever be executed
HOME_EE = [0.3, 0.2, 1.1, 0.0, 0.0, 0.0, 1.0]
WAIT = 30.0


class Side:
    """One arbiter under test with its publishers, command guard and control-state subscription."""

    def __init__(self, rig: Node, arbiter, ns: str):
        self.arbiter, self.ns = arbiter, ns
        self.limits = arbiter.limits
        self.ee = arbiter.ee_mode
        pre = f"/{ns}/"
        pub = rig.create_publisher
        self.chunk = pub(ActionChunk, pre + topics.ACTION_CHUNK, topics.qos(topics.ACTION_CHUNK))
        self.joy = pub(Joy, pre + topics.TELEOP_JOY, topics.qos(topics.TELEOP_JOY))
        self.delta = pub(
            PoseStamped, pre + topics.TELEOP_EE_DELTA.format(arm="left"), topics.qos(topics.TELEOP_EE_DELTA)
        )
        self.teleop_joint = pub(JointState, pre + topics.TELEOP_JOINT, topics.qos(topics.TELEOP_JOINT))
        self.joint_states = pub(JointState, pre + topics.JOINT_STATES, topics.qos(topics.JOINT_STATES))
        self.ee_pose = pub(PoseStamped, pre + topics.EE_POSE.format(arm="left"), topics.qos(topics.EE_POSE))
        self.guard = CommandGuard(rig, self.limits, ns=ns)
        self.states: list[ControlState] = []
        rig.create_subscription(
            ControlState, pre + topics.CONTROL_STATE, self.states.append, topics.qos(topics.CONTROL_STATE)
        )
        self.expected_refusals = 0
        self.sent = {k: 0 for k in CALLBACKS}
        self.bad_versions: set[int] = set()
        self.next_version = 1

    def publishers(self):
        return [self.chunk, self.joy, self.delta, self.teleop_joint, self.joint_states, self.ee_pose]

    def publish_valid_state(self) -> None:
        if self.ee:
            m = PoseStamped()
            m.pose.position.x, m.pose.position.y, m.pose.position.z = HOME_EE[:3]
            m.pose.orientation.w = 1.0
            self.ee_pose.publish(m)
            self.joint_states.publish(JointState(name=["left_gripper"], position=[0.5]))
        else:
            mid = (self.limits.lower + self.limits.upper) / 2
            self.joint_states.publish(JointState(name=list(self.limits.names), position=mid.tolist()))
        self.sent["on_joint_states"] += 1
        self.sent["on_ee_pose"] += int(self.ee)


@pytest.fixture(scope="module")
def rig():
    with ros_context() as ctx:
        common = [
            Parameter("control_rate_hz", value=50.0),
            Parameter("k_auto", value=20),
            Parameter("policy_timeout_steps", value=250),  # 5 s: a loaded machine is not a stale policy
            Parameter("marker_rate_hz", value=10.0),
        ]
        ee = FuzzArbiter(
            context=ctx, namespace="fz_ee", parameter_overrides=[Parameter("robot", value="tora_one"), *common]
        )
        jt = FuzzArbiter(
            context=ctx, namespace="fz_joint", parameter_overrides=[Parameter("robot", value="xtrainer"), *common]
        )
        node = Node("arbiter_fuzz_rig", context=ctx)
        sides = {"ee": Side(node, ee, "fz_ee"), "joint": Side(node, jt, "fz_joint")}
        try:
            with spinning([ee, jt, node], context=ctx, threads=4):
                for s in sides.values():
                    for p in s.publishers():
                        wait_for_subscribers(p, timeout=WAIT)
                    s.publish_valid_state()
                for s in sides.values():
                    wait_for(lambda s=s: s.guard.counts["executed"] > 3, WAIT, f"{s.ns}: hold commands")
                yield sides
        finally:
            ee.destroy_node()
            jt.destroy_node()
            node.destroy_node()


# --- strategies -------------------------------------------------------------------------------------------------------


def mostly(good, bad, times: int = 4):
    """`good` most of the time (times : 1), otherwise whatever `bad` draws."""
    return st.one_of(*([st.just(good)] * times), bad)


mutations = st.lists(st.tuples(st.integers(0, 10**6), f32_floats()), min_size=1, max_size=4)
chunk_spec = st.fixed_dictionaries(
    {
        "mode": mostly("right", st.integers(0, 255)),
        "h": st.one_of(st.integers(1, 24), st.sampled_from([0, 1, 2**32 - 1])),
        "d": mostly("right", st.integers(0, 40)),
        "length": mostly("h*d", st.integers(0, 300)),
        "seed": st.integers(0, 2**32 - 1),
        "spread": st.sampled_from([0.01, 0.3, 3.0]),
        "mutations": mostly([], mutations, 2),
        "names": st.sampled_from(["empty", "exact", "exact", "exact", "shuffled", "garbage", "duplicate", "short"]),
        "dt": mostly(0.02, f32_floats(-1.0, 1.0), 3),
        "stamp": st.sampled_from(["now", "now", "now", "now", "future", "old", "ancient", "zero"]),
    }
)
joy_spec = st.fixed_dictionaries(
    {
        "buttons": st.lists(st.one_of(st.integers(0, 1), st.integers(-(2**31), 2**31 - 1)), max_size=6),
        "axes": st.lists(f32_floats(-1.5, 1.5), max_size=3),
    }
)
pose_spec = st.fixed_dictionaries(
    {
        "p": st.lists(wild_floats(-0.2, 0.2), min_size=3, max_size=3),
        "q": st.one_of(
            st.just([0.0, 0.0, 0.0, 1.0]),
            st.lists(wild_floats(-1.0, 1.0), min_size=4, max_size=4),
        ),
    }
)
joint_spec = st.fixed_dictionaries(
    {
        "names": st.sampled_from(["all", "subset", "garbage", "more_names", "fewer_names"]),
        "values": st.lists(wild_floats(-3.5, 3.5), min_size=0, max_size=16),
        "seed": st.integers(0, 2**32 - 1),
    }
)
batch = st.lists(
    st.one_of(
        st.tuples(st.just("chunk"), st.sampled_from(["ee", "joint"]), chunk_spec),
        st.tuples(st.just("chunk"), st.sampled_from(["ee", "joint"]), chunk_spec),
        st.tuples(st.just("chunk"), st.sampled_from(["ee", "joint"]), chunk_spec),
        st.tuples(st.just("joy"), st.sampled_from(["ee", "joint"]), joy_spec),
        st.tuples(st.just("delta"), st.just("ee"), pose_spec),
        st.tuples(st.just("teleop_joint"), st.just("joint"), joint_spec),
        st.tuples(st.just("joint_states"), st.sampled_from(["ee", "joint"]), joint_spec),
        st.tuples(st.just("ee_pose"), st.just("ee"), pose_spec),
    ),
    min_size=1,
    max_size=8,
)


# --- building messages ------------------------------------------------------------------------------------------------


def plausible_actions(side: Side, h: int, d: int, seed: int, spread: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = side.limits.lower, side.limits.upper
    base = (lo + hi) / 2
    if d != side.limits.dim:
        return rng.normal(scale=spread, size=(h, d))
    a = base + rng.normal(scale=spread, size=(h, d)) * (hi - lo) / 2
    if side.ee:
        q = rng.normal(size=(h, 4))
        a[:, 3:7] = q / np.linalg.norm(q, axis=1, keepdims=True) * rng.choice([1.0, 1.0, 0.5, 3.0])
    return a


def build_chunk(side: Side, spec: dict) -> tuple[ActionChunk, bool]:
    """The message and whether it is certainly invalid (must be refused)."""
    dim = side.limits.dim
    mode_ok = side.limits.mode
    mode = mode_ok if spec["mode"] == "right" else int(spec["mode"])
    h = int(spec["h"])
    d = dim if spec["d"] == "right" else int(spec["d"])
    if spec["length"] == "h*d":
        n = h * d if h * d <= 4096 else 7  # a huge declared size: send a few values (a mismatch)
    else:
        n = int(spec["length"])
    rows = max(1, min(h, 64))
    values = plausible_actions(side, rows, max(d, 1), spec["seed"], spec["spread"]).reshape(-1)
    values = np.resize(values, n) if n else np.zeros(0)
    for i, v in spec["mutations"]:
        if n:
            values[i % n] = v
    values = values.astype(np.float32)
    names = list(side.limits.names)
    rng = np.random.default_rng(spec["seed"])
    kind = spec["names"]
    if kind == "empty":
        names = []
    elif kind == "shuffled":
        names = list(rng.permutation(names))
    elif kind == "garbage":
        names = [f"joint_{i}" for i in range(len(names))]
    elif kind == "duplicate":
        names = [names[0]] * len(names)
    elif kind == "short":
        names = names[:-1]
    now = side.arbiter.get_clock().now().nanoseconds
    stamp = {
        "now": now,
        "old": now - 10**9 * 60,
        "ancient": 10**9,
        "future": now + 10**9 * 3600,
        "zero": 0,
    }[spec["stamp"]]
    invalid = (
        mode != mode_ok
        or h <= 0
        or d != dim
        or n != h * d
        or (names and sorted(names) != sorted(side.limits.names))
        or not np.all(np.isfinite(values))
        or not math.isfinite(spec["dt"])
        or spec["stamp"] in ("old", "ancient", "zero")
    )
    if not invalid and side.ee:
        q = values.reshape(h, d)[:, [names.index(c) for c in side.limits.names] if names else slice(None)][:, 3:7]
        invalid = bool(np.any(np.all(q == 0, axis=1)))
    version = BAD_VERSION + side.next_version if invalid else side.next_version
    side.next_version += 1
    if invalid:
        side.bad_versions.add(version)
    msg = ActionChunk(policy_version=version, control_mode=mode, horizon=h, action_dim=d, dt=float(spec["dt"]))
    msg.action_names = [str(x) for x in names]
    msg.actions = values.tolist()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(max(0, stamp), 10**9)
    msg.header.stamp.sec = min(msg.header.stamp.sec, 2**31 - 1)
    return msg, invalid


def build_pose(spec: dict) -> tuple[PoseStamped, bool]:
    m = PoseStamped()
    m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in spec["p"])
    o = m.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in spec["q"])
    p, q = np.array(spec["p"], np.float64), np.array(spec["q"], np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        invalid = not (np.all(np.isfinite(p)) and np.all(np.isfinite(q)) and np.linalg.norm(q) > 1e-9)
    return m, invalid


def build_joints(side: Side, spec: dict) -> tuple[JointState, bool]:
    names = list(side.limits.names)
    rng = np.random.default_rng(spec["seed"])
    values = list(spec["values"])
    kind = spec["names"]
    if kind == "all":
        values = (values + [0.1] * len(names))[: len(names)]
    elif kind == "subset":
        names = [n for n in names if rng.random() < 0.5]
        values = (values + [0.1] * len(names))[: len(names)]
    elif kind == "garbage":
        names = [f"x{i}" for i in range(len(values))]
    elif kind == "more_names":
        names = names[: len(values) + 1]
    elif kind == "fewer_names":
        names = names[: max(0, len(values) - 1)]
    invalid = len(names) != len(values) or not np.all(np.isfinite(np.asarray(values, np.float64)))
    return JointState(name=names, position=[float(v) for v in values]), invalid


# --- the test ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_arbiter_refuses_malformed_input_and_never_commands_outside_limits(rig, scale):
    examples = pick(scale, 80, 1000)
    start = {k: (s.arbiter.core.refused, s.guard.total) for k, s in rig.items()}
    start_states = {k: s.arbiter.core.refused_states for k, s in rig.items()}
    kinds = {}

    def body(items):
        for kind, which, spec in items:
            side = rig[which]
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "chunk":
                msg, invalid = build_chunk(side, spec)
                side.chunk.publish(msg)
                side.sent["on_chunk"] += 1
            elif kind == "joy":
                side.joy.publish(Joy(buttons=[int(b) for b in spec["buttons"]], axes=[float(a) for a in spec["axes"]]))
                side.sent["on_joy"] += 1
                invalid = False
            elif kind == "delta":
                msg, invalid = build_pose(spec)
                side.delta.publish(msg)
                side.sent["on_ee_delta"] += 1
            elif kind == "teleop_joint":
                msg, invalid = build_joints(side, spec)
                side.teleop_joint.publish(msg)
                side.sent["on_teleop_joint"] += 1
            elif kind == "joint_states":
                msg, _ = build_joints(side, spec)
                side.joint_states.publish(msg)
                side.sent["on_joint_states"] += 1
                invalid = False
            else:
                msg, _ = build_pose(spec)
                side.ee_pose.publish(msg)
                side.sent["on_ee_pose"] += 1
                invalid = False
            side.expected_refusals += int(invalid)
        for side in rig.values():
            for cb, n in side.sent.items():
                wait_for(lambda s=side, cb=cb, n=n: s.arbiter.calls[cb] >= n, WAIT, f"{side.ns} {cb} x{n}")
            assert not side.arbiter.crashes, side.arbiter.crashes[0]
            assert not side.guard.unsafe, side.guard.unsafe[:3]

    fuzz(batch, body, examples)
    # Let a few more control periods run, then check the whole command stream and the counters.
    for side in rig.values():
        mark = side.guard.counts["executed"]
        wait_for(lambda s=side, m=mark: s.guard.counts["executed"] > m + 5, WAIT, f"{side.ns}: commands go on")
    for key, side in rig.items():
        arb, guard = side.arbiter, side.guard
        sent = sum(side.sent.values())
        refused = arb.core.refused - start[key][0]
        commands = guard.total - start[key][1]
        ran_bad = sorted({e.policy_version for e in guard.executed} & side.bad_versions)
        wait_for(
            lambda s=side: s.states and s.states[-1].refused_commands == s.arbiter.core.refused,
            WAIT,
            f"{side.ns}: ControlState reports the refusals",
        )
        record("fuzz", f"arbiter[{key}] messages sent", sent, detail=str({k: v for k, v in side.sent.items() if v}))
        record("fuzz", f"arbiter[{key}] callback crashes", len(arb.crashes), expected=0, ok=not arb.crashes)
        record("fuzz", f"arbiter[{key}] robot commands checked", commands)
        record("fuzz", f"arbiter[{key}] unsafe commands", len(guard.unsafe), expected=0, ok=not guard.unsafe)
        record(
            "fuzz",
            f"arbiter[{key}] refusals counted",
            refused,
            expected=f">= {side.expected_refusals}",
            ok=refused >= side.expected_refusals,
        )
        record("fuzz", f"arbiter[{key}] refused chunks executed", len(ran_bad), expected=0, ok=not ran_bad)
        record("fuzz", f"arbiter[{key}] measured states refused", arb.core.refused_states - start_states[key])
        assert not arb.crashes and not guard.unsafe
        assert refused >= side.expected_refusals, (refused, side.expected_refusals)
        assert not ran_bad, f"refused chunks {ran_bad[:5]} were executed"
        assert commands > 0


def test_arbiter_counts_refused_measurements(rig):
    """A measured state with NaN is refused and counted, and does not move the command."""
    side = rig["joint"]
    before = side.arbiter.core.refused_states
    names = list(side.limits.names)
    side.joint_states.publish(JointState(name=names, position=[math.nan] * len(names)))
    side.sent["on_joint_states"] += 1
    wait_for(lambda: side.arbiter.core.refused_states > before, WAIT, "refused measurement counted")
    mark = side.guard.counts["executed"]
    wait_for(lambda: side.guard.counts["executed"] > mark + 3, WAIT, "commands go on")
    assert not side.guard.unsafe and not side.arbiter.crashes
