"""Deterministic tests of single cases from the reliability suite's fuzzers and fault runs: bad input is refused and
counted, never fatal, and a restarted node or a clock that goes back is survived."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from rclpy.parameter import Parameter
from websockets.sync.client import connect

from hiors_core.errors import BadInputError
from hiors_core.schema import Label
from hiors_core.weight_sync import WeightSyncError, read_verified, sha256_hex
from hiors_msgs.msg import ActionChunk
from hiors_teleop.arbiter import Arbiter
from hiors_teleop.quest3.bridge import Quest3Bridge
from hiors_teleop.quest3.device import Quest3WebXR
from hiors_teleop.recorder import Recorder
from hiors_teleop.recording import RecordFrame
from hiors_teleop.teleoperator import TeleopCommand
from hiors_testing.ros import ros_context, wait_for

pytestmark = pytest.mark.node


def test_arbiter_refuses_a_chunk_with_non_finite_dt():
    """A chunk with a NaN or infinite dt is refused and counted in the chunk callback (an exception there would end
    the arbiter process)."""
    with ros_context() as ctx:
        arb = Arbiter(context=ctx, parameter_overrides=[Parameter("robot", value="tora_one")])
        try:
            for dt in (math.nan, math.inf, -math.inf):
                msg = ActionChunk(control_mode=1, horizon=2, action_dim=8, dt=dt)
                msg.actions = [0.3, 0.2, 1.1, 0.0, 0.0, 0.0, 1.0, 0.5] * 2
                msg.header.stamp = arb.get_clock().now().to_msg()
                before = arb.core.refused
                arb.on_chunk(msg)
                assert arb.core.refused == before + 1 and "dt" in arb.core.reason
            assert arb.core.executor.pending is None and arb.core.executor.current is None
        finally:
            arb.destroy_node()


@pytest.mark.timeout(30)
def test_weights_are_read_only_from_a_regular_file_of_the_announced_size(tmp_path):
    """A PolicyUpdate's file is read only when it is a regular file of the announced size: /dev/zero would be read
    until memory runs out, a FIFO would block the weights callbacks."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    good = tmp_path / "w.safetensors"
    good.write_bytes(b"x" * 100)
    for path, total in (("/dev/zero", 100), (fifo, 100), (tmp_path, 100), (good, 99), (good, 2**63)):
        with pytest.raises(WeightSyncError):
            read_verified(path, sha256_hex(b"x" * 100), total)
    assert read_verified(good, sha256_hex(b"x" * 100), 100) == b"x" * 100


def test_recorder_refuses_a_non_finite_reward_and_counts_it(tmp_path):
    """A NaN or inf reward neither labels nor ends the episode: refused and counted, it never reaches the learner side
    as a return."""
    with ros_context() as ctx:
        rec = Recorder(context=ctx, parameter_overrides=[Parameter("log_dir", value=str(tmp_path))])
        try:
            ok, eid, _ = rec.start()
            assert ok
            for r in (math.nan, math.inf, -math.inf):
                ok, why = rec.label(Label(reward=r, success=True, source="human"), eid)
                assert not ok and "finite" in why
                ok, _, why = rec.end(Label(reward=r, success=True, source="human"), eid)
                assert not ok and "finite" in why
            assert rec.refused["labels"] == 6 and rec.state == "recording" and rec.episode_id == eid
            ok, _ = rec.label(Label(reward=1.0, success=True, source="human"), eid)
            assert ok and rec.state == "idle"
            ok, _ = rec.label(Label(reward=1.0, success=True, source="human"), eid)  # nothing open any more
            assert not ok and rec.refused["labels"] == 7
        finally:
            rec.shutdown()
            rec.destroy_node()


def test_recorder_counts_frames_it_cannot_record(tmp_path):
    from hiors_core.convert import frame_from_observation
    from hiors_msgs.msg import Observation

    bad = Observation(state_names=["a"], state=[math.nan])
    with pytest.raises(BadInputError):
        frame_from_observation(bad)
    with ros_context() as ctx:
        rec = Recorder(context=ctx, parameter_overrides=[Parameter("log_dir", value=str(tmp_path))])
        try:
            rec.start()
            rec.jobs.put(RecordFrame(bad, 0, 1))
            wait_for(lambda: rec.refused["frames"] == 1, 10, "the bad frame counted")
            assert rec.worker.is_alive()
        finally:
            rec.shutdown()
            rec.destroy_node()


@pytest.mark.timeout(60)
def test_websocket_packets_that_break_the_json_parser_are_refused_not_fatal():
    """A packet nested too deep (RecursionError) or with an integer too big for a float (OverflowError) is counted as
    malformed, and the operator's authorised WebSocket connection stays open."""
    dev = Quest3WebXR(host="127.0.0.1", port=0, token="t")
    dev.connect()
    try:
        with connect(f"ws://127.0.0.1:{dev.port}/ws?token=t", open_timeout=10) as ws:
            bad = [
                "[" * 100_000 + "]" * 100_000,
                json.dumps({"p": [10**400, 0, 0], "q": [0, 0, 0, 1]}),
                json.dumps({"p": [0, 1, 0], "q": [0, 0, 0, 1], "values": [10**400]}),
                '{"p": [' + "9" * 5000 + ", 0, 0], " + '"q": [0, 0, 0, 1]}',
                json.dumps({"p": [1e308, 0, 0], "q": [0, 0, 0, 1]}),  # its clutch delta would overflow
            ]
            for b in bad:
                ws.send(b)
            wait_for(lambda: dev.stats()["malformed"] == len(bad), 20, "every bad packet counted")
            ws.send(json.dumps({"p": [0, 1, 0], "q": [0, 0, 0, 1], "buttons": [0, 1]}))
            wait_for(lambda: dev.stats()["packets"] == 1, 20, "the socket still takes packets")
    finally:
        dev.disconnect()


def test_bridge_publishes_a_finite_trigger_in_0_1():
    """A trigger of 1e300, below 0 or NaN is published as a finite Joy axis in [0, 1] (never an infinite float32)."""
    with ros_context() as ctx:
        bridge = Quest3Bridge(context=ctx, parameter_overrides=[Parameter("source", value="topics")])
        sent = []
        bridge.pub_joy.publish = sent.append
        try:
            for t in (1e300, -5.0, math.nan, 0.25):
                bridge.publish_command(TeleopCommand(engaged=False, trigger=t))
            axes = [m.axes[0] for m in sent]
            assert np.allclose(axes, [1.0, 0.0, 0.0, 0.25])
        finally:
            bridge.destroy_node()


def test_episode_runner_goes_on_after_an_unanswered_call():
    """A service call left unanswered (the recorder restarting, as in test_rel_faults.py) costs that episode only: the
    runner's loop goes on with the next."""
    from hiors_sim.episode_runner import EpisodeRunner

    class Runner(EpisodeRunner):
        def run_episode(self, k):
            if k == 0:
                raise TimeoutError("end episode: no response from end_episode")
            return True  # recorded

    with ros_context() as ctx:
        runner = Runner(
            context=ctx,
            parameter_overrides=[
                Parameter("episodes", value=3),
                Parameter("pause_s", value=0.0),
                Parameter("policy_wait_s", value=0.0),  # no actor in this test
            ],
        )
        try:
            wait_for(lambda: runner.done + runner.failed == 3, 10, "three episodes attempted")
            assert (runner.done, runner.failed) == (2, 1)
        finally:
            runner.shutdown()
            runner.destroy_node()


# --- a restarted sim: its /clock starts again from zero (a sim kill in test_rel_faults.py) --------------------------


def test_capture_takes_the_new_time_base_after_the_clock_went_back():
    """After the twin restarts (its clock back near zero) capture takes the new time base at once, rather than
    publishing nothing until the new sim time passes the last joint-state stamp from before the restart."""
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState

    from hiors_core.convert_ros import image_msg, time_msg
    from hiors_policy.capture_node import CaptureNode

    names = [f"left_joint{i}" for i in range(1, 8)] + [f"right_joint{i}" for i in range(1, 8)]
    names += ["left_gripper", "right_gripper"]
    with ros_context() as ctx:
        node = CaptureNode(context=ctx)
        try:

            def feed(t_ns):
                for c in ("top", "left_wrist"):
                    node._on_image(c, image_msg(np.zeros((8, 8, 3), np.uint8), t_ns, c))
                pose = PoseStamped()
                pose.header.stamp = time_msg(t_ns)
                pose.pose.orientation.w = 1.0
                node._on_pose("left", pose)
                js = JointState(name=names, position=[0.0] * len(names))
                js.header.stamp = time_msg(t_ns)
                node._on_joints(js)
                return node.build()

            assert feed(3600 * 10**9) is not None
            assert feed(3600 * 10**9) is None  # the same joint state is used once
            assert feed(2 * 10**9) is not None  # the clock restarted: new bundles at once
            assert feed(2 * 10**9 + 40_000_000) is not None
        finally:
            node.destroy_node()


def test_teleop_watchdog_does_not_trust_input_from_before_the_clock_went_back():
    """Input stamped before a backward clock jump is not fresh (its age would be negative): a human who stopped
    sending loses authority, and fresh input under the new clock drives again."""
    from hiors_core.robots import TORA_ONE
    from hiors_core.schema import AUTHORITY_HOLD, AUTHORITY_HUMAN
    from hiors_teleop.authority import ArbiterConfig, ArbiterCore
    from hiors_teleop.safety import Limits, layout_for

    core = ArbiterCore(Limits.for_robot(TORA_ONE, layout_for(TORA_ONE, "ee", "left")), ArbiterConfig())
    core.set_measured(np.array([0.3, 0.2, 1.1, 0, 0, 0, 1, 0.5]))
    t = 3600 * 10**9
    core.human_joy(t, True)
    core.human_ee_delta(t, [0.0, 0.01, 0.0], [0, 0, 0, 1])
    assert core.tick(t + 10**7).authority == AUTHORITY_HUMAN
    r = core.tick(2 * 10**9)  # the sim restarted: its clock is back at 2 s
    assert r.authority == AUTHORITY_HOLD and r.reason == "teleop stale"
    core.human_joy(2 * 10**9 + 10**7, True)  # fresh input under the new clock: the human drives again
    core.human_ee_delta(2 * 10**9 + 10**7, [0.0, 0.01, 0.0], [0, 0, 0, 1])
    assert core.tick(2 * 10**9 + 2 * 10**7).authority == AUTHORITY_HUMAN


def test_episode_runner_waits_no_longer_when_the_clock_went_back():
    from hiors_sim.episode_runner import EpisodeRunner

    class Clock:
        def __init__(self):
            self.values = iter([100 * 10**9] + [101 * 10**9] * 3 + [1 * 10**9] * 1000)

        def now(self):
            return type("T", (), {"nanoseconds": next(self.values)})()

    with ros_context() as ctx:
        runner = EpisodeRunner(context=ctx, parameter_overrides=[Parameter("episodes", value=0)])
        try:
            clock = Clock()
            runner.get_clock = lambda: clock
            runner._sim_sleep(10.0)  # would wait for 10 s of the old clock (forever on a stopped one)
        finally:
            runner.shutdown()
            runner.destroy_node()


def test_an_empty_image_is_bad_input_not_an_opencv_error(tmp_path):
    """A 0x0 bgr8 image is bad input (BadInputError), not an OpenCV error: the recorder's writer thread, which
    catches only bad-input errors, refuses and counts it and goes on."""
    from hiors_core.convert import frame_from_observation
    from hiors_core.convert_ros import image_msg
    from hiors_msgs.msg import Observation

    img = image_msg(np.zeros((1, 1, 3), np.uint8), 0, "top")
    img.width = img.height = img.step = 0
    img.encoding, img.data = "bgr8", b""
    obs = Observation(camera_names=["top"], images=[img], state_names=["a"], state=[0.0])
    with pytest.raises(BadInputError, match="empty image"):
        frame_from_observation(obs)
    with ros_context() as ctx:
        rec = Recorder(context=ctx, parameter_overrides=[Parameter("log_dir", value=str(tmp_path))])
        try:
            rec.start()
            rec.jobs.put(RecordFrame(obs, 0, 1))
            wait_for(lambda: rec.refused["frames"] == 1, 10, "the empty image refused and counted")
            assert rec.worker.is_alive()
        finally:
            rec.shutdown()
            rec.destroy_node()


def test_recorder_counts_commands_lost_in_transport(tmp_path):
    """Commands the keep-last stream loses under overload (test_rel_load.py) are counted: a gap in the arbiter's step
    counter within an episode; a smaller step (the arbiter restarted) is not a loss."""
    from hiors_msgs.msg import ExecutedCommand

    with ros_context() as ctx:
        rec = Recorder(context=ctx, parameter_overrides=[Parameter("log_dir", value=str(tmp_path))])
        try:
            rec.start()
            for step in (100, 101, 105, 106, 3):  # 102..104 lost; 3: the arbiter restarted, not a loss
                rec.on_executed(ExecutedCommand(step=step, action=[0.0] * 8))
            assert rec.dropped_commands == 3 and rec.step == 5
        finally:
            rec.shutdown()
            rec.destroy_node()


def test_recorder_process_spins_single_threaded(monkeypatch):
    """The recorder process spins on one executor thread: every callback is in one mutually exclusive group (bag I/O
    has its own writer thread), so more executor threads could only wait."""
    from hiors_teleop import recorder

    seen = {}
    monkeypatch.setattr(recorder, "run_node", lambda factory, args, threads=1: seen.update(threads=threads))
    recorder.main([])
    assert seen["threads"] == 1
