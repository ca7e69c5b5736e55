"""Node tests on a private ROS domain (conftest.py): capture and policy, waiting on conditions, never sleeping."""

import math
import os
import threading

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Header

from conftest import make_obs
from hiors_core import topics
from hiors_core.convert_ros import image_msg, time_msg
from hiors_core.weight_sync import weight_messages, write_atomic
from hiors_msgs.msg import ActionChunk, Observation, PolicyUpdate, PolicyWeights
from hiors_policy import build_tiny_policy
from hiors_policy.capture_node import CaptureNode
from hiors_policy.policy_node import PolicyNode
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

NS = 1_000_000_000


def observation(policy, seq, **change):
    obs = make_obs(policy, seed=seq)
    msg = Observation(robot="tora_one", task="raise_hand", instruction=obs.instruction, sequence=seq)
    msg.header.stamp = time_msg(seq * NS)
    msg.camera_names = list(obs.images)
    msg.images = [image_msg(im, seq * NS, name) for name, im in obs.images.items()]
    msg.state_names = list(policy.config.state_names)
    msg.state = obs.state.tolist()
    for k, v in change.items():
        setattr(msg, k, v)
    return msg


@pytest.fixture
def ctx():
    with ros_context() as c:
        yield c


def test_policy_node_chunks_and_refusals(ctx):
    policy = build_tiny_policy("tora_one", "raise_hand", seed=0)
    node = PolicyNode(policy=policy, context=ctx, parameter_overrides=[Parameter("diagnostics_period", value=0.05)])
    probe = node.__class__.__mro__[1]("probe", context=ctx)  # a plain rclpy Node
    chunks, diags = [], []
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    probe.create_subscription(ActionChunk, topics.ACTION_CHUNK, chunks.append, topics.qos(topics.ACTION_CHUNK))
    probe.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append, topics.qos(topics.DIAGNOSTICS))
    pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, depth=10))
    try:
        with spinning([node, probe], context=ctx):
            wait_for_subscribers(pub)
            pub.publish(observation(policy, 1))
            wait_for(lambda: len(chunks) == 1, 20, "first chunk")
            c = chunks[0]
            assert (c.horizon, c.action_dim, c.observation_sequence, c.policy_version) == (16, 8, 1, 0)
            assert len(c.actions) == 16 * 8 and all(math.isfinite(x) for x in c.actions)
            assert c.header.stamp.sec == 1 and c.control_mode == 1 and c.inference_latency > 0
            assert list(c.action_names) == list(policy.config.action_names)

            bad_image = observation(policy, 4)
            bad_image.images[0].encoding = "mono16"
            short = observation(policy, 5)
            short.images[1].data = bytes(short.images[1].data[:-3])
            bads = [
                observation(policy, 2, camera_names=["top", "nope"]),  # missing camera
                observation(policy, 3, state=[float("nan")] + [0.0] * 14),  # NaN state
                bad_image,
                short,
                observation(policy, 6, instruction="举手"),  # not representable
                observation(policy, 7, instruction=""),
                observation(policy, 8, robot="xtrainer"),
            ]
            for i, m in enumerate(bads):
                pub.publish(m)
                wait_for(lambda i=i: node.stats["refused_inputs"] == i + 1, 10, f"refusal {i}")
            pub.publish(observation(policy, 9))
            wait_for(lambda: len(chunks) == 2, 20, "chunk after the bad ones")
            assert [c.observation_sequence for c in chunks] == [1, 9]
            wait_for(
                lambda: any(kv.key == "refused_inputs" and kv.value == "7" for d in diags for kv in d.status[0].values),
                5,
                "diagnostics reporting 7 refusals",
            )
            assert diags[-1].status[0].level == DiagnosticStatus.WARN
    finally:
        node.destroy_node()
        probe.destroy_node()


def test_policy_node_on_request_infers_once_per_request_from_the_newest_observation(ctx):
    policy = build_tiny_policy("tora_one", "raise_hand", seed=0)
    node = PolicyNode(policy=policy, context=ctx, parameter_overrides=[Parameter("infer_on", value="request")])
    probe = node.__class__.__mro__[1]("probe", context=ctx)
    chunks = []
    probe.create_subscription(ActionChunk, topics.ACTION_CHUNK, chunks.append, topics.qos(topics.ACTION_CHUNK))
    pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, depth=10))
    ask = probe.create_publisher(Header, topics.CHUNK_REQUEST, topics.qos(topics.CHUNK_REQUEST))

    def newest_is(seq):
        with node._cv:
            return node._pending_obs is not None and node._pending_obs.sequence == seq

    try:
        with spinning([node, probe], context=ctx):
            wait_for_subscribers(pub)
            wait_for_subscribers(ask)
            for seq in (1, 2, 3):
                pub.publish(observation(policy, seq))
                wait_for(lambda seq=seq: newest_is(seq), 10, f"observation {seq} received")
            assert node.stats["chunks"] == 0  # observations alone: no inference
            ask.publish(Header())
            wait_for(lambda: len(chunks) == 1, 20, "the chunk asked for")
            assert chunks[0].observation_sequence == 3  # the newest
            ask.publish(Header())  # the newest was used: this one waits for the next observation
            wait_for(lambda: node.stats["requests"] == 2, 10, "second request received")
            assert node.stats["chunks"] == 1
            pub.publish(observation(policy, 4))
            wait_for(lambda: len(chunks) == 2, 20, "the chunk from the next observation")
            assert chunks[1].observation_sequence == 4 and node.stats["chunks"] == 2
            # A request stamped 10 s: the arbiter takes no chunk from an older observation (the scene was reset).
            ask.publish(Header(stamp=time_msg(10 * NS)))
            wait_for(lambda: node.stats["requests"] == 3, 10, "third request received")
            pub.publish(observation(policy, 5))
            wait_for(lambda: newest_is(5), 10, "observation 5 received")
            assert node.stats["chunks"] == 2
            pub.publish(observation(policy, 11))
            wait_for(lambda: len(chunks) == 3, 20, "the chunk from the first observation after the stamp")
            assert chunks[2].observation_sequence == 11
    finally:
        node.destroy_node()
        probe.destroy_node()


def test_policy_node_weight_swap(ctx, tmp_path):
    policy = build_tiny_policy("tora_one", "raise_hand", seed=0)
    new = build_tiny_policy("tora_one", "raise_hand", seed=7)
    node = PolicyNode(policy=policy, context=ctx)
    probe = node.__class__.__mro__[1]("probe", context=ctx)
    chunks = []
    probe.create_subscription(ActionChunk, topics.ACTION_CHUNK, chunks.append, topics.qos(topics.ACTION_CHUNK))
    obs_pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, depth=10))
    up_pub = probe.create_publisher(PolicyUpdate, topics.POLICY_UPDATE, topics.qos(topics.POLICY_UPDATE))
    w_pub = probe.create_publisher(PolicyWeights, topics.POLICY_WEIGHTS, topics.qos(topics.POLICY_WEIGHTS))
    old = policy.to_safetensors_bytes()
    good = new.to_safetensors_bytes()

    def send(blob, version, tamper_sha=False, path="", chunks_too=True):
        update, parts = weight_messages(blob, version, 10 * version, path=path, chunk_size=64 * 1024)
        if tamper_sha:
            update.sha256 = "0" * 64
            for p in parts:
                p.sha256 = "0" * 64
        up_pub.publish(update)
        for p in parts if chunks_too else []:
            w_pub.publish(p)

    try:
        with spinning([node, probe], context=ctx):
            wait_for_subscribers(w_pub)
            wait_for_subscribers(up_pub)
            send(good, 1, tamper_sha=True)
            wait_for(lambda: node.stats["weight_refusals"] == 1, 10, "bad sha256 refused")
            from safetensors.torch import load, save

            sd = load(good)
            sd["action_out_proj.weight"] = sd["action_out_proj.weight"][:, :10].contiguous()
            send(save(sd), 2)
            wait_for(lambda: node.stats["weight_refusals"] == 2, 10, "wrong shapes refused")
            assert node.version == 0 and policy.to_safetensors_bytes() == old

            send(good, 3)
            wait_for(lambda: node.version == 3, 20, "version 3 swapped in")
            assert policy.to_safetensors_bytes() == good
            obs_pub.publish(observation(policy, 1))
            wait_for(lambda: len(chunks) == 1, 20, "chunk from version 3")
            assert chunks[0].policy_version == 3

            send(old, 2)  # older than current: refused, weights kept
            wait_for(lambda: node.stats["stale_versions"] >= 1, 10, "stale version refused")
            assert node.version == 3 and policy.to_safetensors_bytes() == good

            path = write_atomic(tmp_path / "policy-v4.safetensors", old)
            send(old, 4, path=str(path), chunks_too=False)  # local-file fast path, no chunks sent
            wait_for(lambda: node.version == 4, 20, "version 4 from the local file")
            assert policy.to_safetensors_bytes() == old
            assert node.stats["weight_updates"] == 2
            assert node.weight_timing["load_s"] > 0 and node.weight_timing["swap_wait_s"] >= 0
            assert node.weight_timing["swap_s"] > 0
            wait_for(lambda: not node._reaper.is_alive(), 10, "the replaced weights freed by their own thread")
            # the weight thread yields the CPU to inference (weights_loader_nice, default 10)
            own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            assert os.getpriority(os.PRIO_PROCESS, node._loader.native_id) == min(19, own + 10)
    finally:
        node.destroy_node()
        probe.destroy_node()


def test_capture_aligns_and_drops_stale(ctx):
    node = CaptureNode(
        context=ctx,
        parameter_overrides=[Parameter("rate_hz", value=100.0), Parameter("max_skew", value=0.05)],
    )
    probe = node.__class__.__mro__[1]("probe", context=ctx)
    got = []
    probe.create_subscription(Observation, topics.OBSERVATION, got.append, topics.qos(topics.OBSERVATION, depth=10))
    cams = {
        c: probe.create_publisher(
            type(image_msg(np.zeros((2, 2, 3), np.uint8))), topics.CAMERA.format(name=c), topics.qos(topics.CAMERA)
        )
        for c in ("top", "left_wrist")
    }
    pose_pub = probe.create_publisher(PoseStamped, topics.EE_POSE.format(arm="left"), topics.qos(topics.EE_POSE))
    js_pub = probe.create_publisher(JointState, topics.JOINT_STATES, topics.qos(topics.JOINT_STATES))
    names = [f"left_joint{i}" for i in range(1, 8)] + [f"right_joint{i}" for i in range(1, 8)]
    names += ["left_gripper", "right_gripper"]

    def send_sensors(t_ns, value):
        for c, p in cams.items():
            p.publish(image_msg(np.full((24, 32, 3), value, np.uint8), t_ns, c))
        pose = PoseStamped()
        pose.header.stamp = time_msg(t_ns)
        pose.pose.position.x, pose.pose.orientation.w = 0.3, 1.0
        pose_pub.publish(pose)
        wait_for(
            lambda: (
                all(n.header.stamp == time_msg(t_ns) for n in [*node.images.values(), *node.poses.values()])
                and len(node.images) == 2
                and len(node.poses) == 1
            ),
            10,
            "sensors received",
        )

    def send_joints(t_ns):
        js = JointState(name=names, position=[0.01 * i for i in range(len(names))])
        js.header.stamp = time_msg(t_ns)
        js_pub.publish(js)

    try:
        with spinning([node, probe], context=ctx):
            for p in [*cams.values(), pose_pub, js_pub]:
                wait_for_subscribers(p)
            send_sensors(10 * NS, 100)
            send_joints(10 * NS + 10_000_000)  # 10 ms skew: fine
            wait_for(lambda: len(got) == 1, 10, "first observation")
            o = got[0]
            assert list(o.state_names) == list(node.state_names) and len(o.state) == 15
            assert o.state[0] == pytest.approx(0.0) and o.state[7] == pytest.approx(0.14)  # left_gripper
            assert o.state[8] == pytest.approx(0.3) and o.state[14] == pytest.approx(1.0)
            assert list(o.camera_names) == ["top", "left_wrist"] and o.sequence == 0 and o.dropped_stale == 0
            assert o.header.stamp == time_msg(10 * NS + 10_000_000)

            send_joints(11 * NS)  # images are 1 s old: dropped, never paired
            wait_for(lambda: node.dropped_stale == 1, 10, "stale bundle dropped")
            send_sensors(12 * NS, 50)
            send_joints(12 * NS)
            wait_for(lambda: len(got) == 2, 10, "second observation")
            assert got[1].dropped_stale == 1 and got[1].sequence == 1 and got[1].images[0].data[0] == 50
            assert len(got) == 2
    finally:
        node.destroy_node()
        probe.destroy_node()


def test_goal_from_task_state_reads_the_goal_and_its_stamp():
    import json

    from hiors_policy.capture_node import goal_from_task_state

    stamp, goal = goal_from_task_state(json.dumps({"sim_time": 2.5, "goal": {"goal_x": 0.3, "goal_qw": 1}}))
    assert stamp == 2_500_000_000 and goal == {"goal_x": 0.3, "goal_qw": 1.0}
    for bad in ("{}", json.dumps({"sim_time": 1.0}), json.dumps({"goal": {}}), "not json"):
        with pytest.raises(ValueError, match="goal and sim_time"):
            goal_from_task_state(bad)


def test_capture_goal_state_adds_the_twins_goal_aligned_in_time(ctx):
    """With goal_state the state ends with the task's goal entries, from the sim's task state: no Observation
    before one arrives, none with a task state from another instant (the previous scene's goal)."""
    import json

    from std_msgs.msg import String

    from hiors_core.tasks import get_task
    from hiors_policy.layout import state_layout

    goal_names = get_task("raise_hand", "tora_one").goal_names
    node = CaptureNode(
        context=ctx,
        parameter_overrides=[
            Parameter("rate_hz", value=100.0),
            Parameter("max_skew", value=0.05),
            Parameter("goal_state", value=True),
        ],
    )
    assert node.state_names == state_layout("tora_one", "raise_hand", goal=True)
    assert node.state_names[-len(goal_names) :] == goal_names
    probe = node.__class__.__mro__[1]("probe", context=ctx)
    got = []
    probe.create_subscription(Observation, topics.OBSERVATION, got.append, topics.qos(topics.OBSERVATION, depth=10))
    cams = {
        c: probe.create_publisher(
            type(image_msg(np.zeros((2, 2, 3), np.uint8))), topics.CAMERA.format(name=c), topics.qos(topics.CAMERA)
        )
        for c in ("top", "left_wrist")
    }
    pose_pub = probe.create_publisher(PoseStamped, topics.EE_POSE.format(arm="left"), topics.qos(topics.EE_POSE))
    js_pub = probe.create_publisher(JointState, topics.JOINT_STATES, topics.qos(topics.JOINT_STATES))
    state_pub = probe.create_publisher(String, topics.SIM_TASK_STATE, topics.qos(topics.SIM_TASK_STATE))
    names = [f"left_joint{i}" for i in range(1, 8)] + [f"right_joint{i}" for i in range(1, 8)]
    names += ["left_gripper", "right_gripper"]

    def send(t_ns, goal_t_ns=None, goal_x=0.5):
        for c, p in cams.items():
            p.publish(image_msg(np.full((24, 32, 3), 7, np.uint8), t_ns, c))
        pose = PoseStamped()
        pose.header.stamp = time_msg(t_ns)
        pose.pose.orientation.w = 1.0
        pose_pub.publish(pose)
        if goal_t_ns is not None:
            goal = {n: 0.01 * i for i, n in enumerate(goal_names)} | {"goal_x": goal_x}
            state_pub.publish(String(data=json.dumps({"sim_time": goal_t_ns / NS, "goal": goal})))
        wait_for(
            lambda: (
                len(node.images) == 2
                and all(m.header.stamp == time_msg(t_ns) for m in [*node.images.values(), *node.poses.values()])
                and (goal_t_ns is None or node.task_state is not None and f"{goal_t_ns / NS}" in node.task_state.data)
            ),
            10,
            "inputs received",
        )
        js = JointState(name=names, position=[0.01 * i for i in range(len(names))])
        js.header.stamp = time_msg(t_ns)
        js_pub.publish(js)

    try:
        with spinning([node, probe], context=ctx):
            for p in [*cams.values(), pose_pub, js_pub, state_pub]:
                wait_for_subscribers(p)
            send(10 * NS)  # no task state yet: nothing built
            wait_for(lambda: node.missing > 0 and node.last_joint_ns < 0, 10, "observation held back")
            send(11 * NS, goal_t_ns=11 * NS - 20_000_000, goal_x=0.42)  # 20 ms apart: aligned
            wait_for(lambda: len(got) == 1, 10, "observation with the goal")
            o = got[0]
            assert list(o.state_names) == list(node.state_names) and len(o.state) == len(node.state_names)
            goal = dict(zip(o.state_names[-len(goal_names) :], o.state[-len(goal_names) :], strict=True))
            assert goal["goal_x"] == pytest.approx(0.42)
            assert goal["goal_qw"] == pytest.approx(0.01 * goal_names.index("goal_qw"))
            send(12 * NS, goal_t_ns=11 * NS)  # the task state is 1 s older than the joints: dropped
            wait_for(lambda: node.dropped_stale == 1, 10, "stale goal dropped")
            assert len(got) == 1
    finally:
        node.destroy_node()
        probe.destroy_node()


def test_policy_node_refuses_actions_beyond_float32_and_fills_each_chunk_afresh(ctx):
    """Chunks go out as float32: a value finite as float64 but beyond float32's range (it would arrive as inf) is
    refused like a NaN. The chunks after it carry their own sequence and values and the policy's fixed fields."""
    policy = build_tiny_policy("tora_one", "raise_hand", seed=0)
    real, returned = policy.infer, []

    def infer(obs):
        a = real(obs).astype(np.float64)
        if not returned:
            a[0, 0] = 1e39
        returned.append(a)
        return a

    policy.infer = infer
    node = PolicyNode(policy=policy, context=ctx)
    probe = node.__class__.__mro__[1]("probe", context=ctx)  # a plain rclpy Node
    chunks = []
    probe.create_subscription(ActionChunk, topics.ACTION_CHUNK, chunks.append, topics.qos(topics.ACTION_CHUNK))
    pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, depth=10))
    try:
        with spinning([node, probe], context=ctx):
            wait_for_subscribers(pub)
            wait_for_subscribers(node.chunk_pub)
            pub.publish(observation(policy, 1))
            wait_for(lambda: node.stats["refused_inputs"] == 1, 20, "the chunk beyond float32 refused")
            for seq in (2, 3):
                pub.publish(observation(policy, seq))
                wait_for(lambda seq=seq: len(chunks) == seq - 1, 20, f"chunk for observation {seq}")
            assert [c.observation_sequence for c in chunks] == [2, 3]
            for c, a in zip(chunks, returned[1:], strict=True):
                assert (c.horizon, c.action_dim, c.control_mode) == (16, 8, 1)
                assert list(c.action_names) == list(policy.config.action_names)
                np.testing.assert_array_equal(np.asarray(c.actions, np.float32).reshape(16, 8), a.astype(np.float32))
    finally:
        node.destroy_node()
        probe.destroy_node()


def test_replaced_weights_are_freed_and_counted():
    import torch

    from hiors_policy.policy_node import free_gradually

    old = {"a": torch.zeros(10, dtype=torch.float32), "b": torch.zeros(3, dtype=torch.bfloat16)}
    assert free_gradually(old, yield_bytes=8) == 46 and old == {}
