"""Per-task state and action layouts, defined once from the task registry `hiors_core.tasks` (pure, no rclpy).

State layout (what `Observation.state` carries, in this order):
  1. joint positions (rad) of the arm(s) the task uses, arm by arm, in `ArmSpec.joint_names` order;
  2. the gripper opening(s) of those arms (0 closed .. 1 open), same arm order;
  3. for end-effector tasks only: the end-effector pose of the commanded arm in the robot's base frame,
     `<arm>_ee_x, _ee_y, _ee_z` (m) and `<arm>_ee_qx, _ee_qy, _ee_qz, _ee_qw` (unit quaternion, xyzw);
  4. for goal-state policies only (`goal=True`, the twin's privileged variant): the task's goal entries
     (`TaskSpec.goal_names`, e.g. the target pose), read from the twin's task state. Camera-only policies (the
     default, and the only kind a real robot can feed) see the goal through their cameras alone.

Action layout: `hiors_core.robots.ee_layout(arm)` (absolute EE pose + gripper, 8 columns) for end-effector tasks
(Tora One with the Quest 3), `joint_layout(robot)` (all joints, then grippers) for joint tasks (X-Trainer with
the leader arm).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hiors_core.robots import MODE_EE_POSE, ActionLayout, ee_layout, get_robot, joint_layout
from hiors_core.tasks import get_task

EE_STATE_SUFFIXES = ("ee_x", "ee_y", "ee_z", "ee_qx", "ee_qy", "ee_qz", "ee_qw")


def task_instruction(robot: str, task: str) -> str:
    """The instruction every Observation of the task carries: the registry's one prompt per task, which the
    scripted demonstrations and `hiors eval` also give the policy (through the twin's task)."""
    return get_task(task, robot).instruction


def state_layout(robot: str, task: str, goal: bool = False) -> tuple[str, ...]:
    """Names of the state vector's entries for one robot and task (see the module docstring); `goal` appends the
    task's goal entries."""
    spec = get_task(task, robot)
    rs = get_robot(robot)
    arms = [rs.arm(a) for a in spec.arms]
    names = [j for a in arms for j in a.joint_names] + [a.gripper_name for a in arms]
    if spec.mode == MODE_EE_POSE:
        names += [f"{spec.commanded_arm}_{s}" for s in EE_STATE_SUFFIXES]
    if goal:
        names += spec.goal_names
    return tuple(names)


def has_goal_state(names: Sequence[str], robot: str, task: str) -> bool:
    """Whether a policy whose state is `names` needs the task's goal entries (a goal-state policy)."""
    goal = get_task(task, robot).goal_names
    return bool(goal) and any(n in goal for n in names)


def action_layout(robot: str, task: str) -> ActionLayout:
    spec = get_task(task, robot)
    if spec.mode == MODE_EE_POSE:
        return ee_layout(spec.commanded_arm)
    return joint_layout(get_robot(robot))


def ee_arms(robot: str, task: str) -> tuple[str, ...]:
    """Arms whose measured EE pose the state needs (subscribe topics.EE_POSE for each)."""
    spec = get_task(task, robot)
    return (spec.commanded_arm,) if spec.mode == MODE_EE_POSE else ()


def state_in_order(state, names: Sequence[str], want: Sequence[str]) -> np.ndarray:
    """`state`, whose entries `names` names, as the entries `want` in that order (unchanged when the names already
    match). Raises ValueError naming the missing entries, or that names and values differ in length."""
    state = np.asarray(state).reshape(-1)
    names, want = tuple(names), tuple(want)
    if names == want:
        return state
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in want if n not in index]
    if missing or len(names) != state.size:
        raise ValueError(f"state lacks {missing[:6]} (or names and values differ in length)")
    return state[[index[n] for n in want]]


def assemble_state(
    names: Sequence[str],
    joints: Mapping[str, float],
    ee_poses: Mapping[str, Sequence[float]],
    goal: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The float32 state vector named by `names` (`state_layout`) from joint positions by name (grippers
    included, as `JointState` carries them), end-effector poses by arm as (x, y, z, qx, qy, qz, qw) and, for
    goal-state policies, the task's goal entries by name (the twin's `task_state()["goal"]`).
    The one mapping used by the capture node (from JointState + PoseStamped) and by in-process twins
    (`hiors eval`, scripted demonstrations). Raises KeyError naming every missing entry."""
    values, missing = [], []
    for n in names:
        arm, sep, key = n.partition("_ee_")
        if sep and ("ee_" + key) in EE_STATE_SUFFIXES:
            pose = ee_poses.get(arm)
            if pose is None or len(pose) != len(EE_STATE_SUFFIXES):
                missing.append(n)
                continue
            values.append(pose[EE_STATE_SUFFIXES.index("ee_" + key)])
        elif n in joints:
            values.append(joints[n])
        elif goal is not None and n in goal:
            values.append(goal[n])
        else:
            missing.append(n)
    if missing:
        raise KeyError(f"no value for state entries {missing}")
    return np.asarray(values, dtype=np.float32)
