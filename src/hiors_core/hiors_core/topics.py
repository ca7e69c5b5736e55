"""Topics and services of the graph: name, message type and QoS of each, in one place.

Names are relative so the whole stack can be namespaced (`/clock` and `/diagnostics` are absolute by ROS
convention). `TOPICS` gives each topic's type and QoS, `SERVICES` each service's type. Every node, test, benchmark
and tool takes a topic's QoS from here: `qos(name)` for the topic's own profile, `qos(name, role)` where a reader
registered below reads it differently, `profile(spec)` for a stream outside the graph (device inputs, replay). The
QoS is plain data (no rclpy) until one of those builds the rclpy profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Robot driver / simulated twin.
JOINT_STATES = "joint_states"  # measured joints + grippers (0..1 opening)
EE_POSE = "ee_pose/{arm}"  # measured end-effector pose of one arm
CAMERA = "camera/{name}/image_raw"  # rgb8
CMD_JOINT = "command/joint"  # absolute joint (and gripper) position targets
CMD_EE_POSE = "command/ee_pose/{arm}"  # absolute end-effector target of one arm
CMD_GRIPPER = "command/gripper"  # gripper opening targets (0..1) by gripper name
RESET = "reset"  # service: reset the simulated scene
RESYNC = "resync"  # the robot was moved by something other than the arbiter (a scene reset, a homing routine) at header.stamp: hold where it is now
SIM_TASK_STATE = (
    "sim/task_state"  # JSON: privileged task state (object poses, success) for the simulated operator and oracle
)
CLOCK = "/clock"  # simulated time

# Policy side.
OBSERVATION = "observation"
ACTION_CHUNK = "action_chunk"
# The arbiter asks for the next chunk; header.stamp: the oldest observation it would take a chunk from.
CHUNK_REQUEST = "chunk_request"

# Teleop / arbiter / recorder.
TELEOP_EE_DELTA = "teleop/ee_delta/{arm}"  # relative EE motion since the clutch engaged
TELEOP_JOINT = "teleop/joint"  # leader-arm absolute joint targets
TELEOP_JOY = "teleop/joy"  # buttons (clutch, trigger, episode start/success/failure)
ESTOP = "estop"  # true = stop now
CONTROL_STATE = "control_state"
EXECUTED = "executed"  # every command sent to the robot
EPISODE_STATUS = "episode_status"  # id of the episode being recorded, "" when none
EPISODE_LABEL = "episode_label"
START_EPISODE = "start_episode"  # service
END_EPISODE = "end_episode"  # service
LABEL_EPISODE = "label_episode"  # service
MARKERS = "monitor/markers"

# Learner side.
EPISODE = "episode"  # recorder -> episode_filter
EPISODE_ACCEPTED = "episode_accepted"  # episode_filter -> learner
EPISODE_VERDICT = "episode_verdict"  # also the recorder's acknowledgement
POLICY_UPDATE = "policy_update"
POLICY_WEIGHTS = "policy_weights"  # chunks of one weight blob
LEARNER_STATUS = "learner_status"
DIAGNOSTICS = "/diagnostics"


@dataclass(frozen=True)
class QoS:
    """The QoS of one stream as data. Reliability and durability must be compatible between a topic's publishers
    and readers; the depth is each endpoint's own queue."""

    depth: int = 10  # KEEP_LAST depth (unused with keep_all)
    reliable: bool = True  # False: best effort
    latched: bool = False  # transient-local: a reader that joins late gets the last `depth` messages
    keep_all: bool = False  # KEEP_ALL history: nothing is dropped for a slow reader


QOS_DEFAULT = QoS()  # rclpy's default (reliable, volatile, keep last 10)
QOS_SENSOR = QoS(depth=5, reliable=False)  # rclpy's qos_profile_sensor_data: the newest matters, losses are fine
QOS_LATCHED = QoS(depth=1, latched=True)  # state published when it changes: a late reader gets the current one
QOS_KEEP_ALL = QoS(keep_all=True)  # whole episodes: none may be lost, however slow the reader
QOS_REPLAY = QoS(depth=100)  # `hiors replay` republishing a bag's topics


@dataclass(frozen=True)
class Topic:
    name: str
    type: str  # ROS interface name, e.g. "hiors_msgs/msg/Observation"
    qos: QoS  # of the publishers, and of every reader not listed in `readers`
    readers: Mapping[str, QoS] = field(default_factory=dict)  # role -> that reader's own QoS


def _topic(name: str, type_: str, qos: QoS = QOS_DEFAULT, **readers: QoS) -> tuple[str, Topic]:
    return name, Topic(name, type_, qos, readers)


TOPICS: dict[str, Topic] = dict(
    [
        # The capture node reads measurements best effort: it samples the newest at its own rate.
        _topic(JOINT_STATES, "sensor_msgs/msg/JointState", capture=QOS_SENSOR),
        _topic(EE_POSE, "geometry_msgs/msg/PoseStamped", capture=QOS_SENSOR),
        _topic(CAMERA, "sensor_msgs/msg/Image", QOS_SENSOR),
        _topic(CMD_JOINT, "sensor_msgs/msg/JointState"),
        _topic(CMD_EE_POSE, "geometry_msgs/msg/PoseStamped"),
        _topic(CMD_GRIPPER, "sensor_msgs/msg/JointState"),
        _topic(RESYNC, "std_msgs/msg/Header"),
        _topic(SIM_TASK_STATE, "std_msgs/msg/String"),
        _topic(CLOCK, "rosgraph_msgs/msg/Clock", QoS(depth=1)),
        # Reliable but shallow: the policy infers from the newest observation. The recorder reads as sensor data
        # (best effort, the latest few): a frame it misses is replaced by the one before it in the sample.
        _topic(OBSERVATION, "hiors_msgs/msg/Observation", QoS(depth=2), recorder=QOS_SENSOR),
        _topic(ACTION_CHUNK, "hiors_msgs/msg/ActionChunk"),
        _topic(CHUNK_REQUEST, "std_msgs/msg/Header"),
        _topic(TELEOP_EE_DELTA, "geometry_msgs/msg/PoseStamped"),
        _topic(TELEOP_JOINT, "sensor_msgs/msg/JointState"),
        _topic(TELEOP_JOY, "sensor_msgs/msg/Joy"),
        _topic(ESTOP, "std_msgs/msg/Bool", QOS_LATCHED),
        _topic(CONTROL_STATE, "hiors_msgs/msg/ControlState", QOS_LATCHED),
        # Every executed command is a frame of the episode: deep queues, deeper for the readers.
        _topic(
            EXECUTED, "hiors_msgs/msg/ExecutedCommand", QoS(depth=50), recorder=QoS(depth=100), monitor=QoS(depth=1000)
        ),
        _topic(EPISODE_STATUS, "std_msgs/msg/String", QOS_LATCHED),
        _topic(EPISODE_LABEL, "hiors_msgs/msg/EpisodeLabel", QoS(depth=50), recorder=QoS(depth=100)),
        _topic(MARKERS, "visualization_msgs/msg/MarkerArray", QoS(depth=1)),
        _topic(EPISODE, "hiors_msgs/msg/Episode", QOS_KEEP_ALL, monitor=QoS(depth=100)),
        _topic(EPISODE_ACCEPTED, "hiors_msgs/msg/Episode", QOS_KEEP_ALL),
        # Kept for late readers (transient-local); the recorder's acknowledgements and the monitor read volatile.
        _topic(
            EPISODE_VERDICT,
            "hiors_msgs/msg/EpisodeVerdict",
            QoS(depth=1000, latched=True),
            recorder=QoS(depth=100),
            monitor=QoS(depth=100),
        ),
        _topic(POLICY_UPDATE, "hiors_msgs/msg/PolicyUpdate", QOS_LATCHED),
        # Reliable and transient-local, so an actor that starts (or restarts) after the learner published still
        # receives the current version from the publisher's history instead of waiting for the next. The learner
        # publishes with depth = the chunk count of one version (`qos(POLICY_WEIGHTS, depth=n)`): its history holds
        # exactly the latest version. Readers keep all, so a burst of chunks is never overwritten before it is taken;
        # the latched PolicyUpdate announces what the history holds.
        _topic(POLICY_WEIGHTS, "hiors_msgs/msg/PolicyWeights", QoS(latched=True, keep_all=True)),
        _topic(LEARNER_STATUS, "hiors_msgs/msg/LearnerStatus", QOS_LATCHED),
        _topic(DIAGNOSTICS, "diagnostic_msgs/msg/DiagnosticArray"),
    ]
)

SERVICES: dict[str, str] = {
    RESET: "hiors_msgs/srv/ResetSim",
    START_EPISODE: "hiors_msgs/srv/StartEpisode",
    END_EPISODE: "hiors_msgs/srv/EndEpisode",
    LABEL_EPISODE: "hiors_msgs/srv/LabelEpisode",
}


def topic(name: str) -> Topic:
    """The registered topic `name` (the constant above, before any .format)."""
    try:
        return TOPICS[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a registered topic (hiors_core.topics.TOPICS): {sorted(TOPICS)}") from None


def qos_spec(name: str, role: str | None = None) -> QoS:
    """The QoS of topic `name` for its publishers and readers, or for the reader `role` registered with it."""
    t = topic(name)
    if role is None:
        return t.qos
    if role not in t.readers:
        raise KeyError(f"topic {name!r} has no reader role {role!r}; registered: {sorted(t.readers) or 'none'}")
    return t.readers[role]


def profile(spec: QoS, depth: int | None = None):
    """rclpy QoSProfile of `spec`; `depth` makes it KEEP_LAST `depth` (an endpoint's own queue)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    keep_all = spec.keep_all and depth is None
    return QoSProfile(
        history=HistoryPolicy.KEEP_ALL if keep_all else HistoryPolicy.KEEP_LAST,
        depth=spec.depth if depth is None else max(int(depth), 1),
        reliability=ReliabilityPolicy.RELIABLE if spec.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if spec.latched else DurabilityPolicy.VOLATILE,
    )


def qos(name: str, role: str | None = None, depth: int | None = None):
    """rclpy QoSProfile of topic `name` (for reader `role` if given; `depth` overrides the queue depth)."""
    return profile(qos_spec(name, role), depth)
