"""The episode filter's return: computed from an Episode message's label, length and authority flags."""

import pytest

from hiors_core.episode_msg import episode_to_msg
from hiors_core.errors import ConfigError
from hiors_core.filters import FilterConfig
from hiors_core.returns import ReturnConfig
from hiors_learner.filter_node import return_of
from hiors_testing.episodes import make_episode


def msg_of(reward=1.0, steps=150, human=range(50, 110)):
    return episode_to_msg(make_episode(steps=steps, human=human, sample_every=50, reward=reward, image=8), 4)


def test_return_of_an_episode_message():
    msg = msg_of()  # raise_hand (10 s limit, 25 Hz): 6 s, the human 60 of its 150 steps
    assert (msg.control_steps, msg.human_steps, msg.success) == (150, 60, True)
    graded = ReturnConfig()
    assert return_of(msg, 1.0, graded) == pytest.approx(1 - 0.25 * 0.6 - 0.25 * 0.4)
    assert return_of(msg, 1.0, graded, time_limit_s=20.0) == pytest.approx(1 - 0.25 * 0.3 - 0.25 * 0.4)
    assert return_of(msg, 1.0, ReturnConfig(mode="binary")) == 1.0
    assert return_of(msg_of(reward=0.0), 0.0, graded) == 0.0
    assert return_of(msg_of(reward=-1.0), -1.0, graded) == -1.0
    msg.task = "juggle"
    with pytest.raises(ConfigError, match="juggle"):
        return_of(msg, 1.0, graded)
    assert return_of(msg, 1.0, graded, time_limit_s=10.0) == pytest.approx(0.75)  # a task the twin does not know


@pytest.mark.timeout(60)
def test_filter_node_hands_every_screened_episode_on_and_reports_the_learners_m():
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from hiors_core import topics
    from hiors_learner.filter_node import EpisodeFilterNode
    from hiors_msgs.msg import Episode, EpisodeVerdict, LearnerStatus
    from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

    def ep(i, reward, human):
        return episode_to_msg(
            make_episode(f"ep-{i}", steps=150, human=human, sample_every=10, reward=reward, image=8), 4
        )

    with ros_context() as ctx:
        filt = EpisodeFilterNode(
            context=ctx,
            parameter_overrides=[Parameter("min_samples", value=3)],
        )
        probe = Node("probe", context=ctx)
        status = probe.create_publisher(LearnerStatus, topics.LEARNER_STATUS, topics.qos(topics.LEARNER_STATUS))
        verdicts, accepted = {}, {}
        probe.create_subscription(
            EpisodeVerdict,
            topics.EPISODE_VERDICT,
            lambda m: verdicts.__setitem__(m.episode_id, m),
            topics.qos(topics.EPISODE_VERDICT),
        )
        probe.create_subscription(
            Episode,
            topics.EPISODE_ACCEPTED,
            lambda m: accepted.__setitem__(m.episode_id, m),
            topics.qos(topics.EPISODE_ACCEPTED),
        )
        pub = probe.create_publisher(Episode, topics.EPISODE, topics.qos(topics.EPISODE))
        try:
            with spinning([filt, probe], context=ctx):
                wait_for_subscribers(pub, 1)
                wait_for(lambda: filt.accepted_pub.get_subscription_count() >= 1, 10, "probe subscribed to accepted")
                status.publish(LearnerStatus(threshold=0.7))  # the learner announces its m
                wait_for(lambda: filt.learner_m == pytest.approx(0.7), 10, "the learner's m at the filter")
                pub.publish(ep(0, 1.0, ()))  # 6 s, autonomous: R = 0.85
                pub.publish(ep(1, 1.0, range(0, 120)))  # 6 s, the human drove 80%: R = 0.65 < m = 0.7
                wait_for(lambda: len(verdicts) == 2 and len(accepted) == 2, 20, "2 verdicts, 2 handed on")
        finally:
            for n in (filt, probe):
                n.destroy_node()
    assert verdicts["ep-0"].accepted and verdicts["ep-0"].episode_return == pytest.approx(0.85)
    assert accepted["ep-0"].episode_return == pytest.approx(0.85)  # the learner judges the same R
    # below the learner's m: reported as its rejection, and handed on all the same (the learner decides)
    assert verdicts["ep-1"].reason == "return_below_threshold" and verdicts["ep-1"].episode_return == pytest.approx(
        0.65
    )
    assert accepted["ep-1"].episode_return == pytest.approx(0.65)
    assert all(v.threshold == pytest.approx(0.7) for v in verdicts.values())


def test_filter_verdicts_wait_for_the_learners_m_and_report_its_rule():
    """Without a LearnerStatus the filter cannot report the learner's verdict: the episode stays unacknowledged
    (the recorder re-sends it). Its own checks never need m; below the learner's m is the learner's rejection."""
    from rclpy.parameter import Parameter

    from hiors_learner.filter_node import EpisodeFilterNode, report, screen
    from hiors_msgs.msg import LearnerStatus
    from hiors_testing.ros import ros_context

    msg = episode_to_msg(make_episode("ep-0", steps=150, human=(), sample_every=10, reward=1.0, image=8), 4)
    with ros_context() as ctx:
        filt = EpisodeFilterNode(context=ctx, parameter_overrides=[Parameter("min_samples", value=3)])
        sent, handed = [], []
        filt.verdict_pub.publish, filt.accepted_pub.publish = sent.append, handed.append
        try:
            filt.on_episode(msg)
            assert sent == [] and handed == []  # no m announced yet: no verdict
            filt.on_status(LearnerStatus(threshold=0.9))
            filt.on_episode(msg)
        finally:
            filt.destroy_node()
    assert [(v.accepted, v.reason, round(v.threshold, 3)) for v in sent] == [(False, "return_below_threshold", 0.9)]
    assert len(handed) == 1 and handed[0].episode_return == pytest.approx(0.85)
    from hiors_core.labelling import training_samples
    from hiors_core.robots import MODE_JOINT

    samples = training_samples(make_episode("ep-1", steps=20, human=(), sample_every=10, reward=1.0), 4)
    short = screen(samples, 1.0, MODE_JOINT, FilterConfig(min_samples=3, noop_enabled=False))
    assert report(short, 0.0) == (False, "too_short")  # the filter's own reason, whatever m
    ok = screen(samples * 2, 0.6, MODE_JOINT, FilterConfig(min_samples=3, noop_enabled=False))
    assert report(ok, 0.5) == (True, "accepted") and report(ok, 0.7) == (False, "return_below_threshold")
