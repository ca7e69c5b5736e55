"""Reliability and security, with counts: fault injection into a running loop, malformed input, load, soak, access.

Two parts:
- `FaultRun` (and `process_sample`): the `hiors up` loop as separate node processes, with SIGKILL / restart of any
  node at seeded moments and a watcher on the command stream, so tests (tests/reliability) can check what the loop
  guarantees when parts of it die.
- `run_reliability(run_dir, full)`: runs the reliability suite (tests/reliability; the CI subset, or everything
  with `full`), prints one table of what was checked with its counts, and writes it as CSV.
  `python -m hiors_bench.reliability [--full] [--run-dir DIR]` does the same from a shell.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

FACTS_ENV = "HIORS_RELIABILITY_FACTS"  # tests append one JSON row per fact to this file when it is set
FACT_FIELDS = ["section", "check", "count", "expected", "ok", "detail"]
SECTIONS = ("faults", "fuzz", "load", "soak", "access")


# --- process health -------------------------------------------------------------------------------------------------


def process_sample(pid: int) -> dict[str, int]:
    """RSS (bytes), open file descriptors and threads of one process (Linux /proc; psutil for the RSS)."""
    import psutil

    p = psutil.Process(pid)
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        fds = p.num_fds()
    return {"rss": int(p.memory_info().rss), "fds": fds, "threads": p.num_threads()}


def growth(samples: list[int], warmup: float = 0.3) -> tuple[int, int]:
    """(level after warm-up, growth to the end) of a series sampled at regular intervals: the first `warmup` of it
    is skipped; the level is the median of the next third, the growth the median of the last third minus that
    level (medians, so that one spike, a garbage collection or a chunk buffer, does not count as growth)."""
    if len(samples) < 3:
        return (samples[0] if samples else 0), 0
    start = int(len(samples) * warmup)
    base = sorted(samples[start : start + max(1, (len(samples) - start) // 3)])
    tail = sorted(samples[-max(1, (len(samples) - start) // 3) :])
    b = base[len(base) // 2]
    return b, tail[len(tail) // 2] - b


# --- fault injection into a running loop ----------------------------------------------------------------------------


@dataclass
class Kill:
    node: str
    wall: float  # time.monotonic() of the SIGKILL
    last_step_before: int  # newest ExecutedCommand step seen before the kill
    restarted: float = 0.0
    note: str = ""


@dataclass
class FaultRunOptions:
    robot: str = "tora_one"
    run_dir: str = ""
    demos: int = 2
    seed: int = 0
    episodes: int = 1000  # the episode runner's budget; the test decides when to stop
    overrides: tuple = ()  # (node, key, value) parameter overrides


class Watch:
    """A node of its own (own context) that records the command stream (ExecutedCommand), the policy's chunks and
    the learner's status, with the wall time each arrived."""

    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from hiors_core import topics
        from hiors_msgs.msg import ActionChunk, ExecutedCommand, LearnerStatus

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("hiors_reliability_watch", context=self.context)
        self.lock = threading.Lock()
        self.executed: list[tuple[float, int, int, int, str]] = []  # (wall, step, authority, version, source)
        self.chunks: list[tuple[float, int]] = []  # (wall, policy_version)
        self.status = None
        self.node.create_subscription(
            ExecutedCommand, topics.EXECUTED, self._on_exec, topics.qos(topics.EXECUTED, "monitor")
        )
        self.node.create_subscription(ActionChunk, topics.ACTION_CHUNK, self._on_chunk, topics.qos(topics.ACTION_CHUNK))
        self.node.create_subscription(
            LearnerStatus, topics.LEARNER_STATUS, self._on_status, topics.qos(topics.LEARNER_STATUS)
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_exec(self, msg) -> None:
        with self.lock:
            self.executed.append(
                (time.monotonic(), int(msg.step), int(msg.authority), int(msg.policy_version), msg.source)
            )

    def _on_chunk(self, msg) -> None:
        with self.lock:
            self.chunks.append((time.monotonic(), int(msg.policy_version)))

    def _on_status(self, msg) -> None:
        self.status = msg

    def last_step(self) -> int:
        with self.lock:
            return self.executed[-1][1] if self.executed else -1

    def since(self, wall: float) -> list[tuple[float, int, int, int, str]]:
        with self.lock:
            return [e for e in self.executed if e[0] >= wall]

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


class FaultRun:
    """The `hiors up --sim` graph as processes, plus kill/restart at seeded moments. Use as a context manager."""

    def __init__(self, opts: FaultRunOptions):
        from hiors_bringup.graph import GraphArgs, robot_graph
        from hiors_bringup.up import UpOptions, _apply_overrides

        self.opts = opts
        self.run_dir = Path(opts.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(opts.seed)
        args = GraphArgs(robot=opts.robot, sim=True, run_dir=str(self.run_dir)).validated()
        self.args = args
        up = UpOptions(
            robot=opts.robot, episodes=opts.episodes, demos=opts.demos, seed=opts.seed, overrides=opts.overrides
        )
        self.specs = _apply_overrides(robot_graph(args), up, self.run_dir)
        self.kills: list[Kill] = []
        self.procs = None
        self.monitor = None
        self.watch = None

    def __enter__(self) -> FaultRun:
        from hiors_bringup.demos import record_demos
        from hiors_bringup.graph_check import check_running_graph
        from hiors_bringup.processes import GraphProcesses
        from hiors_bringup.up import Monitor

        if self.opts.demos > 0:
            record_demos(self.args.robot, self.args.task, self.opts.demos, self.run_dir / "demos", seed=10_000)
        self.procs = GraphProcesses(self.specs, self.run_dir, env={"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
        self.monitor = Monitor(self.run_dir, quiet=True)
        self.watch = Watch()
        self.procs.start_all()
        try:
            problems = check_running_graph(self.monitor.node, self.specs, timeout_s=180.0)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        if problems:
            logs = {n: self.procs.tail(n) for n in problems}
            self.__exit__(None, None, None)
            raise RuntimeError(f"the graph did not come up: {problems}; logs: {logs}")
        return self

    def __exit__(self, *exc) -> None:
        if self.procs is not None:
            self.procs.stop_all()
        if self.monitor is not None:
            self.monitor.settle(5.0)
            self.monitor.close()
        if self.watch is not None:
            self.watch.close()

    # --- waiting ------------------------------------------------------------------------------------------------
    def verdicts(self) -> int:
        return self.monitor.count()

    def wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            dead = [
                p.spec.name
                for p in self.procs.dead()
                if not any(k.node == p.spec.name and not k.restarted for k in self.kills)
            ]
            if dead:
                raise RuntimeError(
                    f"waiting for {what}: node(s) {dead} died on their own: "
                    + " | ".join(self.procs.tail(n, 30) for n in dead)
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.05)

    def wait_verdicts(self, n: int, timeout: float = 300.0) -> None:
        self.wait(lambda: self.verdicts() >= n, timeout, f"{n} episode verdicts")

    def wait_policy_driving(self, timeout: float = 120.0) -> None:
        from hiors_core.schema import AUTHORITY_POLICY

        t0 = time.monotonic()
        self.wait(
            lambda: any(e[2] == AUTHORITY_POLICY for e in self.watch.since(t0)), timeout, "the policy driving the robot"
        )

    # --- faults -------------------------------------------------------------------------------------------------
    def kill(self, name: str, max_delay_s: float = 1.0, note: str = "") -> Kill:
        """SIGKILL a node after a seeded random delay (0..max_delay_s)."""
        time.sleep(self.rng.uniform(0.0, max_delay_s))
        last = self.watch.last_step()
        wall = time.monotonic()
        self.procs.kill(name, signal.SIGKILL)
        k = Kill(name, wall, last, note=note)
        self.kills.append(k)
        return k

    def restart(self, kill: Kill) -> None:
        self.procs.restart(kill.node)
        kill.restarted = time.monotonic()

    def wait_node_up(self, name: str, timeout: float = 120.0) -> None:
        """Wait until the restarted node is in the graph again (its node name is discovered)."""
        node = self.monitor.node
        self.wait(lambda: name in node.get_node_names(), timeout, f"node {name} back in the graph")

    def pids(self) -> dict[str, int]:
        return {n: p.popen.pid for n, p in self.procs.procs.items() if p.popen.poll() is None}


def hold_after_policy_loss(executed, kill: Kill, period_steps: int = 2) -> dict:
    """From the command stream (Watch.executed) after a policy kill, up to its restart. "Losing the policy" is the
    arbiter running out of the dead policy's actions: it executes what it holds of the last chunks (the current one
    and at most one pending; a chunk still in flight at the kill can replace the pending one), and then must hold, or
    hand over to the human, within `period_steps` control periods of its last policy action.
    Returns: policy steps run after the kill, the gap in control periods (steps) from the last policy action to the
    next command and that command's authority, whether the robot held, and ok."""
    from hiors_core.schema import AUTHORITY_HOLD, AUTHORITY_POLICY

    after = [e for e in executed if e[1] > kill.last_step_before and (not kill.restarted or e[0] < kill.restarted)]
    policy = [e for e in after if e[2] == AUTHORITY_POLICY]
    out = {"policy_steps_after_kill": len(policy), "gap_steps": 0, "next_authority": -1, "held": False, "ok": False}
    if not after:
        out["why"] = "no command at all after the kill"
        return out
    last_policy = policy[-1][1] if policy else kill.last_step_before
    nxt = [e for e in after if e[1] > last_policy]
    if not nxt:
        out["why"] = "no command after the last policy step"
        return out
    out["gap_steps"] = nxt[0][1] - last_policy
    out["next_authority"] = nxt[0][2]
    out["held"] = nxt[0][2] == AUTHORITY_HOLD
    out["ok"] = out["gap_steps"] <= period_steps and nxt[0][2] != AUTHORITY_POLICY
    return out


# --- the suite driver -----------------------------------------------------------------------------------------------


def suite_dir() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "tests" / "reliability"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tests/reliability not found above {here} (the reliability suite runs from a checkout)")


def read_facts(path: Path) -> list[dict]:
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def table_lines(rows: list[dict]) -> list[str]:
    order = {s: i for i, s in enumerate(SECTIONS)}
    rows = sorted(rows, key=lambda r: (order.get(r["section"], 99), r["check"]))
    w = max([len(r["check"]) for r in rows] + [20])
    lines = [f"{'section':8s} {'check':{w}s} {'count':>10s}  {'expected':18s} ok", "-" * (w + 45)]
    for r in rows:
        lines.append(
            f"{r['section']:8s} {r['check']:{w}s} {str(r['count']):>10s}  {str(r['expected'])[:18]:18s} "
            f"{'yes' if r['ok'] else 'NO'}"
        )
    return lines


def run_reliability(run_dir, full: bool = False, pytest_args: tuple = (), tests: tuple = ()) -> int:
    """Run the reliability suite (the CI subset, or everything with `full`), print the table of counts, write
    <run_dir>/reliability.csv (and the raw rows as reliability.jsonl). `tests`: files or node ids inside
    tests/reliability to run instead of all of it. Returns pytest's exit code (1 if a check did not hold)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    facts = run_dir / "reliability.jsonl"
    facts.unlink(missing_ok=True)
    env = dict(os.environ, **{FACTS_ENV: str(facts.resolve())})
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    marker = "full or not full" if full else "not full"
    targets = [str(suite_dir() / t) for t in tests] or [str(suite_dir())]
    cmd = [sys.executable, "-m", "pytest", *targets, "-m", marker, "-p", "no:cacheprovider", *pytest_args]
    print("hiors reliability: " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, env=env, cwd=str(suite_dir().parents[1]))
    rows = read_facts(facts)
    with open(run_dir / "reliability.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FACT_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FACT_FIELDS})
    print("\n".join(["", "=== reliability ==="] + table_lines(rows)))
    bad = [r for r in rows if not r["ok"]]
    print(f"{len(rows)} checks, {len(bad)} failed; pytest exit code {rc}; table: {run_dir / 'reliability.csv'}")
    return rc if rc else (1 if bad else 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hiors_bench.reliability", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--full", action="store_true", help="everything: repeated fault rounds, thousands of messages, the soak"
    )
    ap.add_argument("--run-dir", default="", help="where reliability.csv goes (default runs/reliability-<time>)")
    ap.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --), e.g. -k fuzz")
    a = ap.parse_args(argv)
    run_dir = a.run_dir or f"runs/reliability-{time.strftime('%Y%m%d-%H%M%S')}"
    return run_reliability(run_dir, full=a.full, pytest_args=tuple(a.pytest_args))


if __name__ == "__main__":
    sys.exit(main())
