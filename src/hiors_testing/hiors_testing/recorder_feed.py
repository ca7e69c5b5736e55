"""Feeding a recorder node's callbacks directly: sampled commands with their frames, on sim time."""

from __future__ import annotations

import numpy as np

from hiors_core.convert_ros import observation_msg, time_msg
from hiors_core.schema import Frame
from hiors_msgs.msg import ExecutedCommand


def record_commands(rec, steps: int, t0_ns: int = 1_000_000_000) -> None:
    """`steps` sampled commands with frames on sim time (t0_ns on), fed to the recorder's callbacks."""
    for t in range(steps):
        stamp = t0_ns + t * 40_000_000
        frame = Frame(t, stamp - 1, {"top": np.zeros((4, 4, 3), np.uint8)}, np.ones(2, np.float32), ("x", "y"))
        rec.on_observation(observation_msg(frame, "tora_one", "raise_hand"))
        msg = ExecutedCommand(step=t, action_names=[f"a{i}" for i in range(8)], action=[float(t)] * 8, is_sample=True)
        msg.header.stamp = time_msg(stamp)
        rec.on_executed(msg)
