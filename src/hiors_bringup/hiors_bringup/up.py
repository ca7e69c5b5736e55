"""`hiors up <robot> --sim`: start the robot's graph and run the whole Hi-ORS loop, showing progress.

Phases: scripted initial demonstrations are written to the run's episode log (the learner starts from them),
then the graph runs online episodes: the policy drives, the simulated operator takes over when it must, the
oracle labels, the filter accepts or rejects, the learner trains asynchronously and pushes new weights.

`--base <dir>` starts from a pretrained base (`hiors pretrain --out <dir>`): its `policy/` is the starting
policy (copied to the run's `policy/`, where `hiors eval --run` looks for it) and its `demos/` the learner's
demonstrations, instead of recording new ones. `--eval-states N` then ends the run by evaluating the starting
policy and the run's final weights without the operator on the same N held-out initial states
(`learning_bench.eval_seeds`, `learning_bench.evaluate`), written to `eval_start_vs_final.csv`; the summary
(also in `summary.txt`) prints both success rates and the operator's share of control per episode.
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
from hiors_core.params import closest

from .graph import Base, GraphArgs, check_parameters, prepare_run, read_base, robot_graph
from .graph_check import check_running_graph
from .processes import GraphProcesses
from .report import EPISODES_CSV, plot, read_csv, summary_lines

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
EVAL_CSV = "eval_start_vs_final.csv"
EVAL_FIELDS = ["policy", "source", "states", "success", "success_1.5x", "success_2x", "progress", "seeds"]
DEFAULT_DEMOS = 8  # scripted initial demonstrations recorded when the run does not start from a base


@dataclass(frozen=True)
class UpOptions:
    robot: str
    task: str = ""
    sim: bool = True
    episodes: int = 12
    demos: int | None = None  # scripted demonstrations to record; None: DEFAULT_DEMOS, none with a base
    run_dir: str = ""
    policy: str = ""
    base: str = ""  # a `hiors pretrain` output folder: its policy/ and demos/ start the run
    eval_states: int = 0  # held-out initial states to evaluate the starting and the final policy on (0: none)
    seed: int = 0
    operator: str = "intervene"
    timeout_s: float = 1800.0
    overrides: tuple = ()  # (node, key, value) parameter overrides (`--set`, tests, benchmarks)


class Monitor:
    """Watches verdicts, episodes and learner status; writes episodes.csv; prints one line per episode."""

    def __init__(self, run_dir: Path, quiet: bool = False):
        import rclpy

        from hiors_msgs.msg import ControlState, Episode, EpisodeVerdict, LearnerStatus

        self.rclpy = rclpy
        self.quiet = quiet
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("hiors_up_monitor", context=self.context)
        self.lock = threading.Lock()
        self.episodes: dict[str, object] = {}
        self.verdicts: list = []
        self.pending: dict[str, object] = {}  # verdicts whose Episode message has not arrived yet
        self.status = None
        self.control = None
        self.policy_versions_used: set[int] = set()
        sub = self.node.create_subscription
        sub(EpisodeVerdict, topics.EPISODE_VERDICT, self._on_verdict, topics.qos(topics.EPISODE_VERDICT, "monitor"))
        sub(Episode, topics.EPISODE, self._on_episode, topics.qos(topics.EPISODE, "monitor"))
        sub(LearnerStatus, topics.LEARNER_STATUS, self._on_status, topics.qos(topics.LEARNER_STATUS))
        sub(ControlState, topics.CONTROL_STATE, self._on_control, topics.qos(topics.CONTROL_STATE))
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
    if opts.eval_states < 0:
        raise HiorsError(f"--eval-states must be 0 or more, got {opts.eval_states}")
    base = check_base(opts) if opts.base else None
    task = opts.task or (base.task if base else "")
    demos = (0 if base else DEFAULT_DEMOS) if opts.demos is None else opts.demos
    if base and demos > 0:
        raise HiorsError(f"--base {opts.base} brings its own demonstrations; --demos records new ones: give one")
    run_dir = Path(opts.run_dir) if opts.run_dir else default_run_dir(opts.robot)
    if opts.eval_states and opts.policy and Path(opts.policy).resolve() != (run_dir / "policy").resolve():
        raise HiorsError(
            "--eval-states evaluates the run's starting policy from its folder's policy/: use --base, or the tiny "
            "policy, rather than --policy"
        )
    args = GraphArgs(
        robot=opts.robot, task=task, sim=True, policy=opts.policy, base=opts.base, run_dir=str(run_dir)
    ).validated()
    _apply_overrides(robot_graph(args), opts, run_dir)  # config and --set checked before anything runs
    run_dir.mkdir(parents=True, exist_ok=True)

    say = (lambda *a: None) if quiet else print
    say(f"hiors up: {args.robot} / {args.task}, run folder {run_dir}")
    demos_dir = run_dir / "demos"
    if base:
        # The run's own copy of the starting policy (the launch files do the same): the nodes load it, and
        # `hiors eval --run` and the final evaluation start from it.
        args = prepare_run(args)
        say(
            f"hiors up: starting from the base policy {base.policy} (copied to {run_dir / 'policy'}), "
            f"demonstrations {base.demos.resolve()}"
        )
    elif demos > 0:
        from .demos import record_demos

        n = record_demos(args.robot, args.task, demos, demos_dir, seed=opts.seed + 10_000)
        say(f"hiors up: recorded {n} scripted initial demonstrations in {demos_dir}")
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
    lines = summary_lines(run_dir) + operator_share_lines(read_csv(run_dir / EPISODES_CSV))
    if opts.eval_states and rc == 0:
        say(
            f"hiors up: evaluating the starting and the final policy without the operator on {opts.eval_states} held-out initial states"
        )
        lines += eval_lines(evaluate_start_vs_final(args.robot, args.task, run_dir, opts.eval_states, opts.seed))
    elif opts.eval_states:
        lines.append("evaluation skipped: the run did not finish")
    png = plot(run_dir)
    (run_dir / "summary.txt").write_text("\n".join(lines) + "\n")
    say("\n".join(["", "=== summary ==="] + lines + [f"learning curve: {png}"]))
    return rc


def check_base(opts: UpOptions) -> Base:
    """The base folder of `--base`, checked (`graph.read_base`, as the launch files' `base:=`): a `hiors pretrain`
    output with policy/ (for this robot and task) and demos/. Raises HiorsError naming the folder and what it
    lacks."""
    if opts.policy:
        raise HiorsError("give --base or --policy, not both (--base brings its policy)")
    return read_base(opts.base, opts.robot, opts.task, label=f"--base {opts.base}")


def operator_share_lines(episodes: list[dict]) -> list[str]:
    """The operator's share of control steps per episode (episodes.csv rows), and its mean over the first and the
    second half of the run."""
    shares = [float(r.get("human_share") or 0.0) for r in episodes]
    if not shares:
        return []
    lines = ["operator share per episode: " + " ".join(f"{s:.2f}" for s in shares)]
    if len(shares) >= 2:
        half = len(shares) // 2
        first, second = shares[:half], shares[half:]
        lines.append(
            f"operator share: first half {sum(first) / len(first):.2f}, second half {sum(second) / len(second):.2f}"
        )
    return lines


def evaluate_start_vs_final(robot: str, task: str, run_dir: Path, states: int, seed: int) -> list[dict]:
    """Autonomous success of the run's starting policy and of its final weights (the learner's latest published
    ones on the starting policy) on the same held-out initial states; written to EVAL_CSV."""
    from hiors_core.errors import ConfigError
    from hiors_policy.checkpoint import make_policy

    from .evaluate import COMPARE_BUDGETS, eval_seeds, evaluate_policy, load_eval_policy

    seeds = eval_seeds(seed, states)
    start_dir = run_dir / "policy"
    start_spec = str(start_dir) if start_dir.is_dir() else f"tiny:{robot}:{task}"
    loaders = {
        "start": lambda: (make_policy(start_spec), start_spec),
        "final": lambda: load_eval_policy(robot, task, run=str(run_dir)),
    }
    rows = []
    for name, load in loaders.items():
        try:
            policy, source = load()
        except ConfigError as e:  # the learner published no weights: there is no final policy to evaluate
            rows.append({"policy": name, "source": f"none ({e})", "states": 0})
            continue
        r = evaluate_policy(policy, robot, task, seeds, COMPARE_BUDGETS)
        rows.append(
            {
                "policy": name,
                "source": source,
                "states": len(seeds),
                **{k: f"{r[k]:.3f}" for k in ("success", "success_1.5x", "success_2x", "progress")},
                "seeds": f"{seeds[0]}-{seeds[-1]}",
            }
        )
    with open(run_dir / EVAL_CSV, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=EVAL_FIELDS)
        w.writeheader()
        w.writerows(rows)
    return rows


def eval_lines(rows: list[dict]) -> list[str]:
    """Summary lines of `evaluate_start_vs_final`'s rows."""
    lines = []
    for r in rows:
        if not r.get("states"):
            lines.append(f"{r['policy']} policy: not evaluated, {r['source']}")
            continue
        n = int(r["states"])
        lines.append(
            f"{r['policy']} policy, no operator, {n} held-out initial states (seeds {r['seeds']}): success "
            f"{round(float(r['success']) * n)}/{n} = {float(r['success']):.2f} (within 2x the time limit "
            f"{float(r['success_2x']):.2f}), task progress {float(r['progress']):.2f}  [{r['source']}]"
        )
    return lines


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
    # The run's own controls; every other parameter is the graph's (robot_graph), as the launch files give it.
    extra = {
        "episode_runner": {"episodes": opts.episodes + 2, "seed": opts.seed},
        "sim_operator": {"mode": opts.operator},
    }
    given = {s.name: s.parameters for s in specs}
    sets: dict[str, dict] = {}
    for node, key, value in opts.overrides:
        if node not in given:
            raise HiorsError(
                f"--set {node}.{key}: no node {node!r} in the {opts.robot} graph{closest(node, given)}; its nodes: "
                f"{list(given)}"
            )
        sets.setdefault(node, {})[key] = value
    problems = []
    for node, values in sets.items():  # types and ranges of the nodes' tables; ints widened to floats
        try:
            extra.setdefault(node, {}).update(check_parameters(node, values, "--set"))
        except HiorsError as e:
            problems.append(str(e))
    if problems:
        raise HiorsError("\n".join(problems))
    return [replace(s, parameters={**s.parameters, **extra.get(s.name, {})}) for s in specs]
