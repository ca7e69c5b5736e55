"""Node tests of the device bridges on a private ROS domain: quest3_bridge (WebXR page + WebSocket with a token, and
the Quest2ROS-style topic input) and leader_arm (raw JointState -> teleop joint targets). What comes out on the
teleop topics, what is refused and counted. The adapters' maths alone is in test_devices.py."""

import json
import math
import urllib.error
import urllib.request

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState, Joy
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from hiors_core import topics
from hiors_core.robots import XTRAINER
from hiors_core.rotations import quat_angle, quat_normalize
from hiors_teleop.leader_arm.bridge import LeaderArmBridge
from hiors_teleop.quest3.bridge import Quest3Bridge
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_publishers, wait_for_subscribers

pytestmark = pytest.mark.node
WAIT = 30.0
TOKEN = "s3cret"
IDENTITY = [0.0, 0.0, 0.0, 1.0]
SQUEEZE, BTN_A, BTN_B, STICK = 1, 4, 5, 3  # xr-standard gamepad indices (quest3/device.py)


class Probe:
    """Collects what a bridge publishes."""

    def __init__(self, ctx, arm="left"):
        self.node = Node("bridge_probe", context=ctx)
        self.joys: list[Joy] = []
        self.deltas: list[PoseStamped] = []
        self.joints: list[JointState] = []
        self.diags: list[DiagnosticArray] = []
        sub = self.node.create_subscription
        self.subs = [
            sub(Joy, topics.TELEOP_JOY, self.joys.append, topics.qos(topics.TELEOP_JOY, depth=100)),
            sub(
                PoseStamped,
                topics.TELEOP_EE_DELTA.format(arm=arm),
                self.deltas.append,
                topics.qos(topics.TELEOP_EE_DELTA, depth=100),
            ),
            sub(JointState, topics.TELEOP_JOINT, self.joints.append, topics.qos(topics.TELEOP_JOINT, depth=100)),
        ]
        sub(DiagnosticArray, topics.DIAGNOSTICS, self.diags.append, topics.qos(topics.DIAGNOSTICS))

    def diag_value(self, key):
        for d in reversed(self.diags):
            for kv in d.status[0].values:
                if kv.key == key:
                    return kv.value
        return None


def xr_packet(p, q=IDENTITY, pressed=(), trigger=0.0, hand="right"):
    buttons = [i in pressed for i in range(6)]
    return json.dumps({"hand": hand, "p": list(p), "q": list(q), "buttons": buttons, "values": [trigger, 0, 0, 0]})


def delta_of(msg: PoseStamped):
    p, o = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w])


def test_quest3_webxr_bridge_token_packets_and_refusals():
    with ros_context() as ctx:
        bridge = Quest3Bridge(
            context=ctx,
            parameter_overrides=[
                Parameter("port", value=0),
                Parameter("token", value=TOKEN),
                Parameter("max_age_s", value=0.0),  # staleness: see test_devices.py (needs a clock of its own)
            ],
        )
        probe = Probe(ctx)
        dev = bridge.device
        base = f"http://127.0.0.1:{dev.port}"
        ws_url = f"ws://127.0.0.1:{dev.port}/ws"
        try:
            with spinning([bridge, probe.node], context=ctx):
                for s in probe.subs[:2]:
                    wait_for_publishers(s, timeout=WAIT)
                # The page: only with the token.
                page = urllib.request.urlopen(f"{base}/?token={TOKEN}", timeout=10).read().decode()
                assert "navigator.xr" in page
                with pytest.raises(urllib.error.HTTPError) as e:
                    urllib.request.urlopen(f"{base}/", timeout=10)
                assert e.value.code == 403
                # The WebSocket: without a token or with a wrong one, HTTP 403 and counted.
                for url in (ws_url, ws_url + "?token=wrong"):
                    with pytest.raises(InvalidStatus) as e:
                        connect(url, open_timeout=10).close()
                    assert e.value.response.status_code == 403
                assert dev.stats()["rejected"] == 3 and dev.stats()["packets"] == 0
                assert bridge.published == 0 and not probe.joys  # nothing to publish yet

                with connect(f"{ws_url}?token={TOKEN}", open_timeout=10) as ws:
                    # Clutch pressed (squeeze) with A (= episode start) at the XR pose p0: the anchor.
                    p0 = [0.5, 1.0, 0.0]
                    ws.send(xr_packet(p0, pressed=(SQUEEZE, BTN_A), trigger=0.7))
                    wait_for(lambda: probe.joys and list(probe.joys[-1].buttons) == [1, 1, 0, 0], WAIT, "engaged Joy")
                    assert probe.joys[-1].axes[0] == pytest.approx(0.7)
                    wait_for(lambda: probe.deltas, WAIT, "first ee delta")
                    dp, dq = delta_of(probe.deltas[-1])
                    assert np.allclose(dp, 0) and quat_angle(dq, IDENTITY) < 1e-9
                    assert probe.deltas[-1].header.frame_id == "base_link"

                    # Move: XR up 0.1, forward (-z) 0.2, yaw 0.2 rad about XR up; B (= success) and the trigger.
                    yaw = quat_normalize([0, math.sin(0.1), 0, math.cos(0.1)])
                    ws.send(xr_packet([0.5, 1.1, -0.2], yaw, pressed=(SQUEEZE, BTN_B), trigger=0.25))
                    want_q = quat_normalize([0, 0, math.sin(0.1), math.cos(0.1)])  # about base z

                    def moved():
                        if not probe.deltas:
                            return False
                        dp, dq = delta_of(probe.deltas[-1])
                        return np.allclose(dp, [0.2, 0.0, 0.1], atol=1e-9) and quat_angle(dq, want_q) < 1e-6

                    wait_for(moved, WAIT, "ee delta of the move in the base frame")
                    wait_for(lambda: list(probe.joys[-1].buttons) == [1, 0, 1, 0], WAIT, "Joy with B")
                    assert probe.joys[-1].axes[0] == pytest.approx(0.25)

                    # Malformed packets on the authorised socket: refused, counted, never published.
                    nan = float("nan")
                    bad = [
                        "not json",
                        b"\xff\xfe\x00",
                        "[1, 2, 3]",
                        json.dumps({"hand": "right", "q": IDENTITY}),  # no position
                        json.dumps({"hand": "right", "p": [nan, 1.0, 0.0], "q": IDENTITY}),
                        json.dumps({"hand": "right", "p": [0, 1, 0], "q": [0, 0, 1]}),  # 3-element quaternion
                        json.dumps({"hand": "right", "p": [0, 1, 0], "q": [0, 0, 0, 0]}),  # no orientation
                        json.dumps({"hand": "right", "p": [0, 1, 0], "q": IDENTITY, "values": ["x"]}),
                        json.dumps({"hand": "right", "p": [0, 1, 0], "q": IDENTITY, "buttons": "abc"}),
                    ]
                    for b in bad:
                        ws.send(b)
                    wait_for(lambda: dev.stats()["malformed"] == len(bad), WAIT, f"{len(bad)} malformed packets")
                    # The other controller's packets are not this bridge's: ignored, not malformed.
                    ws.send(xr_packet([9.0, 9.0, 9.0], pressed=(SQUEEZE,), hand="left"))
                    # The socket is still open and the adapter still takes good packets.
                    ws.send(xr_packet([0.5, 1.2, -0.2], pressed=(SQUEEZE,)))
                    wait_for(lambda: dev.stats()["packets"] == 3, WAIT, "third good packet")
                    wait_for(lambda: np.allclose(delta_of(probe.deltas[-1])[0], [0.2, 0.0, 0.2]), WAIT, "delta")
                    assert dev.stats()["malformed"] == len(bad) and dev.stats()["rejected"] == 3

                    # Release the clutch: Joy says disengaged, no more deltas.
                    ws.send(xr_packet([0.5, 1.2, -0.2]))
                    wait_for(lambda: probe.joys[-1].buttons[0] == 0, WAIT, "disengaged Joy")
                    for d in probe.deltas:
                        dp, dq = delta_of(d)
                        assert np.all(np.isfinite(dp)) and np.all(np.isfinite(dq))
                        assert np.all(np.abs(dp) < 1.0)  # never the left controller's pose, never a NaN
                    assert bridge.device.read().ee_delta is None
                wait_for(lambda: probe.diag_value("malformed") == str(len(bad)), WAIT, "diagnostics")
                assert probe.diag_value("rejected") == "3"
        finally:
            bridge.destroy_node()
            probe.node.destroy_node()


def test_quest3_topics_bridge_quest2ros_input():
    with ros_context() as ctx:
        bridge = Quest3Bridge(
            context=ctx,
            parameter_overrides=[Parameter("source", value="topics"), Parameter("max_age_s", value=0.0)],
        )
        probe = Probe(ctx)
        pose_pub = probe.node.create_publisher(PoseStamped, "q2r/right_hand_pose", topics.profile(topics.QOS_DEFAULT))
        joy_pub = probe.node.create_publisher(Joy, "q2r/right_hand_inputs", topics.profile(topics.QOS_DEFAULT))

        def pose(p, q=IDENTITY):
            m = PoseStamped()
            m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in p)
            o = m.pose.orientation
            o.x, o.y, o.z, o.w = (float(v) for v in q)
            return m

        dev = bridge.device
        try:
            with spinning([bridge, probe.node], context=ctx):
                wait_for_subscribers(pose_pub, timeout=WAIT)
                wait_for_subscribers(joy_pub, timeout=WAIT)
                for s in probe.subs[:2]:
                    wait_for_publishers(s, timeout=WAIT)
                pose_pub.publish(pose([1.0, 2.0, 3.0]))
                wait_for(lambda: dev.stats()["poses"] == 1, WAIT, "first controller pose")
                joy_pub.publish(Joy(buttons=[1, 0, 1, 0], axes=[0.3]))  # grip held, success pressed
                wait_for(lambda: probe.joys and list(probe.joys[-1].buttons) == [1, 0, 1, 0], WAIT, "engaged Joy")
                assert probe.joys[-1].axes[0] == pytest.approx(0.3)
                pose_pub.publish(pose([1.1, 2.0, 3.05]))
                wait_for(
                    lambda: probe.deltas and np.allclose(delta_of(probe.deltas[-1])[0], [0.1, 0.0, 0.05]),
                    WAIT,
                    "delta since the grip engaged",
                )
                # Poses that cannot be a command are refused and counted; the last good delta stays.
                pose_pub.publish(pose([float("nan"), 2.0, 3.0]))
                pose_pub.publish(pose([1.2, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0]))
                wait_for(lambda: dev.stats()["malformed"] == 2, WAIT, "2 refused poses")
                assert dev.stats()["poses"] == 2
                n = len(probe.deltas)
                wait_for(lambda: len(probe.deltas) >= n + 3, WAIT, "more deltas")
                assert np.allclose(delta_of(probe.deltas[-1])[0], [0.1, 0.0, 0.05])
                assert all(np.all(np.isfinite(np.r_[delta_of(d)])) for d in probe.deltas)
                joy_pub.publish(Joy(buttons=[0, 0, 0, 0], axes=[0.0]))
                wait_for(lambda: probe.joys[-1].buttons[0] == 0, WAIT, "grip released")
        finally:
            bridge.destroy_node()
            probe.node.destroy_node()


def test_leader_arm_bridge_maps_refuses_and_counts():
    raw_names = [f"m{i}" for i in range(1, 8)]
    names = [f"left_joint{i}" for i in range(1, 7)] + ["left_gripper"]
    offsets = [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    signs = [1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    index = {n: i for i, n in enumerate(XTRAINER.joint_names)}
    lower = np.array([XTRAINER.joint_lower[index[n]] for n in names])
    upper = np.array([XTRAINER.joint_upper[index[n]] for n in names])
    with ros_context() as ctx:
        bridge = LeaderArmBridge(
            context=ctx,
            parameter_overrides=[
                Parameter("raw_names", value=raw_names),
                Parameter("offsets", value=offsets),
                Parameter("signs", value=signs),
                Parameter("max_excess_rad", value=0.2),
                Parameter("max_age_s", value=0.0),
            ],
        )
        probe = Probe(ctx)
        raw_pub = probe.node.create_publisher(JointState, "leader/joint_states", topics.profile(topics.QOS_DEFAULT))
        engage_pub = probe.node.create_publisher(Joy, "leader/engage", topics.profile(topics.QOS_DEFAULT))
        dev = bridge.device

        def send(values, order=None, extra=True):
            order = order or list(range(7))
            js = JointState(name=[raw_names[i] for i in order], position=[float(values[i]) for i in order])
            if extra:  # readings of other joints on the same topic are ignored
                js.name.append("wrist_camera_tilt")
                js.position.append(123.0)
            raw_pub.publish(js)

        def latest_is(expected):
            return probe.joints and np.allclose(probe.joints[-1].position, expected, atol=1e-9)

        try:
            with spinning([bridge, probe.node], context=ctx):
                wait_for_subscribers(raw_pub, timeout=WAIT)
                wait_for_subscribers(engage_pub, timeout=WAIT)
                wait_for_publishers(probe.subs[2], timeout=WAIT)
                # m3 and the gripper lie 0.1 beyond their limits (within max_excess): clipped to them.
                raw = [0.2, 0.5, 2.7, -0.4, 0.0, 1.0, 1.1]
                send(raw, order=[6, 2, 0, 5, 1, 4, 3])
                want = [0.3, -0.5, 2.6, -0.4, 0.0, 1.0, 1.0]
                wait_for(lambda: latest_is(want), WAIT, "mapped joint targets")
                assert list(probe.joints[-1].name) == names
                assert probe.joys[-1].buttons[0] == 0  # no pedal yet: not engaged
                engage_pub.publish(Joy(buttons=[1]))
                wait_for(lambda: probe.joys[-1].buttons[0] == 1, WAIT, "engaged by the pedal")

                # Refused: joint 2 maps 0.7 rad beyond its limit; a NaN; names and values of different lengths.
                refusals = [
                    ([0.2, -2.5, 0.0, 0.0, 0.0, 0.0, 0.5], "left_joint2"),
                    ([math.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5], "non-finite"),
                ]
                for k, (values, why) in enumerate(refusals):
                    send(values)
                    wait_for(lambda k=k: dev.stats()["refused"] == k + 1, WAIT, f"refusal {k + 1}")
                    assert why in dev.last_refusal
                    assert dev.read() is None  # nothing is commanded until a good reading arrives
                raw_pub.publish(JointState(name=raw_names, position=[0.0] * 6))
                wait_for(lambda: dev.stats()["refused"] == 3, WAIT, "refusal 3 (7 names, 6 values)")

                # A good reading again: targets resume, still within the limits.
                send([-0.1, 0.0, 0.5, 0.5, -0.5, 0.0, 0.4], extra=False)
                wait_for(lambda: latest_is([0.0, 0.0, 0.5, 0.5, -0.5, 0.0, 0.4]), WAIT, "targets after the refusals")
                for m in probe.joints:
                    pos = np.asarray(m.position)
                    assert np.all(np.isfinite(pos)) and np.all(pos >= lower) and np.all(pos <= upper)
                    assert not np.isclose(pos[1], upper[1])  # the refused reading never came out, not even clipped
                wait_for(lambda: probe.diag_value("refused") == "3", WAIT, "diagnostics counting 3 refusals")
        finally:
            bridge.destroy_node()
            probe.node.destroy_node()
