"""The parameters of the arbiter, the recorder and the device bridges (type, default, range, description): pure,
so `hiors up` checks values against them before any node starts (hiors_core.params)."""

from __future__ import annotations

import math

from hiors_core.params import Param
from hiors_core.robots import CONTROL_MODES, ROBOTS

from .authority import CHUNK_SCHEDULES, SAMPLING_MODES

HUMAN_SOURCES = ("quest3", "leader_arm")  # RobotSpec.human_source / TaskSpec.human_source values

ARBITER = {
    "robot": Param("tora_one", "robot name (hiors_core.robots)", choices=tuple(ROBOTS), read_only=True),
    "task": Param("", "task name ('' = the robot's first task); fixes the defaults below", read_only=True),
    "control_mode": Param("", "'joint' or 'ee' ('' = the task's)", choices=("", *CONTROL_MODES), read_only=True),
    "arm": Param("", "the arm an 'ee' task commands ('' = the task's)", read_only=True),
    "control_rate_hz": Param(0.0, "control loop rate (Hz; 0 = the robot's)", 0.0, 1000.0, read_only=True),
    "k_auto": Param(20, "policy steps executed per chunk before the next chunk is taken", 1, 1000),
    "sampling_mode": Param("dual", "dual (the paper's), fixed_high or fixed_low (ablations)", choices=SAMPLING_MODES),
    "human_sample_period": Param(1, "f_high: control steps between samples while the human drives", 1, 10_000),
    "policy_sample_period": Param(
        0, "f_low: control steps between samples while the policy drives (0 = once per chunk)", 0, 10_000
    ),
    "policy_timeout_steps": Param(
        25,
        "chunks older than this many control periods are stale; an unanswered chunk request is repeated this late "
        "at the latest (sooner by the latency measured)",
        1,
        100_000,
    ),
    "chunk_schedule": Param(
        "early",
        "early: ask for the next chunk the measured request-to-chunk latency (plus a margin) before the held ones "
        "reach k_auto, and run the current one on past k_auto until it comes; sequential: ask when the chunk has "
        "run out and hold until the next (the paper's loop)",
        choices=CHUNK_SCHEDULES,
    ),
    "request_margin_steps": Param(
        2, "early schedule: control periods asked ahead beyond the measured latency (mean + 2 deviations)", 0, 1000
    ),
    "teleop_timeout_s": Param(0.25, "the human's input is lost (hold) when older than this (s)", 0.001, 10.0),
    "human_source": Param("", "the human input device ('' = the task's)", choices=("", *HUMAN_SOURCES), read_only=True),
    "trigger_closes": Param(True, "pressing the trigger closes the gripper (else opens it)"),
    "marker_rate_hz": Param(5.0, "rviz marker rate (Hz; 0 = off)", 0.0, 100.0, read_only=True),
    "trail_length": Param(600, "EE positions kept in the rviz trail", 1, 1_000_000, read_only=True),
}

RECORDER = {
    "robot": Param("tora_one", "robot name (hiors_core.robots)", choices=tuple(ROBOTS), read_only=True),
    "task": Param("", "task name ('' = the robot's first task)", read_only=True),
    "instruction": Param("", "episode instruction ('' = the observations' own, the task's)", read_only=True),
    "log_dir": Param("episodes", "episode log folder (one bag per episode, plus the index)", read_only=True),
    "horizon": Param(50, "label chunk length H: the next H executed commands label a sample", 1, 10_000),
    "resend_period_s": Param(5.0, "re-send unacknowledged labelled episodes this often (s; 0 = off)", 0.0, 3600.0),
    "end_on_label": Param(True, "an EpisodeLabel for the episode being recorded ends it"),
    "control_mode": Param("", "'joint' or 'ee' ('' = the task's)", choices=("", *CONTROL_MODES), read_only=True),
    "arm": Param("", "the arm an 'ee' task commands ('' = the task's)", read_only=True),
    "keyboard": Param(False, "start, end and label episodes from the terminal's keys", read_only=True),
    "min_free_bytes": Param(
        64 * 2**20,
        "start no episode, and stop the one being recorded, while the log's filesystem has less free (bytes; 0 = off)",
        0,
        2**50,
        read_only=True,
    ),
}

_RATE = Param(50.0, "teleop publishing rate (Hz)", 0.1, 1000.0, read_only=True)
_MAX_AGE = (0.0, 60.0)

QUEST3 = {
    "robot": Param("tora_one", "robot name", choices=tuple(ROBOTS), read_only=True),
    "task": Param("", "task (informational)", read_only=True),
    "arm": Param("left", "the robot arm the controller drives", read_only=True),
    "source": Param(
        "webxr",
        "webxr (page + WebSocket) or topics (Quest2ROS-style absolute pose + Joy)",
        choices=("webxr", "topics"),
        read_only=True,
    ),
    "hand": Param("right", "controller hand: right or left", choices=("right", "left"), read_only=True),
    "scale": Param(1.0, "controller motion -> robot motion scale", 0.01, 100.0, read_only=True),
    "max_age_s": Param(
        0.5, "publish nothing once the newest controller input is older (s; 0 = off)", *_MAX_AGE, read_only=True
    ),
    "host": Param("127.0.0.1", "webxr: address the page is served on (0.0.0.0 for the LAN, with TLS)", read_only=True),
    "port": Param(8443, "webxr: port of the page and the WebSocket (0 = any free port)", 0, 65535, read_only=True),
    "token": Param("", "webxr: access token ('' = a random one, logged)", read_only=True),
    "certfile": Param(
        "", "webxr: TLS certificate (https/wss; WebXR needs a secure context on the LAN)", read_only=True
    ),
    "keyfile": Param("", "webxr: TLS key", read_only=True),
    "pose_topic": Param("", "topics: absolute controller pose (Quest2ROS; '' = q2r/<hand>_hand_pose)", read_only=True),
    "joy_topic": Param(
        "", "topics: controller buttons and trigger (Quest2ROS; '' = q2r/<hand>_hand_inputs)", read_only=True
    ),
    "rate_hz": _RATE,
}

# The lists' defaults follow the arm's joints: the node gives them (declared in this order).
LEADER_ARM = {
    "robot": Param("xtrainer", "robot name", choices=tuple(ROBOTS), read_only=True),
    "task": Param("", "task (informational)", read_only=True),
    "arm": Param("left", "the follower arm", read_only=True),
    "joint_names": Param(
        [""], "follower joints the leader commands (default: the arm's joints and gripper)", read_only=True
    ),
    "offsets": Param(
        [0.0],
        "target = sign * raw + offset (rad), per joint (default: zeros)",
        -2 * math.pi,
        2 * math.pi,
        read_only=True,
    ),
    "signs": Param([1.0], "+1 or -1 per joint (default: +1)", -1.0, 1.0, read_only=True),
    "max_excess_rad": Param(
        0.2,
        "targets this far beyond a joint limit are clipped; further out refused (rad)",
        0.0,
        math.pi,
        read_only=True,
    ),
    "source": Param(
        "topic",
        "topic (raw JointState) or dynamixel (servos on a serial port)",
        choices=("topic", "dynamixel"),
        read_only=True,
    ),
    "max_age_s": Param(0.5, "publish nothing once the newest reading is older (s; 0 = off)", *_MAX_AGE, read_only=True),
    "raw_names": Param([""], "topic: names of the raw readings, in joint order (default: joint_names)", read_only=True),
    "input_topic": Param("leader/joint_states", "topic: raw leader readings", read_only=True),
    "port": Param("/dev/ttyUSB0", "dynamixel: serial port of the servos", read_only=True),
    "ids": Param([1], "dynamixel: servo ids in joint order (default: 1, 2, ...)", 0, 253, read_only=True),
    "baudrate": Param(1_000_000, "dynamixel: serial baud rate", 9600, 10_000_000, read_only=True),
    "always_engaged": Param(False, "engaged without a pedal", read_only=True),
    "engage_topic": Param("leader/engage", "pedal / button (Joy buttons[0] = engaged)", read_only=True),
    "rate_hz": _RATE,
}

# The robot driver bridge (robot_driver/bridge.py): an existing driver's topics as the graph's robot topics. Its topic
# names are the driver's (absolute by default, outside the graph's namespace).
COMMAND_INTERFACES = ("float64_array", "joint_trajectory")
DRIVER_BRIDGE = {
    "robot": Param("tora_one", "robot name (hiors_core.robots)", choices=tuple(ROBOTS), read_only=True),
    "joint_map": Param(
        [""],
        "driver joints named differently from the robot's, as 'driver_name=robot_joint_name' ([''] = the same)",
        read_only=True,
    ),
    "driver_joint_states": Param(
        "/joint_states", "the driver's sensor_msgs/JointState topic ('' = relay none)", read_only=True
    ),
    "command_interface": Param(
        "float64_array",
        "float64_array: std_msgs/Float64MultiArray (ros2_control forward_command_controller); joint_trajectory: "
        "trajectory_msgs/JointTrajectory with one point (joint_trajectory_controller)",
        choices=COMMAND_INTERFACES,
        read_only=True,
    ),
    "driver_command": Param(
        "/forward_position_controller/commands", "the driver's command topic ('' = send none)", read_only=True
    ),
    "command_joints": Param(
        [""],
        "the command controller's joints by their driver names, in its order ([''] = every robot joint, robot order)",
        read_only=True,
    ),
    "gripper_closed": Param(
        0.0, "the driver's position of a closed gripper (the graph's 0)", -1e3, 1e3, read_only=True
    ),
    "gripper_open": Param(1.0, "the driver's position of an open gripper (the graph's 1)", -1e3, 1e3, read_only=True),
    "trajectory_time_s": Param(
        0.0, "joint_trajectory: time_from_start of the point (s; 0 = one control period)", 0.0, 10.0, read_only=True
    ),
}
