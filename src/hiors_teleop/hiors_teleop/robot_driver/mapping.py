"""How an existing robot driver's joints are the robot's (pure, no rclpy): the driver bridge's core.

A driver (a ros2_control joint_state_broadcaster, a vendor node) names its joints its own way, lists them in its
own order, may split them over several messages and gives grippers in its own units (often finger travel in m).
The graph wants `hiors_core.robots` names, a complete joint state in the robot's order, grippers as openings
0 (closed) .. 1 (open), and sends absolute position targets by those names. `DriverMap` holds the renaming, the
gripper scale and the command controller's joint order; `JointStateMerge` builds the robot's joint state from the
driver's messages; `DriverMap.command` turns a graph command into the controller's vector, refusing (never
clamping) anything non-finite, unknown or outside the robot's joint limits, so nothing such reaches the driver.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hiors_core.errors import BadInputError, ConfigError
from hiors_core.robots import RobotSpec


class Skipped(BadInputError):
    """A well-formed command that does not carry every joint of this controller (another controller's command,
    e.g. the gripper's alone): not forwarded, and not a fault."""


@dataclass(frozen=True)
class DriverMap:
    robot: RobotSpec
    driver_names: Mapping[str, str]  # robot joint name -> the driver's name for it (every robot joint)
    command_joints: tuple[str, ...]  # robot joint names, in the command controller's order
    gripper_closed: float = 0.0  # the driver's position of a closed gripper (the graph's 0)
    gripper_open: float = 1.0  # the driver's position of an open gripper (the graph's 1)

    @classmethod
    def build(
        cls,
        robot: RobotSpec,
        joint_map: Sequence[str] = (),
        command_joints: Sequence[str] = (),
        gripper_closed: float = 0.0,
        gripper_open: float = 1.0,
    ) -> DriverMap:
        """From the bridge's parameters: `joint_map` entries 'driver_name=robot_name' for the joints the driver
        names differently (the others keep the robot's names), `command_joints` the controller's joints by their
        driver names, in its order (empty: every robot joint in the robot's order). Raises ConfigError naming the
        entry that is wrong."""
        known = set(robot.joint_names)
        names = {j: j for j in robot.joint_names}
        for entry in (e for e in joint_map if e):
            driver, sep, ours = (s.strip() for s in entry.partition("="))
            if not sep or not driver or not ours:
                raise ConfigError(f"joint_map entry {entry!r}: expected 'driver_name=robot_joint_name'")
            if ours not in known:
                raise ConfigError(
                    f"joint_map entry {entry!r}: {robot.name} has no joint {ours!r}; its joints: {sorted(known)}"
                )
            names[ours] = driver
        by_driver: dict[str, str] = {}
        for ours, driver in names.items():
            if driver in by_driver:
                raise ConfigError(f"joint_map: driver joint {driver!r} is both {by_driver[driver]!r} and {ours!r}")
            by_driver[driver] = ours
        given = [c for c in command_joints if c]
        unknown = [c for c in given if c not in by_driver]
        if unknown:
            raise ConfigError(
                f"command_joints {unknown}: no robot joint has these driver names (joint_map maps {sorted(by_driver)})"
            )
        if len(set(given)) != len(given):
            raise ConfigError(f"command_joints {given}: a joint is listed twice")
        if not (math.isfinite(gripper_closed) and math.isfinite(gripper_open)) or gripper_open == gripper_closed:
            raise ConfigError(f"gripper_open {gripper_open} and gripper_closed {gripper_closed}: two different numbers")
        command = tuple(by_driver[c] for c in given) if given else robot.joint_names
        return cls(robot, names, command, float(gripper_closed), float(gripper_open))

    @property
    def grippers(self) -> frozenset[str]:
        return frozenset(a.gripper_name for a in self.robot.arms)

    @property
    def command_driver_names(self) -> list[str]:
        """The controller's joints by their driver names, in its order (JointTrajectory.joint_names)."""
        return [self.driver_names[j] for j in self.command_joints]

    def to_opening(self, value: float) -> float:
        return (value - self.gripper_closed) / (self.gripper_open - self.gripper_closed)

    def from_opening(self, opening: float) -> float:
        return self.gripper_closed + opening * (self.gripper_open - self.gripper_closed)

    def command(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """The controller's position vector (its joint order, driver units) for a graph command (robot joint names,
        rad, gripper openings 0..1). Raises BadInputError naming what is wrong for a command that must not reach
        the driver: names and positions of different lengths, a name twice, an unknown joint, a non-finite value,
        a value outside the robot's joint limits (hiors_core.robots; the whole command is refused, never clamped);
        Skipped for one that lacks some of the controller's joints."""
        names = list(names)
        try:
            values = np.asarray(positions, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise BadInputError("positions are not numbers") from None
        if len(names) != values.size:
            raise BadInputError(f"{len(names)} names but {values.size} positions")
        if len(set(names)) != len(names):
            raise BadInputError(f"a joint is named twice in {names}")
        index = {n: i for i, n in enumerate(self.robot.joint_names)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise BadInputError(f"unknown joints {unknown[:4]} (robot {self.robot.name})")
        if not np.all(np.isfinite(values)):
            raise BadInputError(
                f"non-finite positions for {[n for n, v in zip(names, values, strict=True) if not math.isfinite(v)][:4]}"
            )
        cols = [index[n] for n in names]
        lower, upper = self.robot.joint_lower[cols], self.robot.joint_upper[cols]
        outside = [n for n, v, lo, hi in zip(names, values, lower, upper, strict=True) if not lo <= v <= hi]
        if outside:
            raise BadInputError(f"outside the joint limits: {outside[:4]}")
        given = dict(zip(names, values.tolist(), strict=True))
        missing = [j for j in self.command_joints if j not in given]
        if missing:
            raise Skipped(f"lacks this controller's joints {missing[:4]}")
        grippers = self.grippers
        return np.array([self.from_opening(given[j]) if j in grippers else given[j] for j in self.command_joints])


class JointStateMerge:
    """The robot's joint state from a driver's JointState messages: renamed, in the robot's order, grippers as
    openings. Joints the robot does not have are ignored; the state is complete once every robot joint was seen
    (a driver may publish arms and grippers separately)."""

    def __init__(self, dmap: DriverMap):
        self.map = dmap
        self._ours = {driver: ours for ours, driver in dmap.driver_names.items()}
        self.position: dict[str, float] = {}
        self.velocity: dict[str, float] = {}

    def update(
        self, names: Sequence[str], positions: Sequence[float], velocities: Sequence[float] = ()
    ) -> tuple[list[str], list[float], list[float]] | None:
        """Take one driver message; return (names, positions, velocities) of the whole robot in its order once
        every joint is known (velocities empty unless every joint has one), else None. Raises BadInputError, and
        takes nothing of the message, when its lengths differ or a robot joint's position is not finite."""
        names = list(names)
        if len(positions) != len(names) or (len(velocities) and len(velocities) != len(names)):
            raise BadInputError(f"{len(names)} names, {len(positions)} positions, {len(velocities)} velocities")
        grippers = self.map.grippers
        pos, vel = {}, {}
        for i, driver in enumerate(names):
            ours = self._ours.get(driver)
            if ours is None:
                continue
            p = float(positions[i])
            if not math.isfinite(p):
                raise BadInputError(f"non-finite position of {driver!r}")
            scale = 1.0 / (self.map.gripper_open - self.map.gripper_closed) if ours in grippers else 1.0
            pos[ours] = self.map.to_opening(p) if ours in grippers else p
            if len(velocities) and math.isfinite(float(velocities[i])):
                vel[ours] = float(velocities[i]) * scale
        self.position.update(pos)
        self.velocity.update(vel)
        order = self.map.robot.joint_names
        if not all(j in self.position for j in order):
            return None
        velocity = [self.velocity[j] for j in order] if all(j in self.velocity for j in order) else []
        return list(order), [self.position[j] for j in order], velocity
