"""`hiors bench hold`: how much of the time the policy should drive the robot stands still, waiting for a chunk.

Measured under the demo's own load: each alternative is a real `hiors up <robot> --sim` run (the ten node
processes, the learner training beside them), on a private ROS domain, its bags read afterwards. The alternatives
run in turns, their order rotated each round, so that they share the machine's load:

  legacy      a chunk per observation; the arbiter holds at k_auto until a newer chunk is there (before requests)
  sequential  the arbiter asks when the chunk has run out at k_auto and holds until the next (the paper's loop)
  early       the arbiter asks the measured latency ahead and runs a chunk on past k_auto (the default)

The hold share of an episode (pure, from its ExecutedCommand authorities) is the share of hold steps among the
steps the human does not drive: hold / (hold + policy). The wait for an episode's first chunk is counted, and also
reported apart (start_hold), as are the hold runs' lengths.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hiors_core.schema import AUTHORITY_HOLD, AUTHORITY_HUMAN, AUTHORITY_POLICY

# bench size -> (rounds, episodes per run, robots)
SIZES = {"tiny": (1, 1, ("tora_one",)), "small": (2, 3, ("tora_one",)), "full": (3, 6, ("tora_one", "xtrainer"))}

# name -> `hiors up --set` values
SCHEDULES: dict[str, tuple[str, ...]] = {
    "legacy": ("policy.infer_on=observation", "arbiter.chunk_schedule=sequential"),
    "sequential": ("policy.infer_on=request", "arbiter.chunk_schedule=sequential"),
    "early": ("policy.infer_on=request", "arbiter.chunk_schedule=early"),
}


@dataclass(frozen=True)
class HoldStats:
    """One episode's control steps by authority, and its hold runs."""

    policy: int
    hold: int
    human: int
    start_hold: int  # holds before the episode's first policy or human step
    runs: tuple[int, ...]  # lengths of the hold runs, in order

    @property
    def share(self) -> float:
        """Hold share of the policy's time: hold / (hold + policy); 0 for an episode the human drove throughout."""
        return self.hold / (self.hold + self.policy) if self.hold + self.policy else 0.0


def hold_stats(authorities: Sequence[int]) -> HoldStats:
    """Counts from an episode's authorities (ExecutedCommand.authority per control step, in step order)."""
    counts = {AUTHORITY_POLICY: 0, AUTHORITY_HOLD: 0, AUTHORITY_HUMAN: 0}
    runs: list[int] = []
    run = 0
    start = None
    for a in authorities:
        a = int(a)
        if a not in counts:
            raise ValueError(f"unknown authority {a} (expected hold 0, policy 1 or human 2)")
        counts[a] += 1
        if a == AUTHORITY_HOLD:
            run += 1
            continue
        if start is None:
            start = run
        if run:
            runs.append(run)
        run = 0
    if run:
        runs.append(run)
    return HoldStats(
        policy=counts[AUTHORITY_POLICY],
        hold=counts[AUTHORITY_HOLD],
        human=counts[AUTHORITY_HUMAN],
        start_hold=counts[AUTHORITY_HOLD] if start is None else start,
        runs=tuple(runs),
    )


def pooled(episodes: Sequence[HoldStats]) -> dict:
    """One schedule's figures over its episodes: the hold share of all their policy time (pooled, so a short episode
    weighs by its length), the share without the waits for the episodes' first chunks, and the hold runs."""
    hold = sum(e.hold for e in episodes)
    policy = sum(e.policy for e in episodes)
    start = sum(e.start_hold for e in episodes)
    human = sum(e.human for e in episodes)
    runs = sorted(r for e in episodes for r in e.runs)
    total = hold + policy
    return {
        "episodes": len(episodes),
        "policy_steps": policy,
        "hold_steps": hold,
        "hold_share": hold / total if total else 0.0,
        "hold_share_after_start": (hold - start) / (total - start) if total - start > 0 else 0.0,
        "start_hold_mean": start / len(episodes) if episodes else 0.0,
        "longest_hold": runs[-1] if runs else 0,
        "hold_runs_over_10": sum(r > 10 for r in runs),
        "human_share": human / (total + human) if total + human else 0.0,
    }


def read_run(run_dir: Path) -> list[HoldStats]:
    """Every finished episode bag of a `hiors up` run folder."""
    from hiors_core.episode_log import read_episode_bag

    out = []
    for bag in sorted((run_dir / "episodes").glob("ep-*")):
        if (bag / "metadata.yaml").exists():
            ep = read_episode_bag(bag)
            if ep.executed:
                out.append(hold_stats([e.authority for e in ep.executed]))
    return out


def _hiors() -> list[str]:
    exe = Path(sys.executable).parent / "hiors"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hiors_bringup.cli"]


def run_demo(robot: str, schedule: str, episodes: int, run_dir: Path, base: str, domain: int, timeout_s: float):
    """One `hiors up --sim` run with `schedule`'s parameters on ROS domain `domain`; its episodes' HoldStats."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown chunk schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cmd = [*_hiors(), "up", robot, "--sim", "--episodes", str(episodes), "--run-dir", str(run_dir)]
    cmd += ["--base", base] if base else ["--demos", "0"]
    for s in SCHEDULES[schedule]:
        cmd += ["--set", s]
    # A graph of its own: two graphs on one domain hear each other's clocks, chunks and resets.
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    log = run_dir.parent / f"{run_dir.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        rc = subprocess.call(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=timeout_s)
    eps = read_run(run_dir)
    if rc != 0 or not eps:
        raise RuntimeError(f"hiors up {robot} ({schedule}) failed (exit {rc}, {len(eps)} episodes): see {log}")
    return eps


def default_base(robot: str) -> str:
    """runs/base-<robot> when `hiors pretrain` made one (the demo starts from it), else '' (the tiny policy)."""
    path = Path("runs") / f"base-{robot}"
    return str(path) if (path / "policy").is_dir() else ""


def run(
    out: Path,
    robots: Sequence[str] = ("tora_one",),
    rounds: int = 2,
    episodes: int = 3,
    schedules: Sequence[str] = tuple(SCHEDULES),
    timeout_s: float = 900.0,
) -> list[dict]:
    """Rows, one per robot and schedule, pooled over `rounds` runs of `episodes` episodes each."""
    domain = 20 + os.getpid() % 80
    rows = []
    for robot in robots:
        base = default_base(robot)
        got: dict[str, list[HoldStats]] = {s: [] for s in schedules}
        for r in range(rounds):
            order = list(schedules[r % len(schedules) :]) + list(schedules[: r % len(schedules)])
            for s in order:
                got[s] += run_demo(robot, s, episodes, out / "hold_runs" / f"{robot}-{s}-{r}", base, domain, timeout_s)
        legacy = pooled(got["legacy"])["hold_share"] if "legacy" in got else 0.0
        for s in schedules:
            row = {"robot": robot, "schedule": s, "base": base or "tiny", **pooled(got[s])}
            row["hold_over_legacy"] = row["hold_share"] / legacy if legacy > 0 else ""
            rows.append(row)
    return rows


def figure(size: str) -> tuple[list[dict], list[str], tuple[str, str]]:
    """`hiors bench hold`: the rows, their columns and the bar (schedule, hold share); the runs' folders are
    temporary."""
    import tempfile

    rounds, episodes, robots = SIZES[size]
    with tempfile.TemporaryDirectory(prefix="hiors-hold-") as tmp:
        rows = run(Path(tmp), robots=robots, rounds=rounds, episodes=episodes)
    for r in rows:
        r["schedule"] = f"{r['robot']}/{r['schedule']}" if len(robots) > 1 else r["schedule"]
    return rows, list(rows[0]), ("schedule", "hold_share")
