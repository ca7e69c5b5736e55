"""The parameters of episode_filter and learner (type, default, range, description): pure, so `hiors up` checks
values against them before any node starts (hiors_core.params)."""

from __future__ import annotations

import math

from hiors_core.filters import FilterConfig
from hiors_core.params import Param
from hiors_core.rejection import SCHEDULE_KINDS, ThresholdConfig
from hiors_core.returns import RETURN_MODES, ReturnConfig
from hiors_core.robots import ROBOTS
from hiors_core.weight_sync import CHUNK_SIZE

from .optim import LR_SCHEDULES

FILTER_PARAMS = {
    "noop_enabled": Param(True, "drop samples whose commanded motion over the chunk is below the no-op thresholds"),
    "noop_translation": Param(
        0.002, "no-op threshold on EE translation between first and last chunk action (m)", 0.0, 1.0
    ),
    "noop_rotation": Param(
        0.01, "no-op threshold on EE rotation angle between first and last chunk action (rad)", 0.0, math.pi
    ),
    "noop_gripper": Param(0.02, "no-op threshold on gripper change over the chunk (0..1)", 0.0, 1.0),
    "noop_joint": Param(0.005, "no-op threshold on the joint delta norm over the chunk (rad), joint mode", 0.0, 10.0),
    "short_enabled": Param(True, "drop episodes with fewer than min_samples samples"),
    "min_samples": Param(3, "L_min: fewest samples an episode needs", 0, 1_000_000),
    "weighting": Param(
        "indicator",
        "per-sample loss weight: 'indicator' or 'reward' (R / reward_scale)",
        choices=("indicator", "reward"),
    ),
    "reward_scale": Param(1.0, "divisor of the return for reward weighting", 1e-6, 1e6),
}

THRESHOLD_PARAMS = {
    "threshold_kind": Param("constant", "m schedule: constant, fixed, linear or quantile", choices=SCHEDULE_KINDS),
    "threshold_initial": Param(0.5, "m at step 0 (and the floor of every schedule)", -1e6, 1e6),
    "threshold_final": Param(-1.0, "linear: m at the end of the ramp; quantile: ceiling (< initial = none)", -1e6, 1e6),
    "threshold_values": Param([0.0], "fixed: m values, piecewise by learner step", -1e6, 1e6),
    "threshold_steps": Param([0], "fixed: learner steps at which each value starts", 0),
    "threshold_start_step": Param(0, "linear: first step of the ramp", 0),
    "threshold_ramp_steps": Param(1000, "linear: length of the ramp (steps)", 1),
    "threshold_quantile": Param(0.5, "quantile: which quantile of recent accepted returns", 0.0, 1.0),
    "threshold_window": Param(50, "quantile: how many recent accepted returns", 1, 1_000_000),
    "threshold_min_count": Param(5, "quantile: returns needed before the quantile is used", 1, 1_000_000),
}

RETURN_PARAMS = {
    "return_mode": Param(
        "graded",
        "R from the label: 'graded' (success discounted by length and human share) or 'binary'",
        choices=RETURN_MODES,
    ),
    "return_length_weight": Param(
        0.25, "graded: w_len, the most a success loses for lasting its task's whole time limit", 0.0, 1.0
    ),
    "return_human_weight": Param(
        0.25, "graded: w_human, the most a success loses for being driven by the human throughout", 0.0, 1.0
    ),
    "return_time_limit_s": Param(
        0.0, "graded: episode length (s) of a full length discount; 0 = the task's time limit", 0.0, 86400.0
    ),
}

LEARNER_PARAMS = {
    "run_dir": Param("runs/learner", "run folder: checkpoints/, weights/, metrics.csv", read_only=True),
    "log_dir": Param(
        "", "the recorder's episode log (resume re-reads it and backfills what was missed)", read_only=True
    ),
    "demo_log_dir": Param("", "episode log of initial demonstrations loaded at start", read_only=True),
    "engine": Param(
        "torch",
        "'torch' (one device) or 'deepspeed' (ZeRO-2, launched with torchrun/deepspeed)",
        choices=("torch", "deepspeed"),
        read_only=True,
    ),
    "device": Param("cpu", "torch engine device: cpu, cuda, cuda:1, ...", read_only=True),
    "bf16": Param(False, "deepspeed engine: bf16 training (GPU)", read_only=True),
    "policy_path": Param(
        "", "checkpoint directory to start from (hiors_policy layout); empty = policy_factory", read_only=True
    ),
    "policy_factory": Param(
        "hiors_policy:build_tiny_policy", "module:callable(robot, task, seed) when no policy_path", read_only=True
    ),
    "robot": Param("tora_one", "robot name (for the factory)", choices=tuple(ROBOTS), read_only=True),
    "task": Param("raise_hand", "task name (for the factory)", read_only=True),
    "horizon": Param(0, "label chunk length H (0 = the policy's chunk size)", 0, 10_000),
    "batch_size": Param(8, "minibatch size (over all ranks)", 1, 65_536),
    "utd_target": Param(
        0.0,
        "update-to-data cap, in gradient steps per received sample (the paper's UTD); "
        "0 = unpaced: train continuously while there is data",
        0.0,
        10_000.0,
    ),
    "utd_cap": Param(
        0.0, "utd_target > 0 only: the cap while no data arrives (robot idle); 0 = utd_target", 0.0, 10_000.0
    ),
    "idle_after_s": Param(10.0, "utd_target > 0 only: no data for this long = robot idle (s)", 0.0, 86_400.0),
    "publish_every": Param(50, "publish weights every N optimizer steps (0 = never)", 0),
    "checkpoint_every": Param(200, "checkpoint every N optimizer steps (0 = never)", 0),
    "chunk_bytes": Param(CHUNK_SIZE, "PolicyWeights chunk size (bytes)", 1, 2**30),
    "local_weights": Param(True, "also write each version to run_dir/weights (PolicyUpdate.path fast path)"),
    "max_steps": Param(0, "stop training after this many steps (0 = never)", 0),
    "seed": Param(0, "sampling / noise seed", 0, 2**32 - 1),
    "lr": Param(2.5e-5, "peak learning rate", 1e-12, 1.0),
    "min_lr": Param(2.5e-6, "final learning rate of the cosine decay (at most lr)", 0.0, 1.0),
    "warmup_steps": Param(1000, "linear warm-up steps", 0),
    "decay_steps": Param(30000, "cosine decay steps after warm-up", 1),
    "lr_schedule": Param("cosine", "cosine, cyclic or constant", choices=LR_SCHEDULES),
    "cycle_steps": Param(2000, "cyclic schedule period (steps)", 1),
    "grad_clip": Param(1.0, "gradient norm clip (0 = off)", 0.0, 1e6),
    "weight_decay": Param(1e-10, "AdamW weight decay", 0.0, 1.0),
    "status_period": Param(1.0, "LearnerStatus period (s)", 0.01, 3600.0),
}

# Each node's whole table, as it declares it.
# The learner owns m (THRESHOLD_PARAMS are its alone); the filter computes R, and the learner declares
# RETURN_PARAMS too for the episodes it re-reads from the log (the graph gives it the filter's values).
LEARNER = {**LEARNER_PARAMS, **FILTER_PARAMS, **THRESHOLD_PARAMS, **RETURN_PARAMS}
EPISODE_FILTER = {**FILTER_PARAMS, **RETURN_PARAMS}


def filter_config(p: dict) -> FilterConfig:
    return FilterConfig(
        noop_enabled=bool(p["noop_enabled"]),
        noop_translation=float(p["noop_translation"]),
        noop_rotation=float(p["noop_rotation"]),
        noop_gripper=float(p["noop_gripper"]),
        noop_joint=float(p["noop_joint"]),
        short_enabled=bool(p["short_enabled"]),
        min_samples=int(p["min_samples"]),
        weighting=str(p["weighting"]),
        reward_scale=float(p["reward_scale"]),
    )


def threshold_config(p: dict) -> ThresholdConfig:
    kind = str(p["threshold_kind"])
    final = float(p["threshold_final"])
    if final < float(p["threshold_initial"]) and kind != "linear":
        final = math.inf
    fixed = kind == "fixed"
    return ThresholdConfig(
        kind=kind,
        initial=float(p["threshold_initial"]),
        final=final,
        values=tuple(float(v) for v in p["threshold_values"]) if fixed else (),
        steps=tuple(int(s) for s in p["threshold_steps"]) if fixed else (),
        start_step=int(p["threshold_start_step"]),
        ramp_steps=int(p["threshold_ramp_steps"]),
        quantile=float(p["threshold_quantile"]),
        window=int(p["threshold_window"]),
        min_count=int(p["threshold_min_count"]),
    )


def return_config(p: dict) -> ReturnConfig:
    return ReturnConfig(
        mode=str(p["return_mode"]),
        length_weight=float(p["return_length_weight"]),
        human_weight=float(p["return_human_weight"]),
    )
