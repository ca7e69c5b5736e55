"""The episode and sample schema in numpy: what the recorder writes, the log stores and the learner trains on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AUTHORITY_HOLD = 0  # = ControlState.AUTHORITY_HOLD
AUTHORITY_POLICY = 1
AUTHORITY_HUMAN = 2


@dataclass
class Frame:
    """One observation as recorded: what the policy saw at control step `step`."""

    step: int
    stamp_ns: int
    images: dict[str, np.ndarray]  # camera name -> HxWx3 uint8 (rgb)
    state: np.ndarray  # (S,) float32
    state_names: tuple[str, ...] = ()
    instruction: str = ""
    sequence: int = 0


@dataclass
class Executed:
    """One command the arbiter actually sent to the robot."""

    step: int
    stamp_ns: int
    action: np.ndarray  # (D,) float32
    authority: int
    source: str = ""
    policy_version: int = 0
    clamped: bool = False
    is_sample: bool = False

    @property
    def is_human(self) -> bool:
        return self.authority == AUTHORITY_HUMAN


@dataclass
class Label:
    reward: float
    success: bool
    source: str = "human"
    stamp_ns: int = 0


@dataclass
class EpisodeMeta:
    episode_id: str
    robot: str
    task: str
    instruction: str
    control_mode: int
    action_names: tuple[str, ...]
    state_names: tuple[str, ...] = ()
    camera_names: tuple[str, ...] = ()
    control_rate_hz: float = 25.0


@dataclass
class EpisodeData:
    """A whole episode: its recorded frames, every executed command, and its label (None while unlabelled)."""

    meta: EpisodeMeta
    frames: list[Frame] = field(default_factory=list)
    executed: list[Executed] = field(default_factory=list)
    label: Label | None = None

    @property
    def episode_return(self) -> float:
        """R(tau): the sum of the episode's rewards (one terminal label per episode here)."""
        return float(self.label.reward) if self.label is not None else float("nan")

    @property
    def actions(self) -> np.ndarray:
        """(T, D) executed commands in step order."""
        if not self.executed:
            return np.zeros((0, len(self.meta.action_names)), np.float32)
        return np.stack([e.action for e in self.executed]).astype(np.float32)

    @property
    def human_mask(self) -> np.ndarray:
        """(T,) True where the human drove the step."""
        return np.array([e.is_human for e in self.executed], dtype=bool)

    @property
    def interventions(self) -> int:
        """Number of takeovers: rising edges of the human mask."""
        m = self.human_mask.astype(np.int8)
        return int(np.sum(np.diff(np.concatenate([[0], m])) == 1))


@dataclass
class TrainingSample:
    """One sample for the learner: an observation and the chunk of the next H executed commands after it."""

    images: dict[str, np.ndarray]
    state: np.ndarray  # (S,)
    action_label: np.ndarray  # (H, D)
    instruction: str
    is_human: bool = False
    episode_id: str = ""
    step: int = 0
    weight: float = 1.0
    state_names: tuple[str, ...] = ()  # names of `state`'s entries; the policy picks its own by name
