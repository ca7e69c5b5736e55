"""The simulated operator's hands on the device: what a person's Quest 3 or leader arm would send (pure, no rclpy).

`SimOperator` (operator.py) decides, from each task state, whether the person drives and what they want the robot to
do (an absolute action in the task's layout). `OperatorDevice` turns that into the device's output, in one place for
`sim_operator` (which publishes it as Joy / PoseStamped / JointState) and for in-process runs (which feed it to the
arbiter's core as the arbiter node would):

  Tora One (Quest 3, relative end-effector control with a clutch): clutch held, the hand's motion since the clutch
  engaged (`QuestHand`, steered by eye from the measured pose) and the trigger for the gripper;
  X-Trainer (leader arm, absolute joints): "leader engaged", the joint targets, and the trigger from the commanded
  arm's gripper opening;
  both, with `episode_buttons`: the success or failure button, once, when the episode is over.

A new scene (another seed or cell, or the step counter going back) starts the operator afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .operator import (
    AXIS_TRIGGER,
    BUTTON_CLUTCH,
    BUTTON_FAILURE,
    BUTTON_SUCCESS,
    OperatorConfig,
    QuestHand,
    SimOperator,
    is_ee_task,
    trigger_from_opening,
)
from .tasks import Task, make_task

JOY_BUTTONS = 4  # clutch, start, success, failure (operator.py's Joy layout)


@dataclass(frozen=True)
class DeviceOutput:
    """One message's worth of device output (see the module docstring)."""

    engaged: bool  # clutch / "leader engaged" held: the human drives
    trigger: float = 0.0  # 0 released (gripper open) .. 1 pressed (closed)
    ee_delta: tuple[np.ndarray, np.ndarray] | None = None  # Tora One while engaged: (dp, dq xyzw) since engage
    joint_names: tuple[str, ...] = ()  # X-Trainer while engaged: absolute joint targets
    joint_positions: np.ndarray | None = None
    success_button: bool = False
    failure_button: bool = False
    reason: str = ""  # why the operator took over or handed back (on the state where it did)

    @property
    def buttons(self) -> list[int]:
        b = [0] * JOY_BUTTONS
        b[BUTTON_CLUTCH] = int(self.engaged)
        b[BUTTON_SUCCESS] = int(self.success_button)
        b[BUTTON_FAILURE] = int(self.failure_button)
        return b

    @property
    def axes(self) -> list[float]:
        a = [0.0] * (AXIS_TRIGGER + 1)
        a[AXIS_TRIGGER] = float(self.trigger)
        return a


class OperatorDevice:
    """`SimOperator` plus the device encoding, fed one task state (a dict, `SimRobot.task_state()`) at a time."""

    def __init__(self, task: str | Task, config: OperatorConfig | None = None, episode_buttons: bool = False):
        self.task = task if isinstance(task, Task) else make_task(task)
        self.operator = SimOperator(self.task, config)
        self.episode_buttons = bool(episode_buttons)
        self.ee_mode = is_ee_task(self.task)
        self.hand = QuestHand()
        self._hand_engaged = False
        self._ended = False
        self._key = None
        self._last_step = 0

    def reset(self) -> None:
        """A new scene: the operator starts watching afresh, hand off the clutch."""
        self.operator.reset()
        self._hand_engaged = False
        self._ended = False

    def update(self, state: dict) -> DeviceOutput:
        key = (state.get("seed"), state.get("cell"))
        if key != self._key or state["step"] < self._last_step:
            self.reset()
        self._key, self._last_step = key, state["step"]
        out = self.operator.update(state)
        fields: dict = {"engaged": False, "reason": out.reason}
        if out.engaged and out.action is not None:
            a = np.asarray(out.action, dtype=float)
            fields["engaged"] = True
            if self.ee_mode:
                if not self._hand_engaged:
                    self.hand.reset()  # clutch pressed: the relative command starts at zero
                    self._hand_engaged = True
                ee = state["proprio"]["ee"][self.task.arm]
                fields["ee_delta"] = self.hand.update(a[:3], a[3:7], ee["pos"], ee["quat_xyzw"])
                fields["trigger"] = trigger_from_opening(a[7])
            else:
                names = tuple(self.task.layout.names)
                fields["joint_names"], fields["joint_positions"] = names, a.copy()
                grips = [float(v) for n, v in zip(names, a, strict=True) if n == f"{self.task.arm}_gripper"]
                fields["trigger"] = trigger_from_opening(grips[0] if grips else 1.0)
        else:
            self._hand_engaged = False
        if (
            self.episode_buttons
            and not self._ended
            and (state.get("success") or state.get("failed") or state.get("timed_out"))
        ):
            self._ended = True
            fields["success_button" if state.get("success") else "failure_button"] = True
        return DeviceOutput(**fields)
