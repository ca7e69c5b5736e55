"""What every teleoperation device shares, ROS-free (lerobot's `teleoperators/teleoperator.py`): the command a
device reads (`TeleopCommand`) and the small interface behind it (`TeleopDevice`: connect(), read() ->
TeleopCommand | None, buttons, stats(), disconnect()). The devices themselves are one folder each: `quest3/`,
`leader_arm/`, each with its adapter (`device.py`) and its node (`bridge.py`, on `hiors_teleop.bridge`).

Input that cannot be a command is refused and counted by the device, never passed on. With `max_age_s` > 0,
`read()` returns None once the newest input is older than that (`Freshness`), so a bridge stops publishing and the
arbiter's teleop watchdog takes over."""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class TeleopCommand:
    engaged: bool  # clutch / leader engaged: the human wants authority
    ee_delta: tuple[np.ndarray, np.ndarray] | None = None  # (dp, dq xyzw) in the base frame since engage
    joints: dict[str, float] | None = None  # absolute joint targets (leader arm)
    trigger: float | None = None  # gripper trigger 0 (released) .. 1 (pressed)
    buttons: tuple[bool, bool, bool] = (False, False, False)  # episode start, success, failure


class TeleopDevice(abc.ABC):
    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def read(self) -> TeleopCommand | None:
        """The latest command, or None while nothing has been received."""

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    @property
    def buttons(self) -> tuple[bool, bool, bool]:
        cmd = self.read()
        return cmd.buttons if cmd else (False, False, False)

    def stats(self) -> dict[str, int]:
        """Counters for diagnostics (inputs taken, inputs refused, ...)."""
        return {}

    def drain_refusals(self) -> dict[str, int]:
        """Why input was refused since the last call, and how often (the bridge logs them in one line)."""
        return {}


def refusal_line(refused: dict[str, int], reasons: dict[str, int], last: str = "") -> str:
    """The one log line for refusals since the last report: the counters, then each reason with how often."""
    why = "; ".join(f"{n} x {r}" for r, n in reasons.items()) or (f"last: {last}" if last else "")
    return f"refused teleop input: {refused}" + (f"; {why}" if why else "")


class Freshness:
    """When the newest input arrived; `fresh()` is False once it is older than max_age_s (0 = never stale)."""

    def __init__(self, max_age_s: float = 0.0, clock=time.monotonic):
        self.max_age_s, self.clock = float(max_age_s), clock
        self.last: float | None = None

    def touch(self) -> None:
        self.last = self.clock()

    def fresh(self) -> bool:
        if self.last is None:
            return False
        return self.max_age_s <= 0 or self.clock() - self.last <= self.max_age_s
