"""The task registry: every task's facts in one place (pure, no rclpy).

Each task names its robot, its one natural-language instruction, the arms whose joints are in the state, its
control mode, the arm it commands and the human input device. The capture node, the scripted demonstrations,
`hiors eval`, the policy's config, the tiny tokenizer's training strings, the simulated scenes
(`hiors_sim.tasks`) and the graph (`hiors_bringup.graph`) all read it, so a prompt cannot differ between the
data a task is trained on and the episodes it is run or evaluated in. A new task is one entry in `_TASKS` (and a
scene class for the twin).

Control modes are the arbiter's parameter values: "ee" (absolute end-effector pose of `commanded_arm` +
gripper, `robots.ee_layout`) or "joint" (all joints of the robot, then grippers, `robots.joint_layout`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .errors import ConfigError
from .robots import CONTROL_MODES, MODE_EE_POSE, get_robot


class UnknownTaskError(ConfigError, KeyError):
    """A task name that is not in the registry, or not a task of the given robot. A KeyError too, so code that
    looks a task up by name (the twin's reset service) refuses it like any other unknown key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    robot: str
    instruction: str  # the one prompt of this task: demonstrations, online episodes and evaluation
    arms: tuple[str, ...]  # arms whose joints (then grippers) are in the state, in this order
    control_mode: str  # "ee" | "joint" (see the module docstring)
    commanded_arm: str  # the arm an "ee" task commands; "" for joint tasks (they command every joint)
    human_source: str  # the human input device: "quest3" | "leader_arm" (ActionChunk/Executed source name)
    # The task's goal as named values (base frame, m; quaternions xyzw), for the twin's goal-state policies only:
    # a variant whose state also carries where the goal is, which the cameras alone show on the real robot.
    goal_names: tuple[str, ...] = ()

    @property
    def mode(self) -> int:
        """ActionChunk.MODE_* of the control mode."""
        return CONTROL_MODES[self.control_mode]


POSE_GOAL = ("goal_x", "goal_y", "goal_z", "goal_qx", "goal_qy", "goal_qz", "goal_qw")
PLACE_GOAL = ("object_x", "object_y", "object_z", "goal_x", "goal_y", "goal_z")


def _task(
    name, robot, instruction, arms, control_mode="", commanded_arm="", human_source="", goal_names=()
) -> TaskSpec:
    """A registry entry; control mode and human input device default to the robot's (`RobotSpec`)."""
    rs = get_robot(robot)
    spec = TaskSpec(
        name=name,
        robot=robot,
        instruction=instruction,
        arms=tuple(arms),
        control_mode=control_mode or rs.control_mode,
        commanded_arm=commanded_arm,
        human_source=human_source or rs.human_source,
        goal_names=tuple(goal_names),
    )
    for arm in (*spec.arms, *([spec.commanded_arm] if spec.commanded_arm else [])):
        rs.arm(arm)  # KeyError naming the robot's arms
    if spec.control_mode not in CONTROL_MODES:
        raise ConfigError(f"task {name!r}: control mode must be one of {sorted(CONTROL_MODES)}")
    if (spec.mode == MODE_EE_POSE) != bool(spec.commanded_arm):
        raise ConfigError(f"task {name!r}: an 'ee' task names its commanded arm, a 'joint' task none")
    return spec


_TASKS: tuple[TaskSpec, ...] = (
    _task(
        "raise_hand", "tora_one", "raise your left hand to the target", ("left",), "ee", "left", goal_names=POSE_GOAL
    ),
    _task(
        "pack_detergent",
        "tora_one",
        "pick the detergent bottle off the conveyor and put it into the box",
        ("left",),
        "ee",
        "left",
        goal_names=PLACE_GOAL,
    ),
    _task(
        "insert_moisturizer",
        "xtrainer",
        "pick up the moisturizer and insert it into the base",
        ("left", "right"),
        "joint",
        goal_names=PLACE_GOAL,
    ),
)

TASKS: dict[str, TaskSpec] = {t.name: t for t in _TASKS}


def get_task(name: str, robot: str | None = None) -> TaskSpec:
    """The registered task `name`; with `robot`, also checks that the task runs on that robot. Raises
    UnknownTaskError naming the known tasks (and the closest name)."""
    spec = TASKS.get(name)
    if spec is None:
        close = difflib.get_close_matches(str(name), list(TASKS), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownTaskError(f"unknown task {name!r}; {hint}known tasks: {list(TASKS)}")
    if robot is not None and spec.robot != robot:
        get_robot(robot)  # an unknown robot is named as such
        raise UnknownTaskError(
            f"robot {robot!r} has no task {name!r}; known tasks of {robot}: {list(tasks_for(robot))}"
        )
    return spec


def tasks_for(robot: str) -> tuple[str, ...]:
    """The robot's tasks in registry order; the first is the robot's default task. Raises KeyError for an
    unknown robot."""
    get_robot(robot)
    return tuple(t.name for t in _TASKS if t.robot == robot)


def default_task(robot: str) -> str:
    names = tasks_for(robot)
    if not names:
        raise UnknownTaskError(f"robot {robot!r} has no registered task")
    return names[0]


def task_or_default(robot: str, task: str = "") -> TaskSpec:
    """The robot's task `task`, or its default task when `task` is "" (as the graph's `task` argument means)."""
    return get_task(task or default_task(robot), robot)
