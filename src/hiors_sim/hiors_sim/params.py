"""The parameters of the twin's nodes: sim, sim_operator and reward_oracle (type, default, range, description).
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
