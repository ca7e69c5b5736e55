"""Hi-ORS online post-training in one process, faster than real time, from the same cores the nodes run.

`run_online` is the graph of `hiors up <robot> --sim` without ROS: each piece is the pure core its node wraps, fed
what the node would be fed, in the order the graph's messages would bring it.

    node             core used here
    sim              hiors_sim.env.SimRobot: one `step` per control period, sim time only (never the wall clock)
    sim_operator     hiors_sim.operator_device.OperatorDevice (the simulated operator + its device encoding)
    capture          hiors_sim.policy_view.policy_state + SimRobot.render at the policy's image size
    policy (actor)   Pi0Policy.infer, asked for a chunk whenever the arbiter would otherwise run out of one
    arbiter          hiors_teleop.authority.ArbiterCore: chunks offered with their observation stamp, human input
                     as the arbiter node decodes it, `tick` gives the executed action, the authority and whether
                     the step is a sample (dual-frequency sampling)
    recorder         an EpisodeData (a frame at every sample step, every executed command with its authority,
                     the label) written with EpisodeLog (rosbag2 MCAP, the log of record), read back and handed
                     over as the hiors_msgs/Episode the recorder publishes (episode_to_msg)
    reward_oracle    hiors_sim.oracle.RewardOracle, fed every task state of the episode
    episode_runner   hiors_sim.oracle.EpisodeWatch: the episode ends at success, a terminal failure or the time limit
    episode_filter   hiors_learner.filter_node.return_of (graded R), screen (its checks, no m) and report (the
                     learner's rule at the learner's m, as the node reports it from LearnerStatus)
    learner          hiors_learner.learner.Learner + TorchEngine, configured by learner_node.learner_config; the
                     one owner of m: the episodes the filter passed are offered as the learner node offers them
                     (prefiltered) and judged at its m, and its buffer re-applies m as m rises; weights published
                     every `publish_every` learner steps through engine.weights_blob() and loaded into the actor
                     with Pi0Policy.load_safetensors_bytes, between chunks as the policy node swaps them

Timing. Inference takes zero sim time here: a chunk is asked for at the control period where the arbiter needs
it, stamped with that period's observation, and its action 0 executes in that period (in the graph it arrives a
latency later and the arbiter skips the actions whose time has passed). Training is interleaved at a fixed
update-to-data ratio instead of running beside the robot: every sample the arbiter marks (a new training sample
recorded) owes the learner `utd` gradient steps, paid in the same control period once the learner has data (the
demonstrations, or the first accepted episode; owed steps wait until then). So the learner takes utd * samples
steps in all, however fast or loaded the machine is: what a run does depends on its seeds, not on wall time.

Parameters are what `hiors up` gives each node (the graph description, `graph.robot_graph`: config/<robot>.yaml, over
the node's declared defaults); `OnlineConfig` fields and `params` overrides come on top. The run folder is laid out as
`hiors up` lays it out, so `hiors eval --run` and the BC baseline read it: `episodes/` (the episode log),
`learner/` (metrics.csv, weights/, checkpoints/), `policy/` (the actor's starting policy), `params/<node>.yaml`,
plus `episodes.csv` (one row per episode, `EpisodeSummary`).
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hiors_core.errors import ConfigError
from hiors_core.filters import FilterConfig
from hiors_core.rejection import ThresholdConfig
from hiors_core.returns import ReturnConfig
from hiors_core.robots import MODE_EE_POSE
from hiors_sim.operator import OperatorConfig

# Nodes whose parameters an in-process run reads (their sections of config/<robot>.yaml).
NODES = ("arbiter", "recorder", "episode_filter", "learner", "reward_oracle", "episode_runner", "sim_operator")


@dataclass(frozen=True)
class OnlineConfig:
    """One online run. 0 / "" / None mean "from config/<robot>.yaml (or the node's own default)"."""

    episodes: int = 10
    k_auto: int = 0  # policy steps executed per chunk (the arbiter's k_auto)
    utd: float = 1.0  # gradient steps per sample recorded (the paper's update-to-data ratio)
    publish_every: int = 0  # learner steps between weight copies to the actor
    sampling_mode: str = ""  # dual | fixed_high | fixed_low (the arbiter's sampling_mode)
    operator: OperatorConfig | None = None  # None = the sim_operator node's parameters; its seed is `seed`
    returns: ReturnConfig | None = None  # the episode filter's return (graded / binary)
    threshold: ThresholdConfig | None = None  # the learner's m schedule (the learner owns m)
    filters: FilterConfig | None = None  # no-op and short-episode filters, for the filter and the learner alike
    seed: int = 0  # seeds the learner, the reward oracle and the operator (as `hiors bench` seeds those nodes)
    time_limit: float = 0.0  # episode time limit (s of sim time; also R's length discount); 0 = the task's
    params: tuple[tuple[str, str, Any], ...] = ()  # (node, key, value) overrides, as `hiors up --set node.key=v`
    config_file: str = ""  # "" = config/<robot>.yaml

    def __post_init__(self):
        if self.episodes < 0 or self.k_auto < 0 or self.publish_every < 0 or self.time_limit < 0:
            raise ConfigError("episodes, k_auto, publish_every and time_limit must be >= 0")
        if not self.utd >= 0:
            raise ConfigError(f"utd must be >= 0 (gradient steps per sample), got {self.utd}")
        for node, key, _ in self.params:
            if node not in NODES:
                raise ConfigError(f"cannot set {node}.{key}: no in-process node {node!r}; nodes: {list(NODES)}")


@dataclass
class EpisodeSummary:
    index: int
    episode_id: str
    seed: int
    cell: int
    success: bool  # the oracle's label
    reward: float  # the label's reward
    episode_return: float  # R, as the episode filter computed it
    accepted: bool  # the learner's verdict at admission (False when the filter's checks dropped the episode)
    reason: str  # why: the filter's reason when its checks dropped it, else the learner's
    steps: int  # control steps executed
    human_steps: int
    human_share: float
    interventions: int  # takeovers (rising edges of the human flags)
    samples: int  # frames recorded (sample steps)
    human_samples: int
    learner_step: int  # after the gradient steps this episode owed
    policy_version: int  # the actor's weights at the episode's end
    m: float  # the learner's m at admission
    wall_s: float
    sim_s: float
    end: str = ""  # why the episode ended (EpisodeWatch)
    infer_s: float = 0.0  # wall time of this episode's inference
    train_s: float = 0.0  # wall time of the gradient steps paid during and right after it
    in_training_set: bool = False  # at the run's end (episodes.csv is rewritten then); a higher m may have dropped it


SUMMARY_FIELDS = tuple(f.name for f in fields(EpisodeSummary))


# --------------------------------------------------------------------------------------------- parameters
def node_params(robot: str, task: str, cfg: OnlineConfig, run_dir: str | Path = "runs/latest") -> dict[str, dict]:
    """Each in-process node's parameters: its declared defaults, then what `hiors up` gives it (the graph
    description: config/<robot>.yaml, robot and task, the run folder's paths), then the run's choices
    (`OnlineConfig` fields and `params`)."""
    from hiors_bringup.graph import GraphArgs, robot_graph
    from hiors_core.params import defaults
    from hiors_learner.params import EPISODE_FILTER, LEARNER

    declared = {"learner": defaults(LEARNER), "episode_filter": defaults(EPISODE_FILTER)}
    graph = GraphArgs(robot, task, sim=True, learner="local", run_dir=str(run_dir), config_file=cfg.config_file)
    given = {spec.name: spec.parameters for spec in robot_graph(graph)}
    out = {n: {**declared.get(n, {}), **given[n]} for n in NODES}
    for n in ("learner", "reward_oracle", "sim_operator"):
        out[n]["seed"] = int(cfg.seed)
    if cfg.k_auto:
        out["arbiter"]["k_auto"] = int(cfg.k_auto)
    if cfg.sampling_mode:
        out["arbiter"]["sampling_mode"] = cfg.sampling_mode
    if cfg.publish_every:
        out["learner"]["publish_every"] = int(cfg.publish_every)
    for node, key, value in cfg.params:
        current = out[node].get(key)
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # as `hiors up --set`: a double parameter stays a float
        out[node][key] = value
    return out


def operator_config(cfg: OnlineConfig, params: dict) -> OperatorConfig:
    """The simulated operator's config: `cfg.operator`, or else the sim_operator node's parameters; then the run's
    `params` for sim_operator (a variant's switch, e.g. mode never) and the seed, as `hiors up` sets them."""
    known = {f.name for f in fields(OperatorConfig)}
    if cfg.operator is None:
        return OperatorConfig(**{k: v for k, v in params.items() if k in known})
    given = {k: v for node, k, v in cfg.params if node == "sim_operator" and k in known}
    return replace(cfg.operator, **(given | {"seed": int(params["seed"])}))


def _overridden(lc, cfg: OnlineConfig):
    """The learner core's config with the run's own choices: paced by the loop (utd), filters and m as given."""
    changes: dict = {"utd_target": 0.0}  # the loop owes it exactly utd steps per sample; the pacer must not cap
    if cfg.threshold is not None:
        changes["threshold"] = cfg.threshold
    if cfg.filters is not None:
        changes["filters"] = cfg.filters
    return replace(lc, **changes)


# --------------------------------------------------------------------------------------------- the pieces
def measured_action(env, limits, arm: str) -> np.ndarray:
    """The robot's measured state in the arbiter's action layout, as the arbiter node assembles it from
    joint_states and the EE pose (quaternion xyzw; the gripper's measured opening)."""
    joints = dict(zip(env.spec.joint_names, env.joint_positions(), strict=True))
    if limits.mode == MODE_EE_POSE:
        pos, quat = env.ee_pose(arm)
        return np.r_[pos, quat, joints.get(env.spec.arm(arm).gripper_name, 1.0)]
    return np.array([joints[n] for n in limits.names])


def needs_chunk(core) -> bool:
    """Would the arbiter run out of policy actions at its next tick (and let the policy drive if it had one)?"""
    if core.estop or core.engaged:
        return False
    ex = core.executor
    if ex.pending is not None:
        return False
    return ex.current is None or ex.index >= min(ex.k_auto, len(ex.current.actions))


def _in_layout(actions: np.ndarray, names: Sequence[str], layout_names: Sequence[str]) -> np.ndarray:
    """A chunk's columns in the arbiter's layout order (the arbiter node reorders by action name too)."""
    if tuple(names) == tuple(layout_names):
        return actions
    return actions[:, [list(names).index(n) for n in layout_names]]


def _write_params(run_dir: Path, params: dict[str, dict]) -> None:
    d = run_dir / "params"
    d.mkdir(parents=True, exist_ok=True)
    for node, p in params.items():
        (d / f"{node}.yaml").write_text(yaml.safe_dump({node: {"ros__parameters": p}}, sort_keys=True))


# --------------------------------------------------------------------------------------------- the run
def run_online(
    robot: str,
    task: str,
    actor,
    learner_policy,
    run_dir: str | Path,
    cfg: OnlineConfig,
    initial_state_seeds: Sequence[int],
    demos_dir: str | Path | None = None,
    on_episode: Callable[[EpisodeSummary], None] | None = None,
) -> list[EpisodeSummary]:
    """Run `cfg.episodes` online Hi-ORS episodes (see the module docstring); returns one summary per episode.

    `actor` and `learner_policy` are two copies of the same starting policy (Pi0Policy): the actor infers, the
    learner trains, and the learner's published weights reach the actor. Episode k starts from
    `env.reset(seed=initial_state_seeds[k % len(...)], split="train")`. `demos_dir`: an episode log of
    demonstrations the learner starts with. `on_episode(summary)` is called after each episode."""
    from hiors_core.tasks import task_or_default
    from hiors_sim.env import SimRobot

    if actor is learner_policy:
        raise ConfigError("the actor and the learner need two copies of the policy (the learner trains its own)")
    seeds = [int(s) for s in initial_state_seeds]
    if cfg.episodes and not seeds:
        raise ConfigError("run_online needs at least one initial state seed")
    run_dir = Path(run_dir)
    if (run_dir / "episodes.csv").exists():
        raise ConfigError(f"{run_dir}: holds a run already (episodes.csv); give a fresh run folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = task_or_default(robot, task)
    task = spec.name
    P = node_params(robot, task, cfg, run_dir)
    pc = actor.config
    if (pc.robot, pc.task) != (robot, task):
        raise ConfigError(f"the actor is a policy for {pc.robot}/{pc.task}, not {robot}/{task}")

    # The actor's starting policy, where `hiors eval --run` and the BC baseline look for it.
    actor.save(run_dir / "policy")
    P["learner"].update(policy_path=str((run_dir / "policy").resolve()), demo_log_dir=str(demos_dir or ""))
    _write_params(run_dir, P)

    with contextlib.ExitStack() as stack:
        env = SimRobot(robot, task, time_limit=cfg.time_limit or None)
        stack.callback(env.close)
        loop = _Loop(robot, task, actor, learner_policy, cfg, P, env)
        stack.callback(loop.close)
        loop.start()
        summaries = []
        with open(run_dir / "episodes.csv", "w", newline="", encoding="utf-8") as f:
            rows = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
            rows.writeheader()
            for k in range(cfg.episodes):
                s = loop.episode(k, seeds[k % len(seeds)])
                summaries.append(s)
                rows.writerow(asdict(s))
                f.flush()
                if on_episode is not None:
                    on_episode(s)
        # m may have risen since an episode was admitted: its row says whether it is still trained on at the end
        for s in summaries:
            s.in_training_set = loop.learner.in_training_set(s.episode_id)
        _write_summaries(run_dir / "episodes.csv", summaries)
    return summaries


def _write_summaries(path: Path, summaries: list[EpisodeSummary]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        rows = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        rows.writeheader()
        rows.writerows(asdict(s) for s in summaries)
    tmp.replace(path)


class _Loop:
    """The in-process graph of one run: the pieces, built from the nodes' parameters, and one episode at a time."""

    def __init__(self, robot: str, task: str, actor, learner_policy, cfg: OnlineConfig, P: dict[str, dict], env):
        from hiors_core.episode_log import EpisodeLog
        from hiors_core.tasks import get_task
        from hiors_learner.engine import TorchEngine
        from hiors_learner.learner import Learner
        from hiors_learner.learner_node import learner_config, optim_config
        from hiors_learner.params import filter_config
        from hiors_sim.operator_device import OperatorDevice
        from hiors_sim.oracle import END_GRACE_S, EpisodeWatch, RewardOracle
        from hiors_teleop.authority import ArbiterConfig, ArbiterCore, Sampler
        from hiors_teleop.safety import Limits, layout_for

        self.robot, self.task, self.cfg, self.env = robot, task, cfg, env
        self.actor, self.version = actor, 0  # the actor's policy and the version of its weights
        spec, pc = get_task(task, robot), actor.config
        self.pc = pc
        # arbiter
        pa = P["arbiter"]
        self.rate = float(pa.get("control_rate_hz", 0.0)) or env.spec.control_rate_hz
        if abs(self.rate - env.control_rate_hz) > 1e-9:
            raise ConfigError(f"arbiter control_rate_hz {self.rate} != the twin's control rate {env.control_rate_hz}")
        self.arm = pa.get("arm", spec.commanded_arm or "left")
        layout = layout_for(env.spec, pa.get("control_mode", spec.control_mode), self.arm)
        self.limits = Limits.for_robot(env.spec, layout, self.rate)
        if pc.control_mode != self.limits.mode or sorted(pc.action_names) != sorted(self.limits.names):
            raise ConfigError(f"the policy's actions {pc.action_names} are not the arbiter's {self.limits.names}")
        k_auto = int(pa.get("k_auto", 20))
        arbiter_cfg = ArbiterConfig(
            control_rate_hz=self.rate,
            k_auto=k_auto,
            policy_timeout_steps=int(pa.get("policy_timeout_steps", 25)),
            teleop_timeout_s=float(pa.get("teleop_timeout_s", 0.25)),
            human_source=pa.get("human_source", spec.human_source),
            sampler=Sampler(
                mode=pa.get("sampling_mode", "dual"),
                human_period=int(pa.get("human_sample_period", 1)),
                policy_period=int(pa.get("policy_sample_period", 0)),
                k_auto=k_auto,
            ),
        )
        self.core = ArbiterCore(self.limits, arbiter_cfg)
        self.trigger_closes = bool(pa.get("trigger_closes", True))
        self.period_ns = arbiter_cfg.period_ns
        # operator, reward oracle, the runner's end rule
        self.device = OperatorDevice(env.task, operator_config(cfg, P["sim_operator"]))
        po = P["reward_oracle"]
        self.oracle = RewardOracle(
            false_positive_rate=float(po.get("false_positive_rate", 0.0)),
            graded=bool(po.get("graded", False)),
            seed=int(po["seed"]),
            end_grace_s=float(po.get("end_grace_s", END_GRACE_S)),
        )
        self.watch = EpisodeWatch(settle_s=float(P["episode_runner"].get("settle_s", 0.0)))
        # recorder's log, episode filter
        self.log = EpisodeLog(P["recorder"]["log_dir"])
        self.horizon = int(P["recorder"].get("horizon", 50))
        pf = P["episode_filter"]
        self.returns = cfg.returns or ReturnConfig(
            mode=str(pf["return_mode"]),
            length_weight=float(pf["return_length_weight"]),
            human_weight=float(pf["return_human_weight"]),
        )
        # R's length discount is relative to this run's time limit (the filter's default: the task's)
        self.return_time_limit = float(pf["return_time_limit_s"]) or float(cfg.time_limit)
        self.filters = cfg.filters or filter_config(pf)
        # learner
        pl = P["learner"]
        self.engine = TorchEngine(learner_policy, optim_config(pl), str(pl["device"]), int(pl["seed"]))
        lc = _overridden(learner_config(pl, learner_policy), cfg)
        lc = replace(lc, returns=self.returns, return_time_limit_s=self.return_time_limit)  # as the graph gives it
        if lc.horizon != self.horizon:
            raise ConfigError(f"recorder horizon {self.horizon} != learner horizon {lc.horizon}: labels cannot train")
        self.learner = Learner(lc, self.engine, publish=self._swap_in)
        self.clock_ns = 0  # the sim's /clock: monotonic across resets
        self.owed = 0.0  # gradient steps owed to the learner (utd per recorded sample)
        self.spent = {"infer": 0.0, "train": 0.0}  # wall seconds in this episode

    def _swap_in(self, version: int, step: int, blob: bytes, path: str, digest: str = "", size: int = 0) -> None:
        """The learner's publish callback: the blob the node sends on PolicyWeights, loaded into the actor."""
        self.actor.load_safetensors_bytes(blob)
        self.version = int(version)

    def start(self) -> None:
        self.learner.resume()  # the demonstrations (a fresh run folder holds nothing else)
        self.learner.publish_weights()  # version 1 to the actor, as the learner node does at start

    def close(self) -> None:
        self.learner.close()
        self.engine.close()

    def pay(self) -> None:
        """Take the gradient steps owed, as far as the learner has data."""
        t0 = time.monotonic()
        while self.owed >= 1.0 and self.learner.ready():
            self.learner.train_once()
            self.owed -= 1.0
        self.spent["train"] += time.monotonic() - t0

    def observe(self):
        """What the capture node would send now: images at the policy's size, the state in its layout."""
        from hiors_sim.policy_view import policy_state

        size = (self.pc.image_size, self.pc.image_size)
        return self.env.render(self.pc.camera_names, size), policy_state(self.env, tuple(self.pc.state_names))

    def infer(self, seen, now: int) -> None:
        from hiors_policy.policy import PolicyInput
        from hiors_teleop.authority import Chunk

        self.pay()  # weights published by these steps reach the actor before its next chunk
        names = tuple(self.pc.state_names)
        t0 = time.monotonic()
        chunk = self.actor.infer(PolicyInput(seen[0], seen[1], self.env.task.instruction, names))
        self.spent["infer"] += time.monotonic() - t0
        actions = _in_layout(np.asarray(chunk, np.float64), self.pc.action_names, self.limits.names)
        self.core.offer_chunk(Chunk(actions, now, self.period_ns, self.version), now)

    def human_input(self, state: dict, now: int) -> None:
        """The operator's device output, decoded as the arbiter node decodes Joy, ee_delta and teleop/joint."""
        core, out = self.core, self.device.update(state)
        core.human_joy(now, out.engaged, (1.0 - out.trigger) if self.trigger_closes else out.trigger)
        if out.ee_delta is not None:
            core.human_ee_delta(now, *out.ee_delta)
        elif out.joint_positions is not None:
            core.human_joint(now, list(out.joint_names), list(out.joint_positions))

    def episode(self, index: int, seed: int) -> EpisodeSummary:
        from hiors_core.schema import EpisodeData, EpisodeMeta, Executed, Frame

        wall0 = time.monotonic()
        self.spent.update(infer=0.0, train=0.0)
        env, core, pc = self.env, self.core, self.pc
        state = env.reset(seed=seed, split="train")
        self.device.reset()
        self.oracle.reset()
        self.watch.reset()
        core.resync(self.clock_ns)  # the arbiter holds where the robot now is; chunks from before are stale
        names = tuple(pc.state_names)
        meta = EpisodeMeta(
            episode_id=self.log.new_episode_id(),
            robot=self.robot,
            task=self.task,
            instruction=env.task.instruction,
            control_mode=self.limits.mode,
            action_names=tuple(self.limits.names),
            state_names=names,
            camera_names=tuple(pc.camera_names),
            control_rate_hz=self.rate,
        )
        ep = EpisodeData(meta=meta)
        while True:
            self.oracle.observe(state)
            why = self.watch.observe(state)
            if why:
                break
            now = self.clock_ns
            self.human_input(state, now)
            core.set_measured(measured_action(env, self.limits, self.arm))
            seen = None  # this period's observation, rendered at most once
            if needs_chunk(core):
                seen = self.observe()
                self.infer(seen, now)
            r = core.tick(now)
            if r is None:  # (only before any measured state, and one was set just above)
                raise RuntimeError(f"arbiter: {core.reason}")
            step = len(ep.executed)
            if r.is_sample:  # the recorder's frame for this step: the observation at the command's time
                seen = seen or self.observe()
                ep.frames.append(Frame(step, now, seen[0], seen[1], names, env.task.instruction, step))
                self.owed += self.cfg.utd
            action = r.action.astype(np.float32)
            ep.executed.append(
                Executed(step, now, action, r.authority, r.source, r.policy_version, r.clamped, r.is_sample)
            )
            env.step(r.action)
            self.clock_ns += self.period_ns
            state = env.task_state()
            self.pay()
        label = self.oracle.label()
        ret, res, m = self.hand_over(ep, label)
        self.pay()
        human = ep.human_mask
        return EpisodeSummary(
            index=index,
            episode_id=meta.episode_id,
            seed=int(seed),
            cell=int(env.cell),
            success=bool(label.success),
            reward=float(label.reward),
            episode_return=float(ret),
            accepted=bool(res.accepted),
            reason=res.reason,
            steps=len(ep.executed),
            human_steps=int(human.sum()),
            human_share=float(human.mean()) if len(human) else 0.0,
            interventions=ep.interventions,
            samples=len(ep.frames),
            human_samples=int(sum(bool(human[f.step]) for f in ep.frames)),
            learner_step=int(self.engine.step),
            policy_version=self.version,
            m=float(m),
            wall_s=time.monotonic() - wall0,
            sim_s=len(ep.executed) / self.rate,
            end=why,
            infer_s=self.spent["infer"],
            train_s=self.spent["train"],
            in_training_set=self.learner.in_training_set(meta.episode_id),
        )

    def hand_over(self, ep, label):
        """Label, write, hand over and judge one episode as the recorder, the episode filter and the learner node
        do; returns (R, the verdict: the filter's result when its checks dropped the episode, else the learner's at
        admission, the learner's m at admission)."""
        from hiors_core.episode_msg import episode_to_msg, samples_from_msg
        from hiors_core.schema import Label
        from hiors_learner.filter_node import return_of, screen

        eid = ep.meta.episode_id
        ep.label = Label(reward=label.reward, success=label.success, source="oracle", stamp_ns=time.time_ns())
        self.log.write_episode(ep)
        msg = episode_to_msg(self.log.read(eid), self.horizon)  # the recorder publishes what the log holds
        m = self.learner.m  # what LearnerStatus announces; in one process it is never stale
        reward = float(msg.episode_return) if msg.label_source else float("nan")
        ret = return_of(msg, reward, self.returns, self.return_time_limit)
        modes = {int(s.control_mode) for s in msg.samples}
        mode = modes.pop() if modes else 0
        res = screen(samples_from_msg(msg), ret, mode, self.filters)
        if res.accepted:  # the Episode the filter passes: its kept samples, with R; the learner node's drain()
            msg.samples = [s for s, keep in zip(msg.samples, res.kept_mask, strict=True) if keep]
            res = self.learner.offer(eid, samples_from_msg(msg), ret, mode, prefiltered=True)
        self.log.mark_acked(eid)  # the verdict reached the recorder
        return ret, res, m
