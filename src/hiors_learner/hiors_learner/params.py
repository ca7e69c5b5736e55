"""Node parameters shared by episode_filter and learner: declared in one place with type, default, description."""

from __future__ import annotations

import math

from rcl_interfaces.msg import ParameterDescriptor

from hiors_core.filters import FilterConfig
from hiors_core.rejection import ThresholdConfig

FILTER_PARAMS = {
    "noop_enabled": (True, "drop samples whose commanded motion over the chunk is below the no-op thresholds"),
    "noop_translation": (0.002, "no-op threshold on EE translation between first and last chunk action (m)"),
    "noop_rotation": (0.01, "no-op threshold on EE rotation angle between first and last chunk action (rad)"),
    "noop_gripper": (0.02, "no-op threshold on gripper change over the chunk (0..1)"),
    "noop_joint": (0.005, "no-op threshold on the joint delta norm over the chunk (rad), joint mode"),
    "short_enabled": (True, "drop episodes with fewer than min_samples samples"),
    "min_samples": (3, "L_min: fewest samples an episode needs"),
    "weighting": ("indicator", "per-sample loss weight: 'indicator' or 'reward' (R / reward_scale)"),
    "reward_scale": (1.0, "divisor of the return for reward weighting"),
}

THRESHOLD_PARAMS = {
    "threshold_kind": ("constant", "m schedule: constant, fixed, linear or quantile"),
    "threshold_initial": (0.5, "m at step 0 (and the floor of every schedule)"),
    "threshold_final": (-1.0, "linear: m at the end of the ramp; quantile: ceiling (< initial = none)"),
    "threshold_values": ([0.0], "fixed: m values, piecewise by learner step"),
    "threshold_steps": ([0], "fixed: learner steps at which each value starts"),
    "threshold_start_step": (0, "linear: first step of the ramp"),
    "threshold_ramp_steps": (1000, "linear: length of the ramp"),
    "threshold_quantile": (0.5, "quantile: which quantile of recent accepted returns"),
    "threshold_window": (50, "quantile: how many recent accepted returns"),
    "threshold_min_count": (5, "quantile: returns needed before the quantile is used"),
}


def declare(node, table: dict) -> dict:
    out = {}
    for name, (default, desc) in table.items():
        node.declare_parameter(name, default, ParameterDescriptor(description=desc))
        out[name] = node.get_parameter(name).value
    return out


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
