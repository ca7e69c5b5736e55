"""The leader-arm adapter (ROS-free): target = sign * raw + offset per joint, from a JointState feed
(`JointStateLeader`) or Dynamixel servos (`DynamixelLeader`). Readings that are non-finite or further than
`max_excess` beyond a joint limit are refused and counted, never passed on."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..teleoperator import Freshness, TeleopCommand, TeleopDevice


@dataclass(frozen=True)
class LeaderArmMapping:
    """Absolute joint mapping: target = sign * raw + offset, clipped to [lower, upper]. A target further than
    `max_excess` beyond a limit is refused instead (ValueError): a miscalibrated offset or a wrapped encoder, not a
    pose to chase; within it, clipping covers a leader resting against its own stop."""

    names: tuple[str, ...]
    offsets: tuple[float, ...] = ()
    signs: tuple[float, ...] = ()
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()
    max_excess: float = math.inf
    _arrays: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        n = len(self.names)
        for name, default in (("offsets", 0.0), ("signs", 1.0), ("lower", -np.inf), ("upper", np.inf)):
            v = tuple(getattr(self, name)) or (default,) * n
            if len(v) != n:
                raise ValueError(f"leader arm {name}: {len(v)} values for {n} joints")
            self._arrays[name] = np.asarray(v, dtype=np.float64)

    def map(self, raw) -> dict[str, float]:
        raw = np.asarray(raw, dtype=np.float64)
        if raw.shape != (len(self.names),):
            raise ValueError(f"leader arm: {raw.shape} readings for {len(self.names)} joints")
        if not np.all(np.isfinite(raw)):
            raise ValueError("leader arm: non-finite reading")
        a = self._arrays
        target = a["signs"] * raw + a["offsets"]
        excess = np.maximum(a["lower"] - target, target - a["upper"])
        if np.any(excess > self.max_excess):
            i = int(np.argmax(excess))
            raise ValueError(
                f"leader arm: {self.names[i]} target {target[i]:.3f} is {excess[i]:.3f} beyond its limits "
                f"[{a['lower'][i]:.3f}, {a['upper'][i]:.3f}] (more than {self.max_excess})"
            )
        out = np.clip(target, a["lower"], a["upper"])
        return dict(zip(self.names, out.tolist(), strict=True))


class JointStateLeader(TeleopDevice):
    """A leader arm whose raw readings arrive as a JointState (fed by the node's callback), by name."""

    def __init__(
        self, mapping: LeaderArmMapping, raw_names: tuple[str, ...] = (), max_age_s: float = 0.0, clock=time.monotonic
    ):
        self.mapping = mapping
        self.raw_names = tuple(raw_names) or mapping.names
        if len(self.raw_names) != len(mapping.names):
            raise ValueError(f"leader arm: {len(self.raw_names)} raw names for {len(mapping.names)} joints")
        self.engaged = False
        self.readings = 0
        self.refused = 0
        self.last_refusal = ""
        self._raw: dict[str, float] = {}
        self._joints: dict[str, float] | None = None
        self._fresh = Freshness(max_age_s, clock)

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def feed(self, names, positions) -> bool:
        """Take one reading (by name; other names are ignored). A reading that maps to no valid target (non-finite,
        too far out of limits, names and values of different lengths) is refused and counted, and nothing is
        commanded until a valid one arrives."""
        if len(names) != len(positions):
            return self._refuse(f"{len(names)} names, {len(positions)} positions")
        raw = {**self._raw, **{n: float(v) for n, v in zip(names, positions, strict=True) if n in self.raw_names}}
        if all(n in raw for n in self.raw_names):
            try:
                joints = self.mapping.map([raw[n] for n in self.raw_names])
            except ValueError as e:
                self._raw = {}
                return self._refuse(str(e))
            self._joints = joints
            self._fresh.touch()
        self._raw = raw
        self.readings += 1
        return True

    def _refuse(self, why: str) -> bool:
        self.refused += 1
        self.last_refusal = why
        self._joints = None
        return False

    def stats(self) -> dict[str, int]:
        return {"readings": self.readings, "refused": self.refused}

    def read(self) -> TeleopCommand | None:
        if self._joints is None or not self._fresh.fresh():
            return None
        return TeleopCommand(engaged=self.engaged, joints=dict(self._joints))


class DynamixelLeader(TeleopDevice):
    """A leader arm of Dynamixel servos (protocol 2, present position) read with the dynamixel_sdk."""

    ADDR_PRESENT_POSITION = 132
    TICKS_PER_REV = 4096

    def __init__(self, mapping: LeaderArmMapping, port: str, ids: tuple[int, ...], baudrate: int = 1_000_000):
        if len(ids) != len(mapping.names):
            raise ValueError(f"dynamixel leader: {len(ids)} servo ids for {len(mapping.names)} joints")
        self.mapping, self.port_name, self.ids, self.baudrate = mapping, port, tuple(ids), int(baudrate)
        self.engaged = False
        self.refused = 0
        self.last_refusal = ""
        self._port = self._reader = None

    def connect(self) -> None:
        try:
            import dynamixel_sdk as sdk
        except ImportError:
            raise RuntimeError(
                "the Dynamixel leader arm needs the dynamixel_sdk package (pip install dynamixel-sdk); "
                "or feed the leader's readings as a JointState (source: topic)"
            ) from None
        if not Path(self.port_name).exists():
            raise OSError(f"dynamixel leader: no serial port {self.port_name}")
        self._port = sdk.PortHandler(self.port_name)
        packet = sdk.PacketHandler(2.0)
        if not self._port.openPort() or not self._port.setBaudRate(self.baudrate):
            raise OSError(f"dynamixel leader: cannot open {self.port_name} at {self.baudrate} baud")
        self._reader = sdk.GroupSyncRead(self._port, packet, self.ADDR_PRESENT_POSITION, 4)
        for i in self.ids:
            self._reader.addParam(i)

    def disconnect(self) -> None:
        if self._port is not None:
            self._port.closePort()
            self._port = None

    def read(self) -> TeleopCommand | None:
        if self._reader is None or self._reader.txRxPacket() != 0:
            return None
        ticks = []
        for i in self.ids:
            v = self._reader.getData(i, self.ADDR_PRESENT_POSITION, 4)
            ticks.append(v - (1 << 32) if v >= 1 << 31 else v)
        raw = (np.asarray(ticks, np.float64) - self.TICKS_PER_REV / 2) * (2 * np.pi / self.TICKS_PER_REV)
        try:
            joints = self.mapping.map(raw)
        except ValueError as e:
            self.refused += 1
            self.last_refusal = str(e)
            return None
        return TeleopCommand(engaged=self.engaged, joints=joints)

    def stats(self) -> dict[str, int]:
        return {"refused": self.refused}
