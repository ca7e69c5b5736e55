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

import contextlib
import csv
import math
import os
import signal
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
from .run_folder import (
    DISK_STOP,
    MIB,
    PreviousRun,
    RunLock,
    check_disk,
    check_identity,
    disk_need,
    free_bytes,
    previous_run,
    stop_leftover_nodes,
    write_identity,
)

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
DISK_CHECK_S = 2.0  # free space of the run folder's disk is checked this often while the run goes on
QUIET_S = 10.0  # hiors up says what it waits for after this long without a line (3x that while episodes run)


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
    seed: int | None = None  # None: 0, or a resumed run's own
    operator: str = "intervene"
    timeout_s: float = 1800.0
    overrides: tuple = ()  # (node, key, value) parameter overrides (`--set`, tests, benchmarks)


class Monitor:
    """Watches verdicts, episodes and learner status; writes episodes.csv; prints one line per episode.
    A resumed run's rows continue its index and wall time; an episode that has a row already is not counted again
    (the recorder re-sends those it has no acknowledgement for)."""

    def __init__(self, run_dir: Path, quiet: bool = False, previous: PreviousRun | None = None):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray

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
        self.known = previous.episode_ids if previous else frozenset()
        self.index0 = previous.episodes if previous else 0
        self.wall0 = previous.wall_s if previous else 0.0
        self.write_failure = ""  # why episodes (or episodes.csv) cannot be written: the run stops on it
        sub = self.node.create_subscription
        sub(EpisodeVerdict, topics.EPISODE_VERDICT, self._on_verdict, topics.qos(topics.EPISODE_VERDICT, "monitor"))
        sub(Episode, topics.EPISODE, self._on_episode, topics.qos(topics.EPISODE, "monitor"))
        sub(LearnerStatus, topics.LEARNER_STATUS, self._on_status, topics.qos(topics.LEARNER_STATUS))
        sub(ControlState, topics.CONTROL_STATE, self._on_control, topics.qos(topics.CONTROL_STATE))
        sub(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, topics.qos(topics.DIAGNOSTICS))
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

    def _on_diagnostics(self, msg) -> None:
        """The recorder's episode log state: refusing starts, or an episode stopped by a failed write."""
        from hiors_teleop.recording import LOG_FAILED, LOG_REFUSING

        for st in msg.status:
            state = next((kv.value for kv in st.values if kv.key == "log_state"), "")
            if state in (LOG_REFUSING, LOG_FAILED) and not self.write_failure:
                self.write_failure = f"the recorder cannot write episodes: {st.message}"

    def _on_verdict(self, msg, wait_for_episode: bool = True) -> None:
        with self.lock:
            if msg.episode_id in self.known or any(v.episode_id == msg.episode_id for v in self.verdicts):
                return  # a re-sent episode gets a second verdict; count it once
            if wait_for_episode and msg.episode_id not in self.episodes:
                # The (large) Episode message can arrive after its (small) verdict: row written when it does.
                self.pending[msg.episode_id] = msg
                return
            self.verdicts.append(msg)
            human, steps, interventions, version = self.episodes.get(msg.episode_id, (0, 0, 0, 0))
            row = {
                "index": self.index0 + len(self.verdicts),
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
                "wall_s": f"{self.wall0 + time.monotonic() - self.t0:.1f}",
            }
            try:
                self._writer.writerow(row)
                self._csv.flush()
            except OSError as e:  # (a full disk) the run stops on it; the verdict is still counted and printed
                self.write_failure = self.write_failure or f"{self.csv_path}: {e.strerror or e}"
            recent = self.verdicts[-5:]
            rolling = sum(v.episode_return > 0 for v in recent) / len(recent)
        if not self.quiet:
            st = self.status
            learner = "learner starting"
            if st is not None:  # (no loss before the learner's first step since it started)
                learner = f"step {st.step:5d} loss " + (f"{st.loss:.3f}" if math.isfinite(st.loss) else "-")
            print(
                f"[ep {row['index']:3d}] {msg.episode_id}  human {float(row['human_share']):4.0%}  "
                f"return {msg.episode_return:+.2f}  {'ACCEPT' if msg.accepted else 'reject'} ({msg.reason})  "
                f"m={msg.threshold:.2f}  policy v{version}  rolling success {rolling:.0%}  | {learner}",
                flush=True,
            )

    def count(self) -> int:
        """Episodes with a verdict in this session (including those whose Episode message is still on its way)."""
        with self.lock:
            return len(self.verdicts) + len(self.pending)

    def progress(self) -> str:
        """A line on what is going on while no episode has ended for a while."""
        st = self.status
        learner = "the learner is loading its episode data"
        if st is not None:
            learner = f"learner step {st.step}, m={st.threshold:.2f}, {st.buffer_samples} samples in its buffer"
        return f"episode {self.index0 + self.count() + 1} under way; {learner}"

    def settle(self, timeout_s: float) -> None:
        """Give Episode messages still on their way a moment to arrive."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        with self.lock:
            late, self.pending = list(self.pending.values()), {}
        try:
            for v in late:  # never arrived: write the row with what is known rather than drop it
                self._on_verdict(v, wait_for_episode=False)
        finally:
            self.executor.shutdown(timeout_sec=2.0)
            self.node.destroy_node()
            self.rclpy.try_shutdown(context=self.context)
            try:
                self._csv.close()
            except OSError:  # its last rows did not fit on the disk: write_failure says so
                pass


def node_doing(spec) -> str:
    """What a node that is not up yet is busy with, as `hiors up` says while it waits."""
    p = spec.parameters
    if spec.name == "policy":
        return f"loading the policy {p.get('checkpoint') or '(tiny)'}"
    if spec.name == "learner":
        return f"loading the policy {p.get('policy_path') or '(tiny)'} to train it"
    if spec.name == "sim":
        return "building the twin and rendering its cameras"
    return "starting"


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
    run_dir = Path(opts.run_dir) if opts.run_dir else default_run_dir(opts.robot)
    prev = previous_run(run_dir)
    opts = resumed_options(opts, prev)
    base = check_base(opts) if opts.base else None
    task = opts.task or (base.task if base else "")
    demos = (0 if base else DEFAULT_DEMOS) if opts.demos is None else opts.demos
    if base and demos > 0:
        raise HiorsError(f"--base {opts.base} brings its own demonstrations; --demos records new ones: give one")
    if opts.eval_states and opts.policy and Path(opts.policy).resolve() != (run_dir / "policy").resolve():
        raise HiorsError(
            "--eval-states evaluates the run's starting policy from its folder's policy/: use --base, or the tiny "
            "policy, rather than --policy"
        )
    args = GraphArgs(
        robot=opts.robot, task=task, sim=True, policy=opts.policy, base=opts.base, run_dir=str(run_dir)
    ).validated()
    identity = {
        "robot": args.robot,
        "task": args.task,
        "base": str(Path(opts.base).resolve()) if opts.base else "",
        "policy": opts.policy,
        "seed": opts.seed,
    }
    if prev is not None:
        check_identity(run_dir, prev.identity, identity)
    _apply_overrides(robot_graph(args), opts, run_dir)  # config and --set checked before anything runs
    done, have_demos = (prev.episodes, prev.demos) if prev else (0, 0)
    check_disk(run_dir, disk_need(opts.episodes - done, demos - have_demos))
    lock = RunLock(run_dir)
    try:
        return _run(opts, args, base, demos, prev, {**identity, "demos": demos}, quiet)
    finally:
        lock.release()


SIM_DOMAINS = (100, 200)  # hiors up's own ROS 2 domain ids; the tests' private ones are 20-99 (conftest.py)


def sim_domain(environ, pid: int) -> str:
    """Give a simulated run a ROS 2 domain of its own, localhost only, unless the environment names one: two
    graphs on one domain hear each other's clocks, resets and chunks, and a run's arbiter then holds the robot
    for seconds at a time. Sets the variables in `environ` (read by this process's rclpy and by the nodes) and
    returns the line that says where to watch the run."""
    lo, hi = SIM_DOMAINS
    chosen = "ROS_DOMAIN_ID" not in environ
    if chosen:
        environ["ROS_DOMAIN_ID"] = str(lo + pid % (hi - lo))
        environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    domain = environ["ROS_DOMAIN_ID"]
    if not chosen:
        return f"hiors up: ROS 2 domain {domain} (from ROS_DOMAIN_ID)"
    return (
        f"hiors up: ROS 2 domain {domain}, this machine only (ROS_DOMAIN_ID chooses another); to watch: "
        f"ROS_DOMAIN_ID={domain} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST rviz2 -d config/<robot>.rviz"
    )


def resumed_options(opts: UpOptions, prev: PreviousRun | None) -> UpOptions:
    """A resumed run's options: the task, base, policy, demonstrations and seed it started with, where not given."""
    ident = prev.identity if prev else {}
    given = {"seed": 0 if opts.seed is None else opts.seed}
    if ident:
        if not opts.task and ident.get("task"):
            given["task"] = ident["task"]
        if not opts.base and not opts.policy:
            given["base"], given["policy"] = ident.get("base", ""), ident.get("policy", "")
        if opts.demos is None and isinstance(ident.get("demos"), int):
            given["demos"] = ident["demos"]
        if opts.seed is None and isinstance(ident.get("seed"), int):
            given["seed"] = ident["seed"]
    return replace(opts, **given)


def _run(opts: UpOptions, args: GraphArgs, base, demos: int, prev: PreviousRun | None, identity: dict, quiet):
    run_dir = Path(args.run_dir)
    say = (lambda *a: None) if quiet else print
    say(f"hiors up: {args.robot} / {args.task}, run folder {run_dir}")
    say(sim_domain(os.environ, os.getpid()))
    if prev is not None:
        say(prev.line(run_dir, opts.episodes))
        stop_leftover_nodes(run_dir, say)
    write_identity(run_dir, identity)
    demos_dir = run_dir / "demos"
    if base:
        if prev is None or not prev.policy:
            # The run's own copy of the starting policy (the launch files do the same): the nodes load it, and
            # `hiors eval --run` and the final evaluation start from it.
            args = prepare_run(args)
            say(
                f"hiors up: starting from the base policy {base.policy} (copied to {run_dir / 'policy'}), "
                f"demonstrations {base.demos.resolve()}"
            )
    elif demos > 0:
        have = prev.demos if prev else 0
        if demos > have:
            from .demos import record_demos

            n = record_demos(args.robot, args.task, demos - have, demos_dir, seed=opts.seed + 10_000 + have)
            say(f"hiors up: recorded {demos - have} scripted initial demonstrations in {demos_dir} ({n} succeeded)")
        if not args.policy:
            if prev is not None and prev.policy:
                args = replace(args, policy=str(run_dir / "policy"))
            else:
                args = replace(args, policy=str(initial_tiny_policy(args.robot, args.task, run_dir)))
                say(f"hiors up: tiny pi0 with the demonstrations' normalisation statistics in {args.policy}")
    done = prev.episodes if prev else 0
    remaining = opts.episodes - done
    rc = 0
    if remaining <= 0:
        say(f"hiors up: the run has its {done} episodes; give --episodes more than {done} to run more")
    else:
        # The runner's seeds continue past every episode the recorder started: no initial state twice.
        runner = {"episodes": remaining + 2, "seed": opts.seed + (prev.started if prev else 0)}
        specs = _apply_overrides(robot_graph(args), opts, run_dir, runner)
        rc = _run_graph(opts, specs, run_dir, prev, remaining, say, quiet)
    return _finish(opts, args, run_dir, rc, say)


def _run_graph(opts: UpOptions, specs, run_dir: Path, prev, remaining: int, say, quiet: bool) -> int:
    procs = GraphProcesses(specs, run_dir, env={"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    monitor = Monitor(run_dir, quiet=quiet, previous=prev)
    procs.start_all()
    say(f"hiors up: started {len(specs)} nodes: {', '.join(s.name for s in specs)} (logs in {run_dir / 'logs'})")
    started = time.monotonic()
    deadline = started + opts.timeout_s
    quiet_since = [started]  # when hiors up last said something

    def waiting(spec) -> None:
        now = time.monotonic()
        if now - quiet_since[0] >= QUIET_S:
            quiet_since[0] = now
            say(f"hiors up: waiting for {spec.name}: {node_doing(spec)} ({now - started:.0f} s)")

    rc = 0
    try:
        problems = check_running_graph(
            monitor.node,
            specs,
            timeout_s=min(opts.timeout_s, 180.0),
            exited=lambda name: name in {p.spec.name for p in procs.dead()},
            waiting=waiting,
        )
        if problems:
            for name, what in problems.items():
                tail = procs.tail(name) if any(w.startswith("not ") for w in what) else ""
                say(f"hiors up: node {name}: " + ", ".join(what) + (f"; last log lines:\n{tail}" if tail else ""))
            say("hiors up: the running graph does not match its description (see above); stopping")
            rc = 2
        else:
            say("hiors up: every node is up and declares every parameter it was given")
        seen = monitor.count()
        quiet_since[0] = next_disk_check = time.monotonic()
        while rc == 0 and monitor.count() < remaining:
            if monitor.write_failure:
                say(f"hiors up: stopping the run: {monitor.write_failure}")
                rc = 1
                break
            if time.monotonic() >= next_disk_check:
                next_disk_check = time.monotonic() + DISK_CHECK_S
                free = free_bytes(run_dir)
                if free < DISK_STOP:
                    say(
                        f"hiors up: stopping the run: {free / MIB:.0f} MiB free on the disk of {run_dir} (it stops "
                        f"below {DISK_STOP / MIB:.0f} MiB, before a write fails)"
                    )
                    rc = 1
                    break
            if monitor.count() != seen:
                seen, quiet_since[0] = monitor.count(), time.monotonic()
            elif time.monotonic() - quiet_since[0] >= 3 * QUIET_S:
                quiet_since[0] = time.monotonic()
                say(f"hiors up: {monitor.progress()}")
            if time.monotonic() > deadline:
                say(f"hiors up: timed out after {opts.timeout_s:.0f} s with {monitor.count()} episodes")
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
    except KeyboardInterrupt:
        say("hiors up: interrupted; stopping the nodes, then the summary")
        rc = 130
    finally:
        with _no_interrupt():  # a second Ctrl-C does not cut the stop short
            procs.stop_all(timeout=30.0)
            monitor.close()
    return rc


def _finish(opts: UpOptions, args: GraphArgs, run_dir: Path, rc: int, say) -> int:
    """The summary (printed and in summary.txt), the plot, and the evaluation when asked for and the run finished."""
    with _no_interrupt():
        lines = summary_lines(run_dir) + operator_share_lines(read_csv(run_dir / EPISODES_CSV))
    if opts.eval_states and rc == 0:
        say(
            f"hiors up: evaluating the starting and the final policy without the operator on {opts.eval_states} held-out initial states"
        )
        try:
            lines += eval_lines(evaluate_start_vs_final(args.robot, args.task, run_dir, opts.eval_states, opts.seed))
        except KeyboardInterrupt:
            lines.append("evaluation interrupted")
            rc = 130
    elif opts.eval_states:
        lines.append("evaluation skipped: the run did not finish")
    with _no_interrupt():
        try:
            png = plot(run_dir)
            (run_dir / "summary.txt").write_text("\n".join(lines) + "\n")
        except OSError as e:  # a full disk: the summary is still printed
            png = f"not written ({e.strerror or e})"
        say("\n".join(["", "=== summary ==="] + lines + [f"learning curve: {png}"]))
    return rc


@contextlib.contextmanager
def _no_interrupt():
    """SIGINT ignored inside (main thread only): the stop and the summary run to their end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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


def _apply_overrides(specs, opts: UpOptions, run_dir: Path, runner: dict | None = None):
    # The run's own controls; every other parameter is the graph's (robot_graph), as the launch files give it.
    # `runner`: the episode runner's episodes and first seed (a resumed run's continue); default the whole run's.
    extra = {
        "episode_runner": runner or {"episodes": opts.episodes + 2, "seed": opts.seed or 0},
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
