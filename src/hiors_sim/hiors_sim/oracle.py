"""The episode's outcome as a person watching would call it, from the privileged task state (pure, no rclpy).

Two pieces, fed the same task-state dicts (`SimRobot.task_state()`, which carries `time`, `success`, `failed`,
`failure_reason`, `progress`, `timed_out`):

`EpisodeWatch` is the person's finger on the end button (the episode runner uses it): the episode is over on
success held for `settle_s` (0 = at the first successful state: the simulated operator lets go of the robot the
moment it sees success, so an untrained policy may leave the goal within a few control steps), on a terminal
failure (knocked over, fell off), or at the task's time limit (the state's `timed_out`).

`RewardOracle` labels the episode once it is over, as that person would at its end: success only if the episode
ended in the success state and no terminal failure was seen on the way. "Ended in" allows `end_grace_s` of sim time
between the last successful state and the last state observed: the runner decides, then the recorder's episode
status changes, and the oracle sees a few more states (the robot moving off after the person let go) before it
hears that the episode is over. A success seen at some instant and then lost (the hand drifted off and the episode
ran to its time limit) or followed by a failure (the bottle was in the box, then knocked over) is a failure.
Reward = 1/0, or with `graded` 1 on success and on failure the best task progress of its unsuccessful states (0..1). For the reward-model ablation a
false-positive rate p turns a failure into a "success" (reward 1) with probability p (seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

END_GRACE_S = 0.5  # s of sim time: the runner's decision reaching the oracle, on a loaded 2-core machine


@dataclass
class OracleLabel:
    reward: float
    success: bool
    true_success: bool  # what the task check said at the end, before any injected false positive
    false_positive: bool = False


def _time(state: dict) -> float | None:
    t = state.get("time")
    return None if t is None else float(t)


class RewardOracle:
    def __init__(
        self, false_positive_rate: float = 0.0, graded: bool = False, seed: int = 0, end_grace_s: float = END_GRACE_S
    ):
        if not 0.0 <= false_positive_rate <= 1.0:
            raise ValueError(f"false_positive_rate must be in [0, 1], got {false_positive_rate}")
        if end_grace_s < 0:
            raise ValueError(f"end_grace_s must be >= 0, got {end_grace_s}")
        self.false_positive_rate = false_positive_rate
        self.graded = graded
        self.end_grace_s = end_grace_s
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        self.failed = ""  # the first terminal failure seen ("" = none)
        self.last_success = False  # the latest state was successful
        self.last_success_time: float | None = None  # sim time of the latest successful state
        self.last_time: float | None = None
        self.best_progress = 0.0
        self.observed = 0
        self.seed = None

    def observe(self, task_state: dict) -> None:
        seed = task_state.get("seed")
        if self.observed and seed != self.seed:  # a new scene: what came before (in flight at a reset) was another's
            self.reset()
        self.seed = seed
        self.observed += 1
        t = _time(task_state)
        self.last_time = t
        self.last_success = bool(task_state.get("success"))
        if self.last_success:
            self.last_success_time = t
        if task_state.get("failed") and not self.failed:
            self.failed = str(task_state.get("failure_reason") or "failed")
        if not self.last_success:  # a failure that passed through success must not score like one
            self.best_progress = max(self.best_progress, float(task_state.get("progress", 0.0)))

    def ended_in_success(self) -> bool:
        """The episode observed so far ends in the success state (within the grace) with no failure on the way."""
        if self.failed or not self.observed:
            return False
        if self.last_success:
            return True
        if self.last_success_time is None or self.last_time is None:
            return False
        return self.last_time - self.last_success_time <= self.end_grace_s

    def label(self) -> OracleLabel:
        """Label of the episode observed since the last reset (then resets)."""
        true = self.ended_in_success()
        fp = (not true) and self.false_positive_rate > 0 and bool(self.rng.random() < self.false_positive_rate)
        success = true or fp
        reward = 1.0 if success else (self.best_progress if self.graded else 0.0)
        out = OracleLabel(reward=float(reward), success=success, true_success=true, false_positive=fp)
        self.reset()
        return out


class EpisodeWatch:
    """Says when and why an episode is over, from its task states (the person's finger on the end button)."""

    def __init__(self, settle_s: float = 0.0):
        if settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, got {settle_s}")
        self.settle_s = settle_s
        self.reset()

    def reset(self) -> None:
        self.success_since: float | None = None
        self.why = ""

    def observe(self, state: dict) -> str:
        """Feed one task state; returns why the episode is over ("" while it goes on). Once over, it stays over."""
        if self.why:
            return self.why
        t = _time(state) or 0.0
        if state.get("success"):
            self.success_since = t if self.success_since is None else self.success_since
            if t - self.success_since >= self.settle_s - 1e-9:  # (sim times are sums of control periods)
                self.why = "success"
                return self.why
        else:
            self.success_since = None
        if state.get("failed"):
            self.why = f"failed ({state.get('failure_reason', '')}) at sim t={t:.2f}"
        elif state.get("timed_out"):
            self.why = "time limit"
        return self.why
