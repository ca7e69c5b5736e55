"""Update-to-data pacing: UTD = samples trained on / samples received.

The trainer may run while trained + batch <= target * received; when no new data has arrived for `idle_after_s`
(the robot is idle or being reset) it keeps training on the buffer up to `cap * received`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class UTDPacer:
    target: float = 1.0
    cap: float = 4.0
    idle_after_s: float = 10.0
    trained: int = 0  # samples trained on
    received: int = 0  # samples received into the training set
    last_data_time: float = 0.0

    def on_data(self, samples: int, now: float) -> None:
        self.received += int(samples)
        self.last_data_time = now

    def on_trained(self, samples: int) -> None:
        self.trained += int(samples)

    def limit(self, now: float) -> float:
        idle = now - self.last_data_time >= self.idle_after_s
        return max(self.target, self.cap) if idle else self.target

    def may_train(self, batch_size: int, now: float) -> bool:
        if self.received <= 0 or self.target <= 0:
            return False
        return self.trained + batch_size <= self.limit(now) * self.received

    @property
    def achieved(self) -> float:
        return self.trained / self.received if self.received else 0.0
