"""Load: the policy node and the recorder under a sensor stream at several times its nominal rate (Observations at
10x the capture rate with full-size camera images; executed commands at 5x the control rate, every one a sample, as
while a person drives). Queues stay bounded, memory (RSS) stays flat after warm-up within a tolerance, and every
message is accounted for: taken, skipped (counted), or dropped in transport (reported)."""

from __future__ import annotations

import threading
import time

import numpy as np
import psutil
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rel_support import SCALES, instrumented, pick, record

from hiors_bench.reliability import growth
from hiors_core import topics
from hiors_core.convert_ros import image_msg, time_msg
from hiors_msgs.msg import ActionChunk, ExecutedCommand, Observation
from hiors_policy import build_tiny_policy
from hiors_policy.policy_node import PolicyNode
from hiors_teleop.recorder import Recorder
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

pytestmark = pytest.mark.node
CAPTURE_HZ = 10.0  # nominal Observation rate (capture rate_hz)
CONTROL_HZ = 25.0  # nominal control rate of both robots
RSS_TOLERANCE = 64 * 2**20  # growth allowed from warm-up to the end (allocator noise, bag chunk buffers)
WAIT = 60.0


def observation(rng, seq: int, cams, state_names, size=224) -> Observation:
    t = 10**9 + seq * 10_000_000
    msg = Observation(robot="tora_one", task="raise_hand", instruction="raise your left hand", sequence=seq)
    msg.header.stamp = time_msg(t)
    msg.camera_names = list(cams)
    msg.images = [image_msg(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), t, c) for c in cams]
    msg.state_names = list(state_names)
    msg.state = rng.normal(size=len(state_names)).astype(np.float32).tolist()
    return msg


def paced(n: int, hz: float, send, stop: threading.Event) -> threading.Thread:
    """Call send(i) n times at `hz` (a load generator: it keeps a rate, it synchronises nothing)."""

    def run():
        period, t0 = 1.0 / hz, time.monotonic()
        for i in range(n):
            if stop.is_set():
                return
            send(i)
            delay = t0 + (i + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def rss() -> int:
    return psutil.Process().memory_info().rss


@pytest.mark.parametrize("scale", SCALES)
def test_policy_node_under_10x_observations(scale):
    n = pick(scale, 400, 30_000)
    rate = 10 * CAPTURE_HZ
    policy = build_tiny_policy("tora_one", "raise_hand", seed=0)
    Counting = instrumented(PolicyNode, ["_on_observation"])
    rng = np.random.default_rng(0)
    pool = [observation(rng, i, policy.config.camera_names, policy.config.state_names) for i in range(8)]
    samples: list[int] = []
    with ros_context() as ctx:
        node = Counting(policy=policy, context=ctx)
        probe = Node("policy_load_probe", context=ctx)
        chunks = []
        probe.create_subscription(
            ActionChunk,
            topics.ACTION_CHUNK,
            lambda m: chunks.append(m.observation_sequence),
            topics.qos(topics.ACTION_CHUNK, depth=100),
        )
        pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION))
        stop = threading.Event()
        try:
            with spinning([node, probe], context=ctx):
                wait_for_subscribers(pub, timeout=WAIT)

                def send(i):
                    msg = pool[i % len(pool)]
                    msg.sequence = i
                    pub.publish(msg)
                    if i % 50 == 0:
                        samples.append(rss())

                th = paced(n, rate, send, stop)
                th.join()
                s = node.stats

                def settled():
                    s = node.stats
                    return (
                        s["chunks"] + s["refused_inputs"] + s["skipped_observations"] == node.calls["_on_observation"]
                    )

                wait_for(settled, WAIT, "every observation taken chunked or skipped")
                pending_max = 1  # one slot by construction (PolicyNode._pending_obs); checked below
                assert node._pending_obs is None
        finally:
            stop.set()
            node.destroy_node()
            probe.destroy_node()
    s = node.stats
    received = node.calls["_on_observation"]
    base, grew = growth(samples)
    record("load", f"policy node: observations sent at {rate:.0f} Hz (10x)", n)
    record("load", "policy node: observations received", received, detail=f"{n - received} dropped in transport")
    record("load", "policy node: chunks", s["chunks"])
    record("load", "policy node: observations skipped (counted)", s["skipped_observations"])
    record(
        "load",
        "policy node: observations unaccounted",
        received - s["chunks"] - s["skipped_observations"] - s["refused_inputs"],
        expected=0,
    )
    record("load", "policy node: queued observations (max)", pending_max, expected="<= 1")
    record(
        "load",
        "policy node: RSS growth after warm-up (MiB)",
        round(grew / 2**20, 1),
        expected=f"<= {RSS_TOLERANCE // 2**20}",
        ok=grew <= RSS_TOLERANCE,
        detail=f"RSS {base / 2**20:.0f} MiB after warm-up",
    )
    assert s["chunks"] > 0 and s["refused_inputs"] == 0
    assert grew <= RSS_TOLERANCE, f"RSS grew {grew / 2**20:.1f} MiB under load"


@pytest.mark.parametrize("scale", SCALES)
def test_recorder_under_5x_samples_and_10x_observations(tmp_path, scale):
    steps = pick(scale, 600, 20_000)
    cmd_rate, obs_rate = 5 * CONTROL_HZ, 10 * CAPTURE_HZ
    Counting = instrumented(Recorder, ["on_observation", "on_executed"])
    rng = np.random.default_rng(0)
    # 64 px images: the recorder's cost per frame is its bytes on disk; full runs would otherwise write ~10 GB.
    pool = [observation(rng, i, ("top", "left_wrist"), ("s0", "s1", "s2"), size=64) for i in range(8)]
    samples: list[int] = []
    backlog: list[int] = []
    with ros_context() as ctx:
        rec = Counting(
            context=ctx,
            parameter_overrides=[Parameter("log_dir", value=str(tmp_path)), Parameter("resend_period_s", value=0.0)],
        )
        probe = Node("recorder_load_probe", context=ctx)
        obs_pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, "recorder"))
        exec_pub = probe.create_publisher(ExecutedCommand, topics.EXECUTED, topics.qos(topics.EXECUTED, "recorder"))
        stop = threading.Event()
        try:
            with spinning([rec, probe], context=ctx, threads=1):  # as its process: run_node(Recorder, threads=1)
                wait_for_subscribers(obs_pub, timeout=WAIT)
                wait_for_subscribers(exec_pub, timeout=WAIT)
                t0 = 10**9

                def send_obs(i):
                    msg = pool[i % len(pool)]
                    msg.sequence = i
                    msg.header.stamp = time_msg(t0 + int(i * 1e9 / obs_rate))
                    obs_pub.publish(msg)

                def send_cmd(i):
                    m = ExecutedCommand(step=i, authority=2, source="quest3", control_mode=1, is_sample=True)
                    m.action = [0.3, 0.2, 1.1, 0.0, 0.0, 0.0, 1.0, 0.5]
                    m.header.stamp = time_msg(t0 + int(i * 1e9 / cmd_rate) + 1)
                    exec_pub.publish(m)
                    if i % 50 == 0:
                        samples.append(rss())
                        backlog.append(rec.jobs.unfinished_tasks - rec.jobs_done)

                obs_steps = int(steps * obs_rate / cmd_rate)
                ok, eid, _ = rec.start()  # one episode: every command of the stream belongs to it
                assert ok
                send_obs(0)
                send_cmd(0)  # the first command alone: a command lost later shows as a gap after it
                wait_for(lambda: rec.step == 1, WAIT, "the first command recorded")
                th_obs = paced(obs_steps, obs_rate, send_obs, stop)
                th_cmd = paced(steps - 1, cmd_rate, lambda i: send_cmd(i + 1), stop)
                th_cmd.join()
                th_obs.join()
                # One more command after the burst: once it is in, every earlier one is in or counted as lost.
                send_cmd(steps)
                wait_for(lambda: rec.last_exec is not None and rec.last_exec.step == steps, WAIT, "the last command")
                rec.end()
                wait_for(lambda: rec.jobs_done >= rec.jobs.unfinished_tasks, 300, "the writer to catch up")
        finally:
            stop.set()
            rec.shutdown()
            rec.destroy_node()
            probe.destroy_node()
    from hiors_core.episode_log import EpisodeLog

    log = EpisodeLog(tmp_path)
    frames = sum(e.frames for e in log.entries().values())
    steps_on_disk = sum(e.steps for e in log.entries().values())
    base, grew = growth(samples)
    record("load", f"recorder: commands sent at {cmd_rate:.0f} Hz (5x), every one a sample", steps)
    obs_sent = obs_steps + 1  # (and the first one, alone)
    record("load", f"recorder: observations sent at {obs_rate:.0f} Hz (10x)", obs_sent)
    record(
        "load",
        "recorder: observations received",
        rec.calls["on_observation"],
        detail=f"{obs_sent - rec.calls['on_observation']} dropped in transport (best effort, sensor QoS)",
    )
    sent = steps + 1
    accounted = steps_on_disk + rec.dropped_commands
    record("load", "recorder: commands on disk", steps_on_disk, expected=sent, ok=steps_on_disk <= sent)
    record("load", "recorder: commands lost in transport (counted)", rec.dropped_commands)
    record("load", "recorder: commands unaccounted", sent - accounted, expected=0, ok=accounted == sent)
    record("load", "recorder: frames on disk", frames, detail=f"{rec.missing_obs} samples without an observation")
    record("load", "recorder: frames refused (counted)", rec.refused["frames"], expected=0)
    record("load", "recorder: writer backlog (max jobs)", max(backlog, default=0))
    record(
        "load",
        "recorder: RSS growth after warm-up (MiB)",
        round(grew / 2**20, 1),
        expected=f"<= {RSS_TOLERANCE // 2**20}",
        ok=grew <= RSS_TOLERANCE,
        detail=f"RSS {base / 2**20:.0f} MiB after warm-up; backlog samples {backlog[-5:]}",
    )
    assert accounted == sent, "every executed command is recorded or counted as lost"
    assert frames + rec.missing_obs == steps_on_disk and rec.refused["frames"] == 0
    assert grew <= RSS_TOLERANCE, f"RSS grew {grew / 2**20:.1f} MiB under load; backlog {backlog[-10:]}"
