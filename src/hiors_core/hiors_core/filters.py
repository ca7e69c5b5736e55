"""Episode and sample filters of Hi-ORS, each switchable for ablations (pure numpy, no rclpy).

- return filter: I_m(tau) = 1[R(tau) >= m]; negative returns are never trained on (rejection.indicator);
- no-op filter: drop samples whose commanded motion over the label chunk is below a threshold. For end-effector
  pose mode (per 8-column arm block x y z qx qy qz qw gripper): the relative transform between the first and last
  action of the chunk, its translation norm and rotation angle, and the gripper change; the sample is a no-op when
  all three are below their thresholds. For joint mode: the norm of the joint delta between first and last action;
- short-episode filter: drop episodes with fewer than `min_samples` recorded samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .rejection import indicator, sample_weight
from .robots import MODE_EE_POSE, MODE_JOINT
from .rotations import quat_angle
from .schema import TrainingSample

EE_BLOCK = 8  # x y z qx qy qz qw gripper

REASON_ACCEPTED = "accepted"
REASON_BELOW = "return_below_threshold"
REASON_NEGATIVE = "negative_return"
REASON_UNLABELLED = "unlabelled"
REASON_SHORT = "too_short"
REASON_NO_SAMPLES = "no_samples_left"


@dataclass(frozen=True)
class FilterConfig:
    noop_enabled: bool = True
    noop_translation: float = 0.002  # m, EE mode
    noop_rotation: float = 0.01  # rad, EE mode
    noop_gripper: float = 0.02  # opening units (0..1), EE mode
    noop_joint: float = 0.005  # rad (norm of the joint delta), joint mode
    short_enabled: bool = True
    min_samples: int = 3  # L_min
    weighting: str = "indicator"  # or "reward"
    reward_scale: float = 1.0


def chunk_motion(action_label: np.ndarray, control_mode: int) -> dict[str, float]:
    """Commanded motion between the first and last action of an (H, D) label chunk.

    EE mode: max over arm blocks of translation norm, rotation angle and gripper change.
    (The translation of the relative transform T_first^-1 T_last has the norm of p_last - p_first.)
    Joint mode: {"joint": ||a_last - a_first||}.
    """
    a = np.asarray(action_label, dtype=np.float64)
    if a.ndim != 2 or len(a) == 0:
        raise ValueError(f"action label must be (H, D), got shape {a.shape}")
    first, last = a[0], a[-1]
    if control_mode == MODE_EE_POSE:
        if a.shape[1] % EE_BLOCK:
            raise ValueError(f"EE pose action dim {a.shape[1]} is not a multiple of {EE_BLOCK}")
        f = first.reshape(-1, EE_BLOCK)
        g = last.reshape(-1, EE_BLOCK)
        return {
            "translation": float(np.max(np.linalg.norm(g[:, :3] - f[:, :3], axis=1))),
            "rotation": float(np.max(quat_angle(f[:, 3:7], g[:, 3:7]))),
            "gripper": float(np.max(np.abs(g[:, 7] - f[:, 7]))),
        }
    if control_mode == MODE_JOINT:
        return {"joint": float(np.linalg.norm(last - first))}
    raise ValueError(f"unknown control mode {control_mode}")


def is_noop(action_label: np.ndarray, control_mode: int, config: FilterConfig) -> bool:
    m = chunk_motion(action_label, control_mode)
    if control_mode == MODE_EE_POSE:
        return (
            m["translation"] < config.noop_translation
            and m["rotation"] < config.noop_rotation
            and m["gripper"] < config.noop_gripper
        )
    return m["joint"] < config.noop_joint


@dataclass
class FilterResult:
    accepted: bool
    reason: str
    episode_return: float
    threshold: float
    samples_in: int
    samples: list[TrainingSample] = field(default_factory=list)  # kept samples, weights set
    samples_noop: int = 0
    kept_mask: np.ndarray | None = None  # (samples_in,) True for kept samples

    @property
    def samples_kept(self) -> int:
        return len(self.samples)


def filter_episode(
    samples: list[TrainingSample],
    episode_return: float,
    m: float,
    control_mode: int,
    config: FilterConfig = FilterConfig(),
) -> FilterResult:
    """Apply return, short-episode and no-op filters to one episode's samples; set weights on the kept ones."""
    r = float(episode_return)
    n = len(samples)
    res = FilterResult(False, REASON_ACCEPTED, r, float(m), n, kept_mask=np.zeros(n, dtype=bool))
    if not math.isfinite(r):
        res.reason = REASON_UNLABELLED
        return res
    if r < 0.0:
        res.reason = REASON_NEGATIVE
        return res
    if not indicator(r, m):
        res.reason = REASON_BELOW
        return res
    if config.short_enabled and n < config.min_samples:
        res.reason = REASON_SHORT
        return res
    w = sample_weight(r, m, config.weighting, config.reward_scale)
    idle = [config.noop_enabled and is_noop(s.action_label, control_mode, config) for s in samples]
    # Idle samples after the episode's last motion are its end: the goal held, which is what a success looks like
    # and what the policy must learn to do there; only idle samples before some later motion are no-ops.
    last_motion = max((k for k, i in enumerate(idle) if not i), default=-1)
    for k, s in enumerate(samples):
        if idle[k] and (k < last_motion or last_motion < 0):  # an episode without any motion has no end hold
            res.samples_noop += 1
            continue
        s.weight = w
        res.kept_mask[k] = True
        res.samples.append(s)
    if not res.samples:
        res.reason = REASON_NO_SAMPLES
        return res
    res.accepted = True
    return res
