"""`leader_arm`: the leader arm on the teleop topics, from raw JointState readings (source topic) or Dynamixel
servos (source dynamixel), engaged by a pedal or always. The adapter is `device.py`; what the bridges share,
`hiors_teleop.bridge`."""

from __future__ import annotations

from sensor_msgs.msg import JointState, Joy

from hiors_core import topics
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.robots import get_robot

from ..bridge import TeleopBridge
from ..params import LEADER_ARM
from .device import DynamixelLeader, JointStateLeader, LeaderArmMapping


class LeaderArmBridge(TeleopBridge):
    def __init__(self, **kwargs):
        super().__init__("leader_arm", **kwargs)

        def arm_joints(v):
            arm = get_robot(v["robot"]).arm(v["arm"])
            return list(arm.joint_names) + [arm.gripper_name]

        p = declare(  # types and ranges: hiors_teleop.params; the lists' defaults follow the arm's joints
            self,
            LEADER_ARM,
            {
                "joint_names": arm_joints,
                "offsets": lambda v: [0.0] * len(v["joint_names"]),
                "signs": lambda v: [1.0] * len(v["joint_names"]),
                "raw_names": lambda v: list(v["joint_names"]),
                "ids": lambda v: list(range(1, len(v["joint_names"]) + 1)),
            },
        )
        self.robot = get_robot(p["robot"])
        names = tuple(p["joint_names"])
        lower = list(self.robot.joint_lower)
        upper = list(self.robot.joint_upper)
        index = {n: i for i, n in enumerate(self.robot.joint_names)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ValueError(f"leader arm: robot {self.robot.name!r} has no joints {unknown}")
        mapping = LeaderArmMapping(
            names=names,
            offsets=tuple(p["offsets"]),
            signs=tuple(p["signs"]),
            lower=tuple(lower[index[n]] for n in names),
            upper=tuple(upper[index[n]] for n in names),
            max_excess=p["max_excess_rad"],
        )
        source, max_age = p["source"], p["max_age_s"]
        self.pub_joint = self.create_publisher(JointState, topics.TELEOP_JOINT, topics.qos(topics.TELEOP_JOINT))
        self.pub_joy = self.create_publisher(Joy, topics.TELEOP_JOY, topics.qos(topics.TELEOP_JOY))
        self.pub_delta = None
        if source == "topic":
            self.device = JointStateLeader(mapping, tuple(p["raw_names"]), max_age)
            self.create_subscription(
                JointState,
                p["input_topic"],
                lambda m: self.device.feed(m.name, m.position),
                topics.profile(topics.QOS_DEFAULT),
            )
        elif source == "dynamixel":
            self.device = DynamixelLeader(
                mapping,
                p["port"],
                tuple(p["ids"]),
                p["baudrate"],
            )
            self.device.connect()
        else:
            raise ValueError(f"leader_arm source must be 'topic' or 'dynamixel', got {source!r}")
        # Engagement: a foot pedal / button as a Joy (buttons[0]) on engage_topic, or always engaged.
        self.device.engaged = p["always_engaged"]
        self.create_subscription(Joy, p["engage_topic"], self.on_engage, topics.profile(topics.QOS_DEFAULT))
        self._start(p["rate_hz"])

    def on_engage(self, msg: Joy) -> None:
        self.device.engaged = bool(msg.buttons and msg.buttons[0])


def main(args=None):
    return run_node(LeaderArmBridge, args)
