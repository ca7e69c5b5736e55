"""episode_filter and learner nodes on a private ROS domain: verdicts for every episode, accepted episodes
train the learner, weights arrive chunked and verified at a subscriber, LearnerStatus is latched."""

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from hiors_core import topics
from hiors_core.episode_msg import episode_to_msg
from hiors_core.weight_sync import WeightReceiver
from hiors_learner.filter_node import EpisodeFilterNode
from hiors_learner.learner_node import LearnerNode
from hiors_msgs.msg import Episode, EpisodeVerdict, LearnerStatus, PolicyUpdate, PolicyWeights
from hiors_testing.episodes import make_episode
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_publishers, wait_for_subscribers

H = 4


def fake_factory(robot, task, seed):
    from hiors_testing.fake_policy import FakePolicy

    return FakePolicy(horizon=H, seed=seed)


def ep_msg(i, reward, still=None):
    ep = make_episode(episode_id=f"ep-{i:06d}", steps=10, human=(), sample_every=1, seed=i, reward=reward)
    if still is not None:  # the robot holds still over executed[a:b], then moves again
        a, b = still
        for e in ep.executed[a:b]:
            e.action = ep.executed[a].action.copy()
    return episode_to_msg(ep, H)


@pytest.mark.timeout(120)
def test_filter_and_learner_nodes(tmp_path):
    with ros_context() as ctx:
        filt = EpisodeFilterNode(
            context=ctx,
            parameter_overrides=[
                Parameter("noop_joint", value=0.01),
                Parameter("min_samples", value=3),
            ],
        )
        learner = LearnerNode(
            context=ctx,
            parameter_overrides=[
                Parameter("run_dir", value=str(tmp_path / "run")),
                Parameter("threshold_initial", value=0.5),  # the learner owns m
                Parameter("policy_factory", value="test_learner_nodes:fake_factory"),
                Parameter("horizon", value=H),
                Parameter("batch_size", value=4),
                Parameter("utd_target", value=0.25),  # a cap, so that the step count is known
                Parameter("publish_every", value=2),
                Parameter("checkpoint_every", value=100),
                Parameter("chunk_bytes", value=1024),
                Parameter("warmup_steps", value=0),
                Parameter("status_period", value=0.1),
            ],
        )
        probe = Node("probe", context=ctx)
        verdicts, statuses, updates = {}, [], []
        rx = WeightReceiver(use_local_path=False)
        got = []
        probe.create_subscription(
            EpisodeVerdict,
            topics.EPISODE_VERDICT,
            lambda m: verdicts.__setitem__(m.episode_id, m),
            topics.qos(topics.EPISODE_VERDICT),
        )
        probe.create_subscription(
            LearnerStatus, topics.LEARNER_STATUS, statuses.append, topics.qos(topics.LEARNER_STATUS)
        )
        probe.create_subscription(PolicyUpdate, topics.POLICY_UPDATE, updates.append, topics.qos(topics.POLICY_UPDATE))
        wsub = probe.create_subscription(
            PolicyWeights,
            topics.POLICY_WEIGHTS,
            lambda m: got.append(rx.on_chunk(m)),
            topics.qos(topics.POLICY_WEIGHTS),
        )
        pub = probe.create_publisher(Episode, topics.EPISODE, topics.qos(topics.EPISODE))
        try:
            with spinning([filt, learner, probe], context=ctx):
                wait_for_subscribers(pub, 1)
                wait_for_publishers(wsub, 1)
                wait_for(lambda: filt.accepted_pub.get_subscription_count() >= 1, 10, "learner subscribed to accepted")
                wait_for(lambda: filt.learner_m == 0.5, 30, "the learner's m announced to the filter")
                pub.publish(ep_msg(0, 1.0))
                pub.publish(ep_msg(1, 0.2))  # below m
                pub.publish(ep_msg(2, -1.0))  # negative: never trained on
                pub.publish(ep_msg(3, 1.0, still=(2, 9)))  # 4 no-op samples removed
                bad = ep_msg(4, 1.0)
                bad.samples[1].action_label = bad.samples[1].action_label[:-1]
                pub.publish(bad)
                wait_for(lambda: len(verdicts) == 5, 20, "5 verdicts")
                v = verdicts
                # the last sample's label is the held last command (padded chunk): the end hold, kept
                assert v["ep-000000"].accepted and v["ep-000000"].samples_kept == 10
                assert v["ep-000001"].reason == "return_below_threshold" and not v["ep-000001"].accepted
                assert v["ep-000002"].reason == "negative_return"
                assert v["ep-000003"].accepted and v["ep-000003"].samples_noop == 4 and v["ep-000003"].samples_kept == 6
                assert v["ep-000004"].reason.startswith("malformed:") and not v["ep-000004"].accepted
                # 16 samples received, at most 0.25 gradient steps per sample -> 4 steps; versions 1 (start),
                # 2 (step 2) and 3 (step 4)
                wait_for(
                    lambda: statuses and statuses[-1].step == 4 and statuses[-1].episodes_accepted == 2, 30, "4 steps"
                )
                wait_for(lambda: rx.latest_version >= 3, 20, "weights version 3 reassembled")
                s = statuses[-1]
                assert s.engine == "torch" and s.buffer_samples == 16 and np.isfinite(s.loss)
                assert s.utd_ratio == pytest.approx(4 / 16)  # gradient steps / samples received
                versions = [g[0] for g in got if g is not None]
                assert versions == sorted(set(versions)) and versions[-1] == 3
                assert updates[-1].version == 3 and updates[-1].num_chunks > 1
        finally:
            learner.shutdown()
        for n in (filt, learner, probe):
            n.destroy_node()
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 5
    # The learner's own record: it judged what the filter handed on (ep-1 too, below its m)
    verdicts = [r.split(",") for r in (tmp_path / "run" / "verdicts.csv").read_text().splitlines()[1:]]
    assert sorted((r[2], r[6]) for r in verdicts) == [
        ("ep-000000", "admitted"),
        ("ep-000001", "rejected"),
        ("ep-000003", "admitted"),
    ]
