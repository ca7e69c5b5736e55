"""Episode returns R(tau): from an episode's label, its length and who drove it (pure, no rclpy).

The paper's return is a sum of rewards and a rising threshold m keeps "data subsets of increasing quality and
decreasing size". The labels are 0/1 (the operator's buttons, the oracle), and with 0/1 returns any m in (0, 1]
means "successes only": a rising m never changes a verdict. The graded return orders successes by quality, so it
does:

    graded, a success:   R = r * (1 - w_len * f_len - w_human * f_human)
    graded, a failure:   R = min(r, 0)      (never trained on: below any m > 0; a negative label stays negative)
    binary:              R = r              (the label's reward as it is)

where r is the label's reward (1 for a success from the buttons or the oracle), f_len = min(T / T_limit, 1) is the
episode's length T (executed control steps / control rate, s) over the task's time limit T_limit, and
f_human = human_steps / control_steps is the human's share of control. A faster, more autonomous success scores
higher.

Defaults w_len = w_human = 0.25 put every success in [0.5, 1], so with the default ramp of m (config/*.yaml,
`threshold_*`: 0.5 -> 0.9 over 400 learner steps) every success is kept at the start, and as m rises only
successes with w_len * f_len + w_human * f_human <= 1 - m stay: at m = 0.9, f_len + f_human <= 0.4. For
raise_hand (10 s limit):

    success                                       f_len  f_human  R      kept while m <=
    autonomous, 2 s                               0.2    0        0.95   (always)
    autonomous, 5 s                               0.5    0        0.875  0.875 (learner step ~375)
    operator took over after a 4 s stall, 6 s     0.6    0.35     0.76   0.76  (step ~260)
    operator drove most of it, 9 s                0.9    0.8      0.575  0.575 (step ~75)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError

RETURN_MODES = ("graded", "binary")


@dataclass(frozen=True)
class ReturnConfig:
    mode: str = "graded"
    length_weight: float = 0.25  # w_len
    human_weight: float = 0.25  # w_human

    def __post_init__(self):
        if self.mode not in RETURN_MODES:
            raise ConfigError(f"return mode {self.mode!r} unknown; known: {list(RETURN_MODES)}")
        w_len, w_human = float(self.length_weight), float(self.human_weight)
        if not (w_len >= 0 and w_human >= 0 and w_len + w_human < 1):
            # A success must score above every failure (0), however slow and assisted it was.
            raise ConfigError(
                f"return weights need length_weight, human_weight >= 0 and a sum < 1, got {w_len}, {w_human}"
            )


def episode_return(
    reward: float,
    success: bool,
    control_steps: int,
    human_steps: int,
    control_rate_hz: float,
    time_limit_s: float,
    config: ReturnConfig = ReturnConfig(),
) -> float:
    """R(tau) of one labelled episode (see the module docstring). A non-finite reward (unlabelled) stays as it is."""
    r = float(reward)
    if config.mode == "binary" or not math.isfinite(r):
        return r
    if not success:
        return min(r, 0.0)
    if control_rate_hz <= 0 or time_limit_s <= 0:
        raise ConfigError(
            f"graded return needs a control rate and a time limit > 0, got {control_rate_hz}, {time_limit_s}"
        )
    steps = max(int(control_steps), 0)
    f_len = min(steps / float(control_rate_hz) / float(time_limit_s), 1.0)
    f_human = min(max(int(human_steps), 0) / steps, 1.0) if steps else 0.0
    return r * (1.0 - config.length_weight * f_len - config.human_weight * f_human)
