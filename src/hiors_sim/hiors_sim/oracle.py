"""The reward oracle: labels a finished episode the way the operator would, from the privileged task state.

Success = the task's success check held at some point of the episode (a person presses "success" when they see
it). Reward = 1/0, or with `graded` the best task progress reached (0..1, 1 on success). For the reward-model
ablation a false-positive rate p turns a failure into a "success" (reward 1) with probability p (seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OracleLabel:
    reward: float
    success: bool
    true_success: bool  # what the task check said, before any injected false positive
    false_positive: bool = False


class RewardOracle:
    def __init__(self, false_positive_rate: float = 0.0, graded: bool = False, seed: int = 0):
        if not 0.0 <= false_positive_rate <= 1.0:
            raise ValueError(f"false_positive_rate must be in [0, 1], got {false_positive_rate}")
        self.false_positive_rate = false_positive_rate
        self.graded = graded
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        self.success = False
        self.best_progress = 0.0
        self.observed = 0

    def observe(self, task_state: dict) -> None:
        self.observed += 1
        self.success = self.success or bool(task_state.get("success"))
        self.best_progress = max(self.best_progress, float(task_state.get("progress", 0.0)))

    def label(self) -> OracleLabel:
        """Label of the episode observed since the last reset (then resets)."""
        true = self.success
        fp = (not true) and self.false_positive_rate > 0 and bool(self.rng.random() < self.false_positive_rate)
        success = true or fp
        reward = 1.0 if success else (self.best_progress if self.graded else 0.0)
        out = OracleLabel(reward=float(reward), success=success, true_success=true, false_positive=fp)
        self.reset()
        return out
