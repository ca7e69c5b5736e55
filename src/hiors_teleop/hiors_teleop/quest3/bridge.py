"""`quest3_bridge`: the Quest 3 on the teleop topics, from the WebXR page and WebSocket (source webxr) or from
Quest2ROS-style topics (source topics). The adapter is `device.py`; what the bridges share, `hiors_teleop.bridge`."""

from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Joy

from hiors_core import topics
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.robots import get_robot

from ..bridge import TeleopBridge
from ..params import QUEST3
from .device import Quest3Topics, Quest3WebXR


class Quest3Bridge(TeleopBridge):
    def __init__(self, **kwargs):
        super().__init__("quest3", **kwargs)
        p = declare(self, QUEST3)  # types and ranges: hiors_teleop.params
        self.robot = get_robot(p["robot"])
        arm, source, hand, scale, max_age = p["arm"], p["source"], p["hand"], p["scale"], p["max_age_s"]
        self.pub_delta = self.create_publisher(
            PoseStamped, topics.TELEOP_EE_DELTA.format(arm=arm), topics.qos(topics.TELEOP_EE_DELTA)
        )
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, topics.qos(topics.TELEOP_JOY))
        self.pub_joint = None
        if source == "webxr":
            self.device = Quest3WebXR(
                host=p["host"],
                port=p["port"],
                token=p["token"],
                hand=hand,
                scale=scale,
                certfile=p["certfile"],
                keyfile=p["keyfile"],
                max_age_s=max_age,
            )
            self.device.connect()
            self.get_logger().info(f"open {self.device.url} in the Quest 3 browser")
        elif source == "topics":
            self.device = Quest3Topics(scale=scale, max_age_s=max_age)
            self.create_subscription(
                PoseStamped,
                p["pose_topic"] or f"q2r/{hand}_hand_pose",
                self.on_pose,
                topics.profile(topics.QOS_DEFAULT),
            )
            self.create_subscription(
                Joy,
                p["joy_topic"] or f"q2r/{hand}_hand_inputs",
                lambda m: self.device.feed_joy(m.buttons, m.axes),
                topics.profile(topics.QOS_DEFAULT),
            )
        else:
            raise ValueError(f"quest3 source must be 'webxr' or 'topics', got {source!r}")
        self._start(p["rate_hz"])

    def on_pose(self, m: PoseStamped) -> None:
        p, o = m.pose.position, m.pose.orientation
        self.device.feed_pose([p.x, p.y, p.z], [o.x, o.y, o.z, o.w])


def main(args=None):
    return run_node(Quest3Bridge, args)
