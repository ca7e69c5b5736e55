"""Online rejection: I_m(tau) = 1[R(tau) >= m] with a non-decreasing threshold schedule m_1 <= m_2 <= ...

Pure Python (no rclpy, no torch). The schedule is a small state machine: `value(step)` gives m at a learner step,
`observe(ret, accepted)` feeds returns to the quantile schedule, and the value never goes down, whatever a
quantile of recent returns does (monotonicity is enforced, not assumed).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError

SCHEDULE_KINDS = ("constant", "fixed", "linear", "quantile")


def indicator(episode_return: float, m: float) -> bool:
    """I_m(tau) = 1[R(tau) >= m]; also False for a missing (NaN) or negative return: those are never trained on."""
    r = float(episode_return)
    return math.isfinite(r) and r >= 0.0 and r >= float(m)


@dataclass(frozen=True)
class ThresholdConfig:
    """How m evolves with the learner step.

    constant: m = initial.
    fixed:    piecewise constant; m = values[i] for the last i with steps[i] <= step (before steps[0]: initial).
    linear:   initial until `start_step`, then a linear ramp to `final` over `ramp_steps` steps.
    quantile: the `quantile` (0..1) of the last `window` accepted returns, once at least `min_count` are known;
              clipped to [initial, final].
    Every kind is made non-decreasing by a running maximum.
    """

    kind: str = "constant"
    initial: float = 0.5
    final: float = math.inf
    values: tuple[float, ...] = ()
    steps: tuple[int, ...] = ()
    start_step: int = 0
    ramp_steps: int = 1000
    quantile: float = 0.5
    window: int = 50
    min_count: int = 5

    def __post_init__(self):
        if self.kind not in SCHEDULE_KINDS:
            raise ConfigError(f"threshold schedule {self.kind!r} unknown; known: {list(SCHEDULE_KINDS)}")
        if self.kind == "fixed":
            if len(self.values) != len(self.steps) or not self.values:
                raise ConfigError("fixed threshold schedule needs equally long non-empty 'values' and 'steps'")
            if list(self.steps) != sorted(self.steps):
                raise ConfigError(f"fixed threshold schedule: steps {list(self.steps)} must be sorted")
        if self.kind == "linear" and self.ramp_steps <= 0:
            raise ConfigError("linear threshold schedule needs ramp_steps > 0")
        if self.kind == "linear" and not math.isfinite(self.final):
            raise ConfigError("linear threshold schedule needs a finite 'final'")
        if self.kind == "quantile" and not (0.0 <= self.quantile <= 1.0 and self.window > 0 and self.min_count > 0):
            raise ConfigError("quantile threshold schedule needs 0 <= quantile <= 1, window > 0, min_count > 0")


@dataclass
class ThresholdSchedule:
    """The live threshold. `value(step)` is non-decreasing over successive calls, by construction."""

    config: ThresholdConfig = field(default_factory=ThresholdConfig)
    current: float = -math.inf
    recent: deque = field(default_factory=deque)

    def __post_init__(self):
        self.recent = deque(self.recent, maxlen=self.config.window)
        if self.current == -math.inf:
            self.current = float(self.config.initial)

    def _raw(self, step: int) -> float:
        c = self.config
        if c.kind == "constant":
            return c.initial
        if c.kind == "fixed":
            m = c.initial
            for s, v in zip(c.steps, c.values, strict=True):
                if step >= s:
                    m = v
            return m
        if c.kind == "linear":
            frac = min(max((step - c.start_step) / c.ramp_steps, 0.0), 1.0)
            return c.initial + frac * (c.final - c.initial)
        # quantile
        if len(self.recent) < c.min_count:
            return c.initial
        q = float(np.quantile(np.asarray(self.recent, dtype=np.float64), c.quantile))
        return min(max(q, c.initial), c.final)

    def value(self, step: int) -> float:
        """m at learner step `step`; never below any value returned before."""
        self.current = max(self.current, float(self._raw(int(step))))
        return self.current

    def observe(self, episode_return: float, accepted: bool) -> None:
        """Feed one verdict; the quantile schedule looks at the returns of accepted episodes."""
        if accepted and math.isfinite(float(episode_return)):
            self.recent.append(float(episode_return))

    def raise_to(self, m: float) -> float:
        """Follow an external (learner's) threshold: m only ever goes up."""
        if math.isfinite(float(m)):
            self.current = max(self.current, float(m))
        return self.current

    def state_dict(self) -> dict:
        return {"current": self.current, "recent": list(self.recent)}

    def load_state_dict(self, state: dict) -> None:
        self.current = max(float(self.config.initial), float(state.get("current", self.config.initial)))
        self.recent = deque((float(x) for x in state.get("recent", [])), maxlen=self.config.window)


def sample_weight(episode_return: float, m: float, mode: str = "indicator", reward_scale: float = 1.0) -> float:
    """Per-sample loss weight of an episode's samples: I_m(tau), or I_m(tau) * R / reward_scale ("reward")."""
    if not indicator(episode_return, m):
        return 0.0
    if mode == "indicator":
        return 1.0
    if mode == "reward":
        return float(episode_return) / float(reward_scale)
    raise ConfigError(f"sample weighting {mode!r} unknown; known: ['indicator', 'reward']")
