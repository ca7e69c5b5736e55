"""The parameters of the episode_runner node (type, default, range, description): pure, so `hiors up` checks
values against them before any node starts (hiors_core.params)."""

from __future__ import annotations

from hiors_core.params import Param
from hiors_core.robots import ROBOTS

EPISODE_RUNNER = {
    "robot": Param("tora_one", "robot kind", choices=tuple(ROBOTS), read_only=True),
    "task": Param("", "task to run ('' = the sim's current task)", read_only=True),
    "episodes": Param(10, "episodes to run, then idle", 0, 1_000_000),
    "seed": Param(0, "seed of the first episode; episode k uses seed + k", 0, 2**31),
    "episode_time_s": Param(12.0, "sim seconds before an unlabelled episode is ended as a failure", 0.1, 3600.0),
    "label_grace_s": Param(3.0, "extra seconds to wait for the oracle's label", 0.0, 600.0),
    "pause_s": Param(0.5, "sim seconds between episodes (the robot is idle; the learner keeps training)", 0.0, 600.0),
    "policy_wait_s": Param(
        300.0, "wall seconds to wait for the actor's first chunk before the first episode", 0.0, 86_400.0
    ),
    "await_trained_policy_s": Param(
        0.0,
        "wall seconds to wait, before each episode after the first, until the actor runs weights the learner "
        "trained and published since the last episode began (0 = never: collection does not wait for learning)",
        0.0,
        86_400.0,
    ),
    "settle_s": Param(
        0.0,
        "sim seconds the task must stay successful before the episode ends (0 = at the first successful state: the "
        "simulated operator lets go when it sees success, and a policy that does not hold the goal leaves it "
        "within a few control steps)",
        0.0,
        60.0,
    ),
}
