"""episode_filter: R and the data checks for every episode; the learner, which owns m, decides.

It computes each episode's return R from its label (binary on a real robot: the operator's buttons), its length and
its authority flags (`hiors_core.returns`: graded by default, so that a rising m keeps ever better episodes; binary
as an option) and applies its own checks (`screen`: a label, L_min, no-op samples removed). Every episode that
passes them goes to the learner with that R (`episode_accepted`); the learner judges it at its m and its buffer
re-applies m as m rises (`hiors_learner.learner`, the one owner of m).

The verdict (one per episode, also the recorder's acknowledgement) is a report: the filter's own reason when its
checks drop an episode, else the learner's rule at the learner's m as last announced in LearnerStatus (`threshold`).
m only rises, so a reported rejection is final; a reported acceptance can still be overturned by a higher m (the
learner's run_dir/verdicts.csv records what it admitted and what left). Until the learner has announced its m an
episode gets no verdict: the recorder re-sends unacknowledged episodes. It never deletes anything: rejected
episodes stay in the log of record.
"""

from __future__ import annotations

import math

from rclpy.node import Node

from hiors_core import topics
from hiors_core.episode_msg import samples_from_msg
from hiors_core.errors import HiorsError
from hiors_core.filters import REASON_ACCEPTED, FilterConfig, FilterResult, filter_episode
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.returns import ReturnConfig
from hiors_core.schema import TrainingSample
from hiors_msgs.msg import Episode, EpisodeVerdict, LearnerStatus

from .learner import admission, return_from_label
from .params import EPISODE_FILTER, filter_config, return_config


def return_of(msg, label_return: float, config: ReturnConfig, time_limit_s: float = 0.0) -> float:
    """R of a hiors_msgs/Episode whose label says `label_return` (NaN: unlabelled); `time_limit_s` 0 = the task's
    own. Raises ConfigError (a HiorsError: the verdict names it) when a graded success's robot or task is unknown."""
    return return_from_label(
        label_return,
        bool(msg.success),
        msg.robot,
        msg.task,
        int(msg.control_steps),
        int(msg.human_steps),
        config,
        time_limit_s,
    )


def screen(samples: list[TrainingSample], episode_return: float, control_mode: int, filters: FilterConfig):
    """The filter's own checks, without m: a label (R finite and >= 0), L_min, and the no-op samples removed.
    An episode it accepts goes to the learner, whose m decides."""
    return filter_episode(samples, episode_return, -math.inf, control_mode, filters)


def report(screened: FilterResult, learner_m: float) -> tuple[bool, str]:
    """(accepted, reason) of the verdict: the filter's reason when its checks dropped the episode, else the
    learner's rule (`learner.admission`) at the learner's m."""
    if not screened.accepted:
        return False, screened.reason
    reason = admission(screened.episode_return, learner_m)
    return reason == REASON_ACCEPTED, reason


class EpisodeFilterNode(Node):
    def __init__(self, **kwargs):
        super().__init__("episode_filter", **kwargs)
        p = declare(self, EPISODE_FILTER)
        self.returns = return_config(p)
        self.time_limit_s = float(p["return_time_limit_s"])
        self.filters = filter_config(p)
        self.learner_m: float | None = None  # the learner's m as last announced (LearnerStatus)
        self.accepted_pub = self.create_publisher(Episode, topics.EPISODE_ACCEPTED, topics.qos(topics.EPISODE_ACCEPTED))
        self.verdict_pub = self.create_publisher(
            EpisodeVerdict, topics.EPISODE_VERDICT, topics.qos(topics.EPISODE_VERDICT)
        )
        self.create_subscription(Episode, topics.EPISODE, self.on_episode, topics.qos(topics.EPISODE))
        self.create_subscription(
            LearnerStatus, topics.LEARNER_STATUS, self.on_status, topics.qos(topics.LEARNER_STATUS)
        )

    def on_status(self, msg: LearnerStatus) -> None:
        self.learner_m = float(msg.threshold)

    def on_episode(self, msg: Episode) -> None:
        verdict = EpisodeVerdict(episode_id=msg.episode_id, episode_return=float(msg.episode_return))
        verdict.header.stamp = self.get_clock().now().to_msg()
        verdict.samples_in = len(msg.samples)
        verdict.threshold = math.nan if self.learner_m is None else self.learner_m
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
            res = screen(samples, ret, modes.pop() if modes else 0, self.filters)
        except (HiorsError, ValueError) as e:
            verdict.accepted = False
            verdict.reason = f"malformed: {e}"
            self.get_logger().warning(f"episode {msg.episode_id!r}: {verdict.reason}")
            self.verdict_pub.publish(verdict)
            return
        m = self.learner_m
        if m is None:
            self.get_logger().info(f"episode {msg.episode_id}: waiting for the learner's m (LearnerStatus)")
            return  # unacknowledged: the recorder sends it again
        verdict.accepted, verdict.reason = report(res, m)
        verdict.samples_kept = res.samples_kept
        verdict.samples_noop = res.samples_noop
        if res.accepted:
            out = Episode(**{f: getattr(msg, f) for f in Episode.get_fields_and_field_types() if f != "samples"})
            out.episode_return = ret  # the learner judges this R at its m, now and as m rises
            out.samples = [s for s, keep in zip(msg.samples, res.kept_mask, strict=True) if keep]
            self.accepted_pub.publish(out)
        self.verdict_pub.publish(verdict)
        self.get_logger().info(
            f"episode {msg.episode_id}: {verdict.reason} (R={ret:.3f}, learner's m={m:.3f}, "
            f"kept {res.samples_kept}/{res.samples_in}, no-op {res.samples_noop})"
        )


def main(args=None):
    return run_node(EpisodeFilterNode, args, threads=1)
