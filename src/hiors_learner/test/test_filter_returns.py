"""The episode filter's return: computed from an Episode message's label, length and authority flags."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hiors_core" / "test"))
from episode_factory import make_episode

from hiors_core.episode_msg import episode_to_msg
from hiors_core.errors import ConfigError
from hiors_core.returns import ReturnConfig
from hiors_learner.filter_node import return_of


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
def test_filter_node_judges_and_hands_on_the_graded_return():
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from hiors_core import topics
    from hiors_core.ros_testing import ros_context, spinning, wait_for, wait_for_subscribers
    from hiors_learner.filter_node import EpisodeFilterNode
    from hiors_msgs.msg import Episode, EpisodeVerdict

    def ep(i, reward, human):
        return episode_to_msg(
            make_episode(f"ep-{i}", steps=150, human=human, sample_every=10, reward=reward, image=8), 4
        )

    with ros_context() as ctx:
        filt = EpisodeFilterNode(
            context=ctx,
            parameter_overrides=[Parameter("threshold_initial", value=0.7), Parameter("follow_learner", value=False)],
        )
        probe = Node("probe", context=ctx)
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
                pub.publish(ep(0, 1.0, ()))  # 6 s, autonomous: R = 0.85
                pub.publish(ep(1, 1.0, range(0, 120)))  # 6 s, the human drove 80%: R = 0.65 < m = 0.7
                wait_for(lambda: len(verdicts) == 2 and len(accepted) == 1, 20, "2 verdicts, 1 accepted")
        finally:
            for n in (filt, probe):
                n.destroy_node()
    assert verdicts["ep-0"].accepted and verdicts["ep-0"].episode_return == pytest.approx(0.85)
    assert accepted["ep-0"].episode_return == pytest.approx(0.85)  # the learner's buffer judges the same R
    assert verdicts["ep-1"].reason == "return_below_threshold" and verdicts["ep-1"].episode_return == pytest.approx(
        0.65
    )
