"""A `hiors up` run folder: what a run started with (RUN_FILE), where a resumed run continues (`previous_run`),
one `hiors up` at a time (`RunLock`), the nodes a killed run left behind (`stop_leftover_nodes`), and whether the
disk can take the run (`check_disk`, `free_bytes`).

A run folder that already holds a run resumes it: the episode count, the runner's seeds and episodes.csv's index
continue, the demonstrations and the starting policy on disk are reused, and the learner continues from its last
checkpoint (`hiors_learner.learner.resume_point`).
"""

from __future__ import annotations

import csv
import errno
import fcntl
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from hiors_core.episode_log import STATUS_ACKED, STATUS_COMPLETE, read_index
from hiors_core.errors import HiorsError

from .report import EPISODES_CSV

RUN_FILE = "run.json"  # robot, task, base, policy, seed of the run: a resume goes on with the same
LOCK_FILE = ".hiors-up.lock"
PIDS_FILE = "logs/nodes.pid"  # "name pid" per node process of the latest `hiors up` on this folder (processes.py)
MIB = 1 << 20
# Free space a run needs before it starts: a margin for checkpoints, logs and weights, plus an estimate per episode
# and demonstration still to record (the twin's bags at 224 px are 10-20 MiB; a real robot's cameras write more).
DISK_MARGIN = 256 * MIB
EPISODE_ESTIMATE = 32 * MIB
# Below this much free space a running run stops before a write fails.
DISK_STOP = 64 * MIB


@dataclass(frozen=True)
class PreviousRun:
    """What a run folder already holds."""

    identity: dict  # RUN_FILE's contents ({} when the folder predates it)
    episodes: int  # online episodes with a verdict (episodes.csv rows)
    episode_ids: frozenset[str]
    wall_s: float  # episodes.csv's last wall_s: the run's time so far
    started: int  # online episodes the recorder started (their seeds are used)
    demos: int  # demonstrations recorded to the end
    policy: bool  # policy/ holds a starting policy
    learner: object  # hiors_learner.learner.ResumePoint

    def line(self, run_dir: Path, target: int) -> str:
        """The one line `hiors up` says when it resumes."""
        lp = self.learner
        if lp.checkpoint is not None:
            learner = f"learner step {lp.step} (checkpoint)"
        elif lp.logged_step:
            learner = "learner step 0 (no checkpoint yet)"
        else:
            learner = "learner not started"
        lost = f", {lp.lost_steps} learner step(s) since it lost" if lp.lost_steps else ", no learner steps lost"
        m = f", m={lp.m:.3f}" if lp.m is not None else ""
        return (
            f"hiors up: resuming the run in {run_dir}: {self.episodes} of {target} episodes done, {self.demos} "
            f"demonstrations{', its starting policy' if self.policy else ''}, {learner}{m}{lost}"
        )


def _csv_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            return [r for r in csv.DictReader(f) if r.get("episode_id")]
    except OSError:
        return []


def previous_run(run_dir: Path) -> PreviousRun | None:
    """What `run_dir` holds of an earlier `hiors up`, or None when it holds none (a fresh run)."""
    from hiors_learner.learner import resume_point
    from hiors_policy.checkpoint import CONFIG_FILE

    run_dir = Path(run_dir)
    markers = (RUN_FILE, EPISODES_CSV, "learner", "demos", "policy", "episodes")
    if not any((run_dir / m).exists() for m in markers):
        return None
    try:
        identity = json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        identity = {}
    rows = _csv_rows(run_dir / EPISODES_CSV)
    try:
        wall = float(rows[-1].get("wall_s") or 0.0) if rows else 0.0
    except ValueError:
        wall = 0.0
    return PreviousRun(
        identity=identity if isinstance(identity, dict) else {},
        episodes=len(rows),
        episode_ids=frozenset(r["episode_id"] for r in rows),
        wall_s=wall,
        started=len(read_index(run_dir / "episodes" / "index.jsonl")),
        demos=sum(
            e.status in (STATUS_COMPLETE, STATUS_ACKED) for e in read_index(run_dir / "demos" / "index.jsonl").values()
        ),
        policy=(run_dir / "policy" / CONFIG_FILE).is_file(),
        learner=resume_point(run_dir / "learner"),
    )


def write_identity(run_dir: Path, identity: dict) -> None:
    from hiors_core.weight_sync import write_atomic

    write_atomic(run_dir / RUN_FILE, (json.dumps(identity, indent=1, sort_keys=True) + "\n").encode())


def check_identity(run_dir: Path, before: dict, now: dict) -> None:
    """A resumed run goes on with what it started with: a different robot, task, base or policy is refused."""
    wrong = [f"{k} {now[k]!r} (the run's: {before[k]!r})" for k in now if k in before and now[k] != before[k]]
    if wrong:
        raise HiorsError(
            f"--run-dir {run_dir} holds a run that started otherwise: {'; '.join(wrong)}; give the run's own, or a "
            "new --run-dir"
        )


class RunLock:
    """One `hiors up` per run folder: an exclusive lock on LOCK_FILE, released by the kernel when the process ends
    however it ends (node processes do not inherit it)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise HiorsError(f"--run-dir {run_dir} is in use by another `hiors up` (pid {other})") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _node_of_run(pid: int, run_dir: Path) -> bool:
    """Whether `pid` is a node process started for this run folder (its command line names the folder's params)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(Path(run_dir).resolve() / "params") in cmdline or str(Path(run_dir) / "params") in cmdline


def leftover_nodes(run_dir: Path) -> dict[str, int]:
    """Node processes of an earlier `hiors up` on this folder that are still running (name -> pid)."""
    try:
        lines = (Path(run_dir) / PIDS_FILE).read_text().splitlines()
    except OSError:
        return {}
    alive = {}
    for line in lines:
        name, _, pid = line.partition(" ")
        if pid.strip().isdigit() and _node_of_run(int(pid), run_dir):
            alive[name] = int(pid)
    return alive


def stop_leftover_nodes(run_dir: Path, say, timeout_s: float = 30.0) -> None:
    """Wait for the nodes of a killed `hiors up` on this folder to finish stopping (they get SIGINT when it dies);
    SIGINT, then SIGKILL, what is still running after `timeout_s`. Two graphs on one folder would answer each
    other's services (a new episode started on the old recorder ends at once, empty)."""
    alive = leftover_nodes(run_dir)
    if not alive:
        return
    say(f"hiors up: waiting for {len(alive)} node(s) of the previous run to stop: {', '.join(sorted(alive))}")
    deadline = time.monotonic() + timeout_s
    signalled = False
    while alive:
        if time.monotonic() > deadline:
            if signalled:
                for pid in alive.values():
                    _signal(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5.0
            else:
                for pid in alive.values():
                    _signal(pid, signal.SIGINT)
                deadline = time.monotonic() + 10.0
                signalled = True
        time.sleep(0.2)
        alive = leftover_nodes(run_dir)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


# --- disk -----------------------------------------------------------------------------------------------------------


def free_bytes(path: Path) -> int:
    """Free bytes for this user on the filesystem holding `path` (its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def check_disk(run_dir: Path, need: int) -> None:
    """Before anything starts: `run_dir` (made if missing) takes files and its filesystem has `need` bytes free.
    Raises HiorsError naming the folder otherwise."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".hiors-write-test-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as e:
        why = "no space left" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e)).lower()
        raise HiorsError(f"run folder {run_dir} is not writable: {why}") from None
    free = free_bytes(run_dir)
    if free < need:
        raise HiorsError(
            f"run folder {run_dir}: {free / MIB:.0f} MiB free on its disk, the run needs about {need / MIB:.0f} MiB; "
            "free some space or give another --run-dir"
        )


def disk_need(episodes: int, demos: int) -> int:
    return DISK_MARGIN + (max(episodes, 0) + max(demos, 0)) * EPISODE_ESTIMATE
