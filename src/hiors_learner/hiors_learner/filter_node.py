"""episode_filter: one verdict for every episode; accepted episodes (no-op samples removed) go to the learner.

It follows the learner's m from LearnerStatus (m only rises) and uses its own schedule, stepped per episode,
while no learner is heard. It never deletes anything: rejected episodes stay in the log of record.

It computes each episode's return R from its label (binary on a real robot: the operator's buttons), its length and
its authority flags (`hiors_core.returns`: graded by default, so that a rising m keeps ever better episodes; binary
as an option) and hands accepted episodes on with that R, so the learner's buffer applies its m to the same R.
"""

from __future__ import annotations

import functools
import math

from rclpy.node import Node

from hiors_core import topics
from hiors_core.episode_msg import samples_from_msg
from hiors_core.errors import ConfigError, HiorsError
from hiors_core.filters import filter_episode
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.rejection import ThresholdSchedule
from hiors_core.returns import ReturnConfig, episode_return
from hiors_core.robots import get_robot
from hiors_msgs.msg import Episode, EpisodeVerdict, LearnerStatus

from .params import EPISODE_FILTER, filter_config, threshold_config


@functools.cache
def task_time_limit_s(task: str) -> float:
    """The task's time limit (s), from its scene definition (`hiors_sim.tasks`, imported only when needed)."""
    from hiors_sim.tasks import make_task

    return float(make_task(task).time_limit)


def return_of(msg, label_return: float, config: ReturnConfig, time_limit_s: float = 0.0) -> float:
    """R of a hiors_msgs/Episode whose label says `label_return` (NaN: unlabelled); `time_limit_s` 0 = the task's
    own. Raises ConfigError (a HiorsError: the verdict names it) when a graded success's robot or task is unknown."""
    rate = limit = 0.0
    if config.mode == "graded" and msg.success and math.isfinite(label_return):
        try:
            rate = get_robot(msg.robot).control_rate_hz
            limit = time_limit_s if time_limit_s > 0 else task_time_limit_s(msg.task)
        except KeyError as e:  # unknown robot or task
            raise ConfigError(f"graded return: {e.args[0] if e.args else e}; or set return_time_limit_s") from None
    return episode_return(
        label_return, bool(msg.success), int(msg.control_steps), int(msg.human_steps), rate, limit, config
    )


class EpisodeFilterNode(Node):
    def __init__(self, **kwargs):
        super().__init__("episode_filter", **kwargs)
        p = declare(self, EPISODE_FILTER)
        self.returns = ReturnConfig(
            mode=str(p["return_mode"]),
            length_weight=float(p["return_length_weight"]),
            human_weight=float(p["return_human_weight"]),
        )
        self.time_limit_s = float(p["return_time_limit_s"])
        self.follow_learner = bool(p["follow_learner"])
        self.filters = filter_config(p)
        self.schedule = ThresholdSchedule(threshold_config(p))
        self.learner_heard = False
        self.count = 0
        self.accepted_pub = self.create_publisher(Episode, topics.EPISODE_ACCEPTED, topics.qos(topics.EPISODE_ACCEPTED))
        self.verdict_pub = self.create_publisher(
            EpisodeVerdict, topics.EPISODE_VERDICT, topics.qos(topics.EPISODE_VERDICT)
        )
        self.create_subscription(Episode, topics.EPISODE, self.on_episode, topics.qos(topics.EPISODE))
        self.create_subscription(
            LearnerStatus, topics.LEARNER_STATUS, self.on_status, topics.qos(topics.LEARNER_STATUS)
        )

    def on_status(self, msg: LearnerStatus) -> None:
        if self.follow_learner:
            self.learner_heard = True
            self.schedule.raise_to(float(msg.threshold))

    @property
    def m(self) -> float:
        return self.schedule.current if self.learner_heard else self.schedule.value(self.count)

    def on_episode(self, msg: Episode) -> None:
        m = self.m
        verdict = EpisodeVerdict(episode_id=msg.episode_id, episode_return=float(msg.episode_return), threshold=m)
        verdict.header.stamp = self.get_clock().now().to_msg()
        verdict.samples_in = len(msg.samples)
        try:
            if not msg.episode_id:
                raise HiorsError("empty episode id")
            modes = {int(s.control_mode) for s in msg.samples}
            if len(modes) > 1:
                raise HiorsError(f"episode {msg.episode_id}: mixed control modes {sorted(modes)}")
            samples = samples_from_msg(msg)
            label = float(msg.episode_return) if msg.label_source else float("nan")  # no label source: unlabelled
            ret = return_of(msg, label, self.returns, self.time_limit_s)
            verdict.episode_return = ret
            res = filter_episode(samples, ret, m, modes.pop() if modes else 0, self.filters)
        except (HiorsError, ValueError) as e:
            verdict.accepted = False
            verdict.reason = f"malformed: {e}"
            self.get_logger().warning(f"episode {msg.episode_id!r}: {verdict.reason}")
            self.verdict_pub.publish(verdict)
            return
        self.count += 1
        self.schedule.observe(ret, res.accepted)
        verdict.accepted = res.accepted
        verdict.reason = res.reason
        verdict.samples_kept = res.samples_kept
        verdict.samples_noop = res.samples_noop
        if res.accepted:
            out = Episode(**{f: getattr(msg, f) for f in Episode.get_fields_and_field_types() if f != "samples"})
            out.episode_return = ret  # the learner's buffer re-applies a rising m to this R
            out.samples = [s for s, keep in zip(msg.samples, res.kept_mask, strict=True) if keep]
            self.accepted_pub.publish(out)
        self.verdict_pub.publish(verdict)
        self.get_logger().info(
            f"episode {msg.episode_id}: {res.reason} (R={ret:.3f}, m={m:.3f}, kept {res.samples_kept}/{res.samples_in}, "
            f"no-op {res.samples_noop})"
        )


def main(args=None):
    return run_node(EpisodeFilterNode, args, threads=1)
