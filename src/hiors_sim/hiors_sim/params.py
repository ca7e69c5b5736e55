"""The parameters of the twin's nodes: sim, sim_operator, reward_oracle and episode_runner (type, default, range,
description).
Pure, so `hiors up` checks values against them before any node starts (hiors_core.params)."""

from __future__ import annotations

import math

from hiors_core.params import Param
from hiors_core.robots import ROBOTS

from .operator import KNOBS, MODES, OperatorConfig
from .oracle import END_GRACE_S

SEED = (0, 2**32 - 1)  # numpy's seed range

SIM = {
    "robot": Param("tora_one", "robot twin: tora_one or xtrainer", choices=tuple(ROBOTS), read_only=True),
    "task": Param("", "task name ('' = the robot's first task)", read_only=True),
    "seed": Param(0, "seed of the first episode", *SEED),
    "cell": Param(-1, "grid cell of the first episode (-1 = random train cell)", -1, 1_000_000),
    "camera_rate_hz": Param(25.0, "camera publishing rate in sim time (Hz)", 0.1, 1000.0),
    "image_width": Param(224, "camera image width (px)", 8, 4096, read_only=True),
    "image_height": Param(224, "camera image height (px)", 8, 4096, read_only=True),
    "real_time_factor": Param(1.0, "1.0 = real time; 0 or >= 1000 = as fast as possible", 0.0, 1e6),
    "task_state_rate_hz": Param(25.0, "task state / joint state publishing rate (Hz, sim time)", 0.1, 1000.0),
}

# The simulated operator's knobs: defaults from OperatorConfig, meanings from operator.KNOBS, allowed values here.
_KNOB_RANGES: dict[str, dict] = {
    "mode": {"choices": MODES},
    "intervention_prob": {"low": 0.0, "high": 1.0},
    "reaction_delay_s": {"low": 0.0, "high": 60.0},
    "stall_s": {"low": 0.0, "high": 3600.0},
    "stall_progress": {"low": 0.0, "high": 1.0},
    "drift_m": {"low": 0.0, "high": 10.0},
    "tilt_rad": {"low": 0.0, "high": math.pi},
    "object_speed_mps": {"low": 0.0, "high": 100.0},
    "near_object_m": {"low": 0.0, "high": 10.0},
    "lookahead_s": {"low": 0.0, "high": 60.0},
    "shaky_accel_mps2": {"low": 0.0, "high": 10_000.0},
    "aim_tol_m": {"low": 0.0, "high": 10.0},
    "approach_speed_mps": {"low": 0.0, "high": 100.0},
    "wild_speed_mps": {"low": 0.0, "high": 100.0},
    "patience": {"low": 1e-6, "high": 1.0},
    "min_takeover_s": {"low": 0.0, "high": 3600.0},
    "handback_progress": {"low": 0.0, "high": 1.0},
    "finish_progress": {"low": 0.0, "high": 1.0},
    "hand_noise_m": {"low": 0.0, "high": 1.0},
    "seed": {"low": SEED[0], "high": SEED[1]},
}
_OPERATOR_DEFAULTS = OperatorConfig()

SIM_OPERATOR = {
    "robot": Param("tora_one", "robot: tora_one or xtrainer", choices=tuple(ROBOTS), read_only=True),
    "task": Param("", "task name ('' = the robot's first task)", read_only=True),
    **{k: Param(getattr(_OPERATOR_DEFAULTS, k), desc, **_KNOB_RANGES[k]) for k, desc in KNOBS.items()},
    "episode_buttons": Param(False, "press success/failure buttons at the end of an episode"),
}

REWARD_ORACLE = {
    "false_positive_rate": Param(0.0, "probability of labelling a failure as success", 0.0, 1.0),
    "graded": Param(False, "reward = best task progress (0..1) instead of 0 on failure"),
    "seed": Param(0, "seed of the false-positive draws", *SEED),
    "end_grace_s": Param(
        END_GRACE_S,
        "sim seconds the last successful state may precede the episode's end and still count as ending in success "
        "(the runner's decision takes a moment to reach this node)",
        0.0,
        60.0,
    ),
}

EPISODE_RUNNER = {
    "robot": Param("tora_one", "robot kind", choices=tuple(ROBOTS), read_only=True),
    "task": Param("", "task to run ('' = the sim's current task)", read_only=True),
    "episodes": Param(10, "episodes to run, then idle", 0, 1_000_000),
    "seed": Param(0, "seed of the first episode; episode k uses seed + k", 0, 2**31),
    "episode_time_s": Param(12.0, "sim seconds before an unlabelled episode is ended as a failure", 0.1, 3600.0),
    "label_grace_s": Param(3.0, "extra seconds to wait for the oracle's label", 0.0, 600.0),
    "pause_s": Param(0.5, "sim seconds between episodes (the robot is idle; the learner keeps training)", 0.0, 600.0),
    "policy_wait_s": Param(
        300.0, "wall seconds to wait for the actor's first chunk before the first episode", 0.0, 86_400.0
    ),
    "await_trained_policy_s": Param(
        0.0,
        "wall seconds to wait, before each episode after the first, until the actor runs weights the learner "
        "trained and published since the last episode began (0 = never: collection does not wait for learning)",
        0.0,
        86_400.0,
    ),
    "settle_s": Param(
        0.0,
        "sim seconds the task must stay successful before the episode ends (0 = at the first successful state: the "
        "simulated operator lets go when it sees success, and a policy that does not hold the goal leaves it "
        "within a few control steps)",
        0.0,
        60.0,
    ),
}
