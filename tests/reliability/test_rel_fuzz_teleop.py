"""Bad input, teleop bridges: hypothesis-generated WebSocket packets on the Quest 3 bridge's authorised socket (any
JSON, bytes, deep nesting, huge numbers), Quest2ROS-style poses and Joy, and raw leader-arm JointStates. No callback
raises, the socket stays open, every packet or reading is either taken or refused and counted, and everything the
bridges publish is finite (deltas with a unit quaternion, leader targets within the joint limits)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from hypothesis import strategies as st
from rclpy.node import Node
from rclpy.parameter import Parameter
from rel_support import SCALES, fuzz, instrumented, pick, record, wild_floats
from sensor_msgs.msg import JointState, Joy
from websockets.sync.client import connect

from hiors_core import topics
from hiors_core.robots import XTRAINER
from hiors_teleop.leader_arm.bridge import LeaderArmBridge
from hiors_teleop.quest3 import device as quest3
from hiors_teleop.quest3.bridge import Quest3Bridge
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_publishers, wait_for_subscribers

pytestmark = pytest.mark.node
WAIT = 30.0
TOKEN = "fuzz-token"
FuzzQuest3 = instrumented(Quest3Bridge, ["on_timer", "on_pose", "publish_diagnostics"])
FuzzLeader = instrumented(LeaderArmBridge, ["on_timer", "on_engage", "publish_diagnostics"])


class Outputs:
    """What a bridge publishes, checked on arrival."""

    def __init__(self, ctx, limits=None):
        self.node = Node("teleop_fuzz_probe", context=ctx)
        self.bad: list[str] = []
        self.counts = {"delta": 0, "joy": 0, "joint": 0}
        self.limits = limits
        sub = self.node.create_subscription
        self.subs = [
            sub(
                PoseStamped,
                topics.TELEOP_EE_DELTA.format(arm="left"),
                self.on_delta,
                topics.qos(topics.TELEOP_EE_DELTA, depth=100),
            ),
            sub(Joy, topics.TELEOP_JOY, self.on_joy, topics.qos(topics.TELEOP_JOY, depth=100)),
            sub(JointState, topics.TELEOP_JOINT, self.on_joint, topics.qos(topics.TELEOP_JOINT, depth=100)),
        ]

    def on_delta(self, m):
        self.counts["delta"] += 1
        p, o = m.pose.position, m.pose.orientation
        v = [p.x, p.y, p.z, o.x, o.y, o.z, o.w]
        if not all(math.isfinite(x) for x in v) or abs(math.sqrt(sum(x * x for x in v[3:])) - 1.0) > 1e-6:
            self.bad.append(f"delta {v}")

    def on_joy(self, m):
        self.counts["joy"] += 1
        if not all(math.isfinite(a) for a in m.axes):
            self.bad.append(f"joy axes {list(m.axes)}")

    def on_joint(self, m):
        self.counts["joint"] += 1
        pos = np.asarray(m.position, np.float64)
        if not np.all(np.isfinite(pos)):
            self.bad.append(f"joint targets {pos.tolist()}")
        elif self.limits is not None:
            lo, hi = self.limits
            if np.any(pos < lo - 1e-9) or np.any(pos > hi + 1e-9):
                self.bad.append(f"joint targets {pos.tolist()} outside {lo.tolist()}..{hi.tolist()}")


def guard_device(bridge, names):
    """Exceptions escaping the device methods the bridge's lambdas call are crashes of the node too."""
    for name in names:
        orig = getattr(bridge.device, name)

        def method(*a, _orig=orig, _name=name, **k):
            try:
                return _orig(*a, **k)
            except Exception as e:  # recorded, the test fails on it
                bridge.crashes.append(f"device.{_name}: {type(e).__name__}: {e}")

        setattr(bridge.device, name, method)


# --- Quest 3 WebSocket ------------------------------------------------------------------------------------------------

number = st.one_of(
    st.floats(-2, 2), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**400), 10**400), st.booleans()
)
json_value = st.recursive(
    st.none() | st.booleans() | number | st.text(max_size=6),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=10,
)
packet = st.fixed_dictionaries(
    {},
    optional={
        "hand": st.one_of(st.sampled_from(["right", "right", "left"]), json_value),
        "p": st.one_of(st.lists(number, min_size=3, max_size=3), json_value),
        "q": st.one_of(st.lists(number, min_size=4, max_size=4), st.just([0, 0, 0, 1]), json_value),
        "buttons": st.one_of(st.lists(st.booleans(), max_size=8), st.lists(json_value, max_size=4)),
        "values": st.one_of(st.lists(number, max_size=6), json_value),
    },
)
# Well-formed packets with the clutch pressed and numbers anywhere in their range.
clutched = st.fixed_dictionaries(
    {
        "hand": st.just("right"),
        "p": st.lists(st.one_of(st.floats(-2, 2), number), min_size=3, max_size=3),
        "q": st.one_of(st.just([0, 0, 0, 1]), st.lists(st.one_of(st.floats(-1, 1), number), min_size=4, max_size=4)),
        "buttons": st.lists(st.booleans(), min_size=2, max_size=6).map(lambda b: [b[0], True, *b[2:]]),
        "values": st.lists(st.one_of(st.floats(0, 1), number), max_size=4),
    }
)
wire = st.one_of(
    clutched.map(lambda d: json.dumps(d, allow_nan=True)),
    clutched.map(lambda d: json.dumps(d, allow_nan=True)),
    clutched.map(lambda d: json.dumps(d, allow_nan=True)),
    packet.map(lambda d: json.dumps(d, allow_nan=True)),
    packet.map(lambda d: json.dumps(d, allow_nan=True)),
    packet.map(lambda d: json.dumps(d, allow_nan=True)),
    json_value.map(lambda v: json.dumps(v, allow_nan=True)),
    st.binary(max_size=64),
    st.text(max_size=64),
    st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 5000).map(lambda n: '{"p": [1e' + "9" * n + ', 0, 0], "q": [0, 0, 0, 1]}'),
)


def webxr_outcome(raw) -> str:
    """'taken', 'other hand' or 'malformed' for one message, by the adapter's own definition of a packet."""
    try:
        pkt = json.loads(raw)
        ok = quest3.valid_packet(pkt)
    except Exception:  # anything that does not parse into a valid packet must be refused
        return "malformed"
    if not ok:
        return "malformed"
    return "taken" if pkt.get("hand", "right") == "right" else "other hand"


@pytest.mark.parametrize("scale", SCALES)
def test_quest3_websocket_refuses_and_counts_malformed_packets(scale):
    examples = pick(scale, 60, 1000)
    with ros_context() as ctx:
        bridge = FuzzQuest3(
            context=ctx,
            parameter_overrides=[
                Parameter("port", value=0),
                Parameter("token", value=TOKEN),
                Parameter("max_age_s", value=0.0),
                Parameter("rate_hz", value=100.0),
            ],
        )
        out = Outputs(ctx)
        dev = bridge.device
        expect = {"taken": 0, "other hand": 0, "malformed": 0}
        try:
            with spinning([bridge, out.node], context=ctx):
                wait_for_publishers(out.subs[1], timeout=WAIT)
                with connect(f"ws://127.0.0.1:{dev.port}/ws?token={TOKEN}", open_timeout=WAIT, max_size=None) as ws:

                    def body(messages):
                        for m in messages:
                            expect[webxr_outcome(m)] += 1
                            ws.send(m)
                        want = expect["taken"] + expect["malformed"]
                        wait_for(
                            lambda: dev.stats()["packets"] + dev.stats()["malformed"] >= want,
                            WAIT,
                            "every packet taken or refused (a dead socket handler stops here)",
                        )
                        assert not bridge.crashes, bridge.crashes[0]
                        assert not out.bad, out.bad[:3]

                    fuzz(st.lists(wire, min_size=1, max_size=8), body, examples)
                    # One good packet at the end: the socket is still open and taking packets.
                    before = dev.stats()["packets"]
                    ws.send(json.dumps({"hand": "right", "p": [0, 1, 0], "q": [0, 0, 0, 1], "buttons": [0, 1]}))
                    expect["taken"] += 1
                    wait_for(lambda: dev.stats()["packets"] > before, WAIT, "a good packet after the fuzz")
                    mark = out.counts["joy"]
                    wait_for(lambda: out.counts["joy"] > mark + 2, WAIT, "the bridge keeps publishing")
                crashes = list(bridge.crashes)
        finally:
            bridge.destroy_node()
            out.node.destroy_node()
    s = dev.stats()
    sent = sum(expect.values())
    record("fuzz", "quest3 websocket messages sent", sent, detail=str(expect))
    record("fuzz", "quest3 packets taken", s["packets"], expected=expect["taken"], ok=s["packets"] == expect["taken"])
    record(
        "fuzz",
        "quest3 packets refused (counted)",
        s["malformed"],
        expected=expect["malformed"],
        ok=s["malformed"] == expect["malformed"],
    )
    record("fuzz", "quest3 non-finite teleop output", len(out.bad), expected=0, ok=not out.bad)
    record("fuzz", "quest3 bridge crashes", len(crashes), expected=0, ok=not crashes)
    assert s["packets"] == expect["taken"] and s["malformed"] == expect["malformed"]
    assert not out.bad and not crashes


# --- Quest2ROS topics and the leader arm ----------------------------------------------------------------------------

pose_or_joy = st.one_of(
    st.tuples(
        st.just("pose"),
        st.lists(wild_floats(-1, 1), min_size=3, max_size=3),
        st.one_of(st.just([0.0, 0.0, 0.0, 1.0]), st.lists(wild_floats(-1, 1), min_size=4, max_size=4)),
    ),
    st.tuples(
        st.just("joy"),
        st.lists(st.integers(0, 1) | st.integers(-(2**31), 2**31 - 1), max_size=6),
        st.lists(wild_floats(0, 1).map(lambda v: v if not math.isfinite(v) or abs(v) < 3e38 else 3e38), max_size=3),
    ),
)


@pytest.mark.parametrize("scale", SCALES)
def test_quest2ros_topics_refuse_and_count_malformed_poses(scale):
    examples = pick(scale, 40, 600)
    with ros_context() as ctx:
        bridge = FuzzQuest3(
            context=ctx,
            parameter_overrides=[
                Parameter("source", value="topics"),
                Parameter("max_age_s", value=0.0),
                Parameter("rate_hz", value=100.0),
            ],
        )
        guard_device(bridge, ["feed_joy"])
        out = Outputs(ctx)
        pose_pub = out.node.create_publisher(PoseStamped, "q2r/right_hand_pose", topics.profile(topics.QOS_DEFAULT))
        joy_pub = out.node.create_publisher(Joy, "q2r/right_hand_inputs", topics.profile(topics.QOS_DEFAULT))
        dev = bridge.device
        sent = {"pose": 0, "joy": 0, "bad_pose": 0}
        try:
            with spinning([bridge, out.node], context=ctx):
                wait_for_subscribers(pose_pub, timeout=WAIT)
                wait_for_subscribers(joy_pub, timeout=WAIT)

                def body(items):
                    for kind, a, b in items:
                        if kind == "pose":
                            m = PoseStamped()
                            m.pose.position.x, m.pose.position.y, m.pose.position.z = a
                            o = m.pose.orientation
                            o.x, o.y, o.z, o.w = b
                            with np.errstate(all="ignore"):
                                sent["bad_pose"] += not (
                                    np.all(np.isfinite(a))
                                    and np.all(np.abs(a) <= quest3.MAX_POSITION_M)
                                    and np.all(np.isfinite(b))
                                    and np.linalg.norm(b) > 1e-6
                                )
                            pose_pub.publish(m)
                            sent["pose"] += 1
                            wait_for(lambda: bridge.calls["on_pose"] >= sent["pose"], WAIT, "pose taken")
                        else:
                            joy_pub.publish(Joy(buttons=[int(x) for x in a], axes=[float(x) for x in b]))
                            sent["joy"] += 1
                    assert not bridge.crashes, bridge.crashes[0]
                    assert not out.bad, out.bad[:3]

                fuzz(st.lists(pose_or_joy, min_size=1, max_size=8), body, examples)
                mark = out.counts["joy"]
                wait_for(lambda: out.counts["joy"] > mark + 2, WAIT, "the bridge keeps publishing")
                crashes = list(bridge.crashes)
        finally:
            bridge.destroy_node()
            out.node.destroy_node()
    s = dev.stats()
    record("fuzz", "quest2ros messages sent", sent["pose"] + sent["joy"], detail=str(sent))
    record(
        "fuzz",
        "quest2ros poses refused (counted)",
        s["malformed"],
        expected=sent["bad_pose"],
        ok=s["malformed"] == sent["bad_pose"],
    )
    record("fuzz", "quest2ros non-finite teleop output", len(out.bad), expected=0, ok=not out.bad)
    record("fuzz", "quest2ros bridge crashes", len(crashes), expected=0, ok=not crashes)
    assert s["malformed"] == sent["bad_pose"] and s["poses"] + s["malformed"] == sent["pose"]
    assert not out.bad and not crashes


RAW = [f"m{i}" for i in range(1, 8)]
leader_msg = st.fixed_dictionaries(
    {
        "names": st.sampled_from(["all", "all", "subset", "garbage", "mismatch", "shuffled"]),
        "values": st.lists(wild_floats(-4, 4), min_size=0, max_size=9),
        "seed": st.integers(0, 2**32 - 1),
        "engage": st.sampled_from([None, None, None, [1], [0], [], [5, 1]]),
    }
)


@pytest.mark.parametrize("scale", SCALES)
def test_leader_arm_refuses_and_counts_malformed_readings(scale):
    examples = pick(scale, 40, 600)
    names = [f"left_joint{i}" for i in range(1, 7)] + ["left_gripper"]
    index = {n: i for i, n in enumerate(XTRAINER.joint_names)}
    lo = np.array([XTRAINER.joint_lower[index[n]] for n in names])
    hi = np.array([XTRAINER.joint_upper[index[n]] for n in names])
    with ros_context() as ctx:
        bridge = FuzzLeader(
            context=ctx,
            parameter_overrides=[
                Parameter("raw_names", value=RAW),
                Parameter("max_excess_rad", value=0.2),
                Parameter("max_age_s", value=0.0),
                Parameter("rate_hz", value=100.0),
            ],
        )
        guard_device(bridge, ["feed"])
        out = Outputs(ctx, limits=(lo, hi))
        raw_pub = out.node.create_publisher(JointState, "leader/joint_states", topics.profile(topics.QOS_DEFAULT))
        engage_pub = out.node.create_publisher(Joy, "leader/engage", topics.profile(topics.QOS_DEFAULT))
        dev = bridge.device
        sent = {"readings": 0, "certainly_refused": 0, "engage": 0}
        try:
            with spinning([bridge, out.node], context=ctx):
                wait_for_subscribers(raw_pub, timeout=WAIT)
                wait_for_subscribers(engage_pub, timeout=WAIT)

                def body(items):
                    for spec in items:
                        rng = np.random.default_rng(spec["seed"])
                        values = list(spec["values"])
                        kind = spec["names"]
                        if kind in ("all", "shuffled"):
                            values = (values + [0.1] * 7)[:7]
                            n = list(rng.permutation(RAW)) if kind == "shuffled" else list(RAW)
                        elif kind == "subset":
                            n = [r for r in RAW if rng.random() < 0.5][: len(values)]
                            values = values[: len(n)]
                        elif kind == "garbage":
                            n = [f"x{i}" for i in range(len(values))]
                        else:
                            n = RAW[: max(0, len(values) - 1)] if values else ["m1"]
                        mismatch = len(n) != len(values)
                        full_bad = kind in ("all", "shuffled") and not np.all(np.isfinite(values))
                        sent["certainly_refused"] += int(mismatch or full_bad)
                        raw_pub.publish(JointState(name=[str(x) for x in n], position=[float(v) for v in values]))
                        sent["readings"] += 1
                        if spec["engage"] is not None:
                            engage_pub.publish(Joy(buttons=spec["engage"]))
                            sent["engage"] += 1
                    wait_for(
                        lambda: dev.stats()["readings"] + dev.stats()["refused"] >= sent["readings"],
                        WAIT,
                        "every reading taken or refused",
                    )
                    wait_for(lambda: bridge.calls["on_engage"] >= sent["engage"], WAIT, "pedal messages taken")
                    assert not bridge.crashes, bridge.crashes[0]
                    assert not out.bad, out.bad[:3]

                fuzz(st.lists(leader_msg, min_size=1, max_size=8), body, examples)
                raw_pub.publish(JointState(name=RAW, position=[0.0] * 7))
                sent["readings"] += 1
                wait_for(
                    lambda: dev.stats()["readings"] + dev.stats()["refused"] >= sent["readings"], WAIT, "last reading"
                )
                wait_for(lambda: out.counts["joint"] > 0, WAIT, "targets after a good reading")
                crashes = list(bridge.crashes)
        finally:
            bridge.destroy_node()
            out.node.destroy_node()
    s = dev.stats()
    record("fuzz", "leader arm readings sent", sent["readings"], detail=str(sent))
    record(
        "fuzz",
        "leader arm readings refused (counted)",
        s["refused"],
        expected=f">= {sent['certainly_refused']}",
        ok=s["refused"] >= sent["certainly_refused"],
    )
    record("fuzz", "leader arm readings unaccounted", sent["readings"] - s["readings"] - s["refused"], expected=0)
    record("fuzz", "leader arm targets outside limits", len(out.bad), expected=0, ok=not out.bad)
    record("fuzz", "leader arm bridge crashes", len(crashes), expected=0, ok=not crashes)
    assert s["readings"] + s["refused"] == sent["readings"]
    assert s["refused"] >= sent["certainly_refused"]
    assert not out.bad and not crashes
