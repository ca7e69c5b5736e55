"""Weights from the real learner node to the real policy node (tiny pi0 on both sides), over the topics only (no
shared-disk fast path): PolicyUpdate + PolicyWeights chunks are verified (sha256, keys, shapes) and swapped in
between chunks; the actor's chunks then carry the new version and its weights are the learner's, bit for bit.
A policy node that starts after the learner published gets the current version from the publisher's history."""

import numpy as np
import pytest
import torch
from rclpy.node import Node
from rclpy.parameter import Parameter

from hiors_core import topics
from hiors_core.convert_ros import observation_msg
from hiors_core.episode_msg import episode_to_msg
from hiors_core.schema import AUTHORITY_POLICY, EpisodeData, EpisodeMeta, Executed, Frame, Label
from hiors_core.weight_sync import sha256_hex
from hiors_learner.learner_node import LearnerNode
from hiors_msgs.msg import ActionChunk, Episode, Observation
from hiors_policy import build_tiny_policy
from hiors_policy.policy_node import PolicyNode
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_publishers, wait_for_subscribers

pytestmark = pytest.mark.node
ROBOT, TASK = "tora_one", "raise_hand"
WAIT = 30.0


def frame(policy, seq: int) -> Frame:
    rng = np.random.default_rng(seq)
    cfg = policy.config
    return Frame(
        step=seq,
        stamp_ns=1_000_000_000 + seq * 40_000_000,
        images={c: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for c in cfg.camera_names},
        state=rng.normal(scale=0.1, size=cfg.state_dim).astype(np.float32),
        state_names=cfg.state_names,
        instruction=cfg.instruction,
        sequence=seq,
    )


def accepted_episode(policy, steps: int = 8) -> Episode:
    """A successful episode in the tiny policy's layout, every step a sample (what episode_filter hands over)."""
    cfg = policy.config
    meta = EpisodeMeta(
        episode_id="ep-000001",
        robot=ROBOT,
        task=TASK,
        instruction=cfg.instruction,
        control_mode=cfg.control_mode,
        action_names=cfg.action_names,
        state_names=cfg.state_names,
        camera_names=cfg.camera_names,
    )
    rng = np.random.default_rng(1)
    frames = [frame(policy, t) for t in range(steps)]
    executed = [
        Executed(
            step=t,
            stamp_ns=f.stamp_ns + 1_000_000,
            action=rng.normal(size=cfg.action_dim).astype(np.float32),
            authority=AUTHORITY_POLICY,
            source="policy",
            is_sample=True,
        )
        for t, f in enumerate(frames)
    ]
    ep = EpisodeData(meta, frames, executed, Label(reward=1.0, success=True, source="oracle", stamp_ns=2))
    return episode_to_msg(ep, policy.horizon)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP threads fighting other processes slow torch ~100x."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_learner_weights_reach_live_and_late_policy_nodes(tmp_path):
    with ros_context() as ctx:
        actor_a = PolicyNode(
            policy=build_tiny_policy(ROBOT, TASK, seed=0),
            context=ctx,
            parameter_overrides=[Parameter("use_local_weights", value=False)],
        )
        initial_a = actor_a.policy.to_safetensors_bytes()
        probe = Node("weights_probe", context=ctx)
        chunks: list[ActionChunk] = []
        chunk_sub = probe.create_subscription(
            ActionChunk, topics.ACTION_CHUNK, chunks.append, topics.qos(topics.ACTION_CHUNK)
        )
        obs_pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION))
        ep_pub = probe.create_publisher(Episode, topics.EPISODE_ACCEPTED, topics.qos(topics.EPISODE_ACCEPTED))
        learner = LearnerNode(
            context=ctx,
            parameter_overrides=[
                Parameter("run_dir", value=str(tmp_path / "run")),
                Parameter("robot", value=ROBOT),
                Parameter("task", value=TASK),
                Parameter("seed", value=7),  # other initial weights than the actor's (seed 0)
                Parameter("batch_size", value=4),
                Parameter("utd_target", value=1.0),
                Parameter("utd_cap", value=1.0),
                Parameter("publish_every", value=2),
                Parameter("max_steps", value=2),
                Parameter("checkpoint_every", value=0),
                Parameter("local_weights", value=False),  # PolicyUpdate.path = "": the chunks carry the weights
                Parameter("chunk_bytes", value=256 * 1024),
                Parameter("lr", value=1e-3),
                Parameter("warmup_steps", value=0),
                Parameter("status_period", value=0.2),
            ],
        )
        actor_b = None
        seq = iter(range(1, 1000))

        def chunk_from(actor, policy):
            """Send one observation; return the chunk the actor answers it with."""
            s = next(seq)
            obs_pub.publish(observation_msg(frame(policy, s), ROBOT, TASK))
            wait_for(lambda: any(c.observation_sequence == s for c in chunks), WAIT, f"chunk for observation {s}")
            return next(c for c in chunks if c.observation_sequence == s)

        try:
            with spinning([actor_a, learner, probe], context=ctx):
                # Version 1: the learner's initial weights, announced as soon as it starts.
                wait_for(lambda: actor_a.version == 1, WAIT, "actor A to swap in version 1")
                v1 = learner.engine.weights_blob()
                assert v1 != initial_a
                assert actor_a.policy.to_safetensors_bytes() == v1
                wait_for_subscribers(obs_pub)
                wait_for_publishers(chunk_sub)
                assert chunk_from(actor_a, actor_a.policy).policy_version == 1

                # Version 2: after two training steps on an accepted episode.
                wait_for_subscribers(ep_pub)
                ep_pub.publish(accepted_episode(actor_a.policy))
                wait_for(lambda: learner.learner.policy_version == 2, WAIT, "learner to publish version 2")
                wait_for(lambda: actor_a.version == 2, WAIT, "actor A to swap in version 2")
                assert learner.engine.step == 2
                v2 = learner.engine.weights_blob()
                assert v2 != v1
                got = actor_a.policy.to_safetensors_bytes()
                assert sha256_hex(got) == sha256_hex(v2) and got == v2
                assert chunk_from(actor_a, actor_a.policy).policy_version == 2
                assert actor_a.stats["weight_updates"] == 2 and actor_a.stats["weight_refusals"] == 0
            actor_a.destroy_node()
            actor_a = None

            # A policy node that starts now, after both versions were published, gets version 2 from the
            # learner's history (and only version 2: the history holds one version's chunks).
            actor_b = PolicyNode(
                policy=build_tiny_policy(ROBOT, TASK, seed=0),
                context=ctx,
                parameter_overrides=[Parameter("use_local_weights", value=False)],
            )
            assert actor_b.version == 0
            with spinning([actor_b, learner, probe], context=ctx):
                wait_for(lambda: actor_b.version == 2, WAIT, "late actor B to get the current version 2")
                assert actor_b.policy.to_safetensors_bytes() == v2
                assert actor_b.stats["weight_updates"] == 1 and actor_b.stats["weight_refusals"] == 0
                wait_for_subscribers(obs_pub)
                assert chunk_from(actor_b, actor_b.policy).policy_version == 2
        finally:
            learner.shutdown()
            for n in (actor_a, actor_b, learner, probe):
                if n is not None:
                    n.destroy_node()
