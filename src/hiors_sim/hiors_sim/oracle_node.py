"""`reward_oracle`: labels each episode from the privileged task state, publishing hiors_msgs/EpisodeLabel.

Episodes are delimited by the recorder's latched episode_status (the id being recorded): when it changes away from a non-empty
id, that episode is over and gets its label (source "oracle"): success only if it ended in the success state with no
terminal failure on the way. See `oracle.RewardOracle` for the rule.
"""

from __future__ import annotations

import json

from rclpy.node import Node
from std_msgs.msg import String

from hiors_core import topics
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_msgs.msg import EpisodeLabel

from .oracle import RewardOracle
from .params import REWARD_ORACLE


class RewardOracleNode(Node):
    def __init__(self, **kwargs):
        super().__init__("reward_oracle", **kwargs)
        p = declare(self, REWARD_ORACLE)
        self.oracle = RewardOracle(
            false_positive_rate=p["false_positive_rate"],
            graded=p["graded"],
            seed=p["seed"],
            end_grace_s=p["end_grace_s"],
        )
        self.episode_id = ""
        self.pub = self.create_publisher(EpisodeLabel, topics.EPISODE_LABEL, topics.qos(topics.EPISODE_LABEL))
        self.create_subscription(String, topics.EPISODE_STATUS, self._on_status, topics.qos(topics.EPISODE_STATUS))
        self.create_subscription(String, topics.SIM_TASK_STATE, self._on_state, topics.qos(topics.SIM_TASK_STATE))

    def _on_state(self, msg: String):
        if self.episode_id:
            self.oracle.observe(json.loads(msg.data))

    def _on_status(self, msg: String):
        if msg.data == self.episode_id:
            return
        if self.episode_id:
            self.publish_label(self.episode_id)
        self.episode_id = msg.data
        self.oracle.reset()

    def publish_label(self, episode_id: str) -> EpisodeLabel:
        failed = self.oracle.failed
        lab = self.oracle.label()
        out = EpisodeLabel(episode_id=episode_id, reward=lab.reward, success=lab.success, source="oracle")
        out.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(out)
        self.get_logger().info(
            f"episode {episode_id}: success={lab.success} reward={lab.reward:.2f}"
            + (f" ({failed})" if failed else "")
            + (" (injected false positive)" if lab.false_positive else "")
        )
        return out


def main(args=None):
    return run_node(RewardOracleNode, args, threads=1)


if __name__ == "__main__":
    main()
