"""Update-to-data ratio, counted as the paper counts it: UTD = gradient steps / samples received.

(The paper's "natural UTD of about 1" is one training iteration per inference step, whatever the batch size.)

By default (`target` 0) the learner is unpaced: it trains continuously while there is data, as the official
learner does, and the UTD is only measured. A positive `target` caps it: a step is allowed while
steps + 1 <= target * received; when no new data has arrived for `idle_after_s` (the robot is idle or being reset)
the cap is `max(target, cap)` instead, so that a larger `cap` lets the learner keep training on the buffer then.
"""

from __future__ import annotations

from dataclasses import dataclass


def utd(steps: int, received: int) -> float:
    """Achieved update-to-data ratio (pure): gradient steps per sample received (0 before any data)."""
    return steps / received if received else 0.0


@dataclass
class UTDPacer:
    target: float = 0.0  # gradient steps per received sample; 0 = unpaced (train while there is data)
    cap: float = 0.0  # paced only: the cap while no data arrives (0 = the target)
    idle_after_s: float = 10.0
    steps: int = 0  # gradient steps taken
    received: int = 0  # samples received into the training set
    last_data_time: float = 0.0

    @property
    def paced(self) -> bool:
        return self.target > 0

    def on_data(self, samples: int, now: float) -> None:
        self.received += int(samples)
        self.last_data_time = now

    def on_step(self) -> None:
        self.steps += 1

    def limit(self, now: float) -> float:
        """Gradient steps allowed per received sample now (paced only)."""
        idle = now - self.last_data_time >= self.idle_after_s
        return max(self.target, self.cap) if idle else self.target

    def may_train(self, now: float) -> bool:
        """May the learner take one more gradient step? Unpaced: always (the learner checks that it has data)."""
        if not self.paced:
            return True
        return self.received > 0 and self.steps + 1 <= self.limit(now) * self.received + 1e-9  # 0.29 * 100 < 29

    @property
    def achieved(self) -> float:
        return utd(self.steps, self.received)
