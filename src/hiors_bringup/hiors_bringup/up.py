"""`hiors up <robot> --sim`: start the robot's graph and run the whole Hi-ORS loop, showing progress.

Phases: scripted initial demonstrations are written to the run's episode log (the learner starts from them),
then the graph runs online episodes: the policy drives, the simulated operator takes over when it must, the
oracle labels, the filter accepts or rejects, the learner trains asynchronously and pushes new weights.
"""

from __future__ import annotations

import csv
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from hiors_core import topics
from hiors_core.errors import HiorsError

from .graph import GraphArgs, robot_graph
from .graph_check import check_running_graph
from .processes import GraphProcesses
from .report import EPISODES_CSV, plot, summary_lines

EPISODE_FIELDS = [
    "index",
    "episode_id",
    "return",
    "success",
    "accepted",
    "reason",
    "threshold",
    "human_share",
    "interventions",
    "policy_version",
    "samples_kept",
    "wall_s",
]


@dataclass(frozen=True)
class UpOptions:
    robot: str
    task: str = ""
    sim: bool = True
    episodes: int = 12
    demos: int = 8
    run_dir: str = ""
    policy: str = ""
    seed: int = 0
    operator: str = "intervene"
    timeout_s: float = 1800.0
    overrides: tuple = ()  # (node, key, value) parameter overrides (`--set`, tests, benchmarks)


class Monitor:
    """Watches verdicts, episodes and learner status; writes episodes.csv; prints one line per episode."""

    def __init__(self, run_dir: Path, quiet: bool = False):
        import rclpy
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        from hiors_msgs.msg import ControlState, Episode, EpisodeVerdict, LearnerStatus

        self.rclpy = rclpy
        self.quiet = quiet
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("hiors_up_monitor", context=self.context)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        self.lock = threading.Lock()
        self.episodes: dict[str, object] = {}
        self.verdicts: list = []
        self.pending: dict[str, object] = {}  # verdicts whose Episode message has not arrived yet
        self.status = None
        self.control = None
        self.policy_versions_used: set[int] = set()
        self.node.create_subscription(EpisodeVerdict, topics.EPISODE_VERDICT, self._on_verdict, reliable)
        self.node.create_subscription(Episode, topics.EPISODE, self._on_episode, reliable)
        self.node.create_subscription(LearnerStatus, topics.LEARNER_STATUS, self._on_status, latched)
        self.node.create_subscription(ControlState, topics.CONTROL_STATE, self._on_control, latched)
        self.csv_path = run_dir / EPISODES_CSV
        self._csv = open(self.csv_path, "a", newline="")
        self._writer = csv.DictWriter(self._csv, fieldnames=EPISODE_FIELDS)
        if self._csv.tell() == 0:
            self._writer.writeheader()
        self.t0 = time.monotonic()
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_episode(self, msg) -> None:
        with self.lock:
            self.episodes[msg.episode_id] = (
                msg.human_steps,
                msg.control_steps,
                msg.interventions,
                msg.max_policy_version,
            )
            self.policy_versions_used.add(int(msg.max_policy_version))
            verdict = self.pending.pop(msg.episode_id, None)
        if verdict is not None:
            self._on_verdict(verdict)

    def _on_status(self, msg) -> None:
        self.status = msg

    def _on_control(self, msg) -> None:
        self.control = msg

    def _on_verdict(self, msg, wait_for_episode: bool = True) -> None:
        with self.lock:
            if any(v.episode_id == msg.episode_id for v in self.verdicts):
                return  # a re-sent episode gets a second verdict; count it once
            if wait_for_episode and msg.episode_id not in self.episodes:
                # The (large) Episode message can arrive after its (small) verdict: row written when it does.
                self.pending[msg.episode_id] = msg
                return
            self.verdicts.append(msg)
            human, steps, interventions, version = self.episodes.get(msg.episode_id, (0, 0, 0, 0))
            row = {
                "index": len(self.verdicts),
                "episode_id": msg.episode_id,
                "return": f"{msg.episode_return:.3f}",
                "success": int(msg.episode_return > 0),
                "accepted": int(msg.accepted),
                "reason": msg.reason,
                "threshold": f"{msg.threshold:.3f}",
                "human_share": f"{human / steps:.3f}" if steps else "0",
                "interventions": interventions,
                "policy_version": version,
                "samples_kept": msg.samples_kept,
                "wall_s": f"{time.monotonic() - self.t0:.1f}",
            }
            self._writer.writerow(row)
            self._csv.flush()
            recent = self.verdicts[-5:]
            rolling = sum(v.episode_return > 0 for v in recent) / len(recent)
        if not self.quiet:
            st = self.status
            learner = f"step {st.step:5d} loss {st.loss:.3f}" if st is not None else "learner starting"
            print(
                f"[ep {row['index']:3d}] {msg.episode_id}  human {float(row['human_share']):4.0%}  "
                f"return {msg.episode_return:+.2f}  {'ACCEPT' if msg.accepted else 'reject'} ({msg.reason})  "
                f"m={msg.threshold:.2f}  policy v{version}  rolling success {rolling:.0%}  | {learner}",
                flush=True,
            )

    def count(self) -> int:
        """Episodes with a verdict (including those whose Episode message is still on its way)."""
        with self.lock:
            return len(self.verdicts) + len(self.pending)

    def settle(self, timeout_s: float) -> None:
        """Give Episode messages still on their way a moment to arrive."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        with self.lock:
            late, self.pending = list(self.pending.values()), {}
        for v in late:  # never arrived: write the row with what is known rather than drop it
            self._on_verdict(v, wait_for_episode=False)
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
        self._csv.close()


def default_run_dir(robot: str) -> Path:
    return Path("runs") / f"{robot}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_up(opts: UpOptions, quiet: bool = False) -> int:
    if not opts.sim:
        raise HiorsError(
            "`hiors up` without --sim needs the real robot drivers: use `ros2 launch hiors_bringup <robot>.launch.py sim:=false` on the robot PC"
        )
    if opts.episodes < 1:
        raise HiorsError(f"--episodes must be at least 1, got {opts.episodes}")
    run_dir = Path(opts.run_dir) if opts.run_dir else default_run_dir(opts.robot)
    run_dir.mkdir(parents=True, exist_ok=True)
    args = GraphArgs(robot=opts.robot, task=opts.task, sim=True, policy=opts.policy, run_dir=str(run_dir)).validated()

    say = (lambda *a: None) if quiet else print
    say(f"hiors up: {args.robot} / {args.task}, run folder {run_dir}")
    if opts.demos > 0:
        from .demos import record_demos

        n = record_demos(args.robot, args.task, opts.demos, run_dir / "demos", seed=opts.seed + 10_000)
        say(f"hiors up: recorded {n} scripted initial demonstrations in {run_dir / 'demos'}")
        if not args.policy:
            args = replace(args, policy=str(initial_tiny_policy(args.robot, args.task, run_dir)))
            say(f"hiors up: tiny pi0 with the demonstrations' normalisation statistics in {args.policy}")
    specs = _apply_overrides(robot_graph(args), opts, run_dir)

    procs = GraphProcesses(specs, run_dir, env={"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    monitor = Monitor(run_dir, quiet=quiet)
    procs.start_all()
    say(f"hiors up: started {len(specs)} nodes: {', '.join(s.name for s in specs)} (logs in {run_dir / 'logs'})")
    deadline = time.monotonic() + opts.timeout_s
    rc = 0
    try:
        problems = check_running_graph(
            monitor.node,
            specs,
            timeout_s=min(opts.timeout_s, 180.0),
            exited=lambda name: name in {p.spec.name for p in procs.dead()},
        )
        if problems:
            for name, what in problems.items():
                tail = procs.tail(name) if any(w.startswith("not ") for w in what) else ""
                say(f"hiors up: node {name}: " + ", ".join(what) + (f"; last log lines:\n{tail}" if tail else ""))
            say("hiors up: the running graph does not match its description (see above); stopping")
            rc = 2
        else:
            say("hiors up: every node is up and declares every parameter it was given")
        while rc == 0 and monitor.count() < opts.episodes:
            if time.monotonic() > deadline:
                say(f"hiors up: timed out after {opts.timeout_s:.0f} s with {len(monitor.verdicts)} episodes")
                rc = 1
                break
            dead = procs.dead()
            if dead:
                for p in dead:
                    say(
                        f"hiors up: node {p.spec.name} exited with code {p.popen.returncode}; last log lines:\n{procs.tail(p.spec.name)}"
                    )
                rc = 1
                break
            time.sleep(0.2)
        monitor.settle(timeout_s=10.0)
    finally:
        procs.stop_all()
        monitor.close()
    lines = summary_lines(run_dir)
    png = plot(run_dir)
    say("\n".join(["", "=== summary ==="] + lines + [f"learning curve: {png}"]))
    return rc


def initial_tiny_policy(robot: str, task: str, run_dir: Path) -> Path:
    """The tiny pi0 the actor and the learner start from, saved in the run folder (`policy/`) with the state and
    action statistics of the run's demonstrations (pi0 trains on normalised data; identity statistics leave the
    flow-matching noise at the scale of whole metres against centimetre tolerances)."""
    from hiors_policy.checkpoint import build_tiny_policy
    from hiors_policy.dataset_stats import stats_from_log
    from hiors_policy.layout import state_layout

    stats = stats_from_log(run_dir / "demos", state_layout(robot, task))
    out = run_dir / "policy"
    build_tiny_policy(robot, task, seed=0, out_dir=out, norm_stats=stats)
    return out


def _apply_overrides(specs, opts: UpOptions, run_dir: Path):
    extra = {
        "episode_runner": {"episodes": opts.episodes + 2, "seed": opts.seed},
        "sim_operator": {"mode": opts.operator},
        "learner": {"demo_log_dir": str(run_dir / "demos")},
    }
    given = {s.name: s.parameters for s in specs}
    for node, key, value in opts.overrides:
        if node not in given:
            raise HiorsError(f"no node {node!r} in the {opts.robot} graph to set {key!r} on; its nodes: {list(given)}")
        current = given[node].get(key)
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # `--set learner.utd_target=8`: ROS refuses an integer for a double parameter
        extra.setdefault(node, {})[key] = value
    return [replace(s, parameters={**s.parameters, **extra.get(s.name, {})}) for s in specs]
