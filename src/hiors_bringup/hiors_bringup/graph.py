"""The node graph of one robot, described once.

Both the real launch files (`ros2 launch hiors_bringup tora_one.launch.py`) and the pip-only runner
(`hiors up`) build their processes from `robot_graph()`, so the two can never drift apart.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiors_core.config import load_yaml, node_parameters
from hiors_core.errors import ConfigError
from hiors_core.params import check_values, closest
from hiors_core.robots import ROBOTS, get_robot
from hiors_core.tasks import default_task, get_task

LEARNER_MODES = ("local", "remote", "none")
# Nodes that take robot and task from the data they receive (task state, episodes), not from parameters.
ROBOT_AGNOSTIC = frozenset({"reward_oracle", "episode_filter"})
# The bridge node (name, executable) of each human input device (RobotSpec.human_source) on a real robot.
HUMAN_BRIDGES = {"quest3": ("quest3", "quest3_bridge"), "leader_arm": ("leader_arm", "leader_arm")}
# Each node's parameter table (hiors_core.params), in the pure module the node declares from: the config file and
# `hiors up --set` are checked against it before any process starts.
PARAM_TABLES = {
    "sim": "hiors_sim.params:SIM",
    "sim_operator": "hiors_sim.params:SIM_OPERATOR",
    "reward_oracle": "hiors_sim.params:REWARD_ORACLE",
    "episode_runner": "hiors_sim.params:EPISODE_RUNNER",
    "capture": "hiors_policy.params:CAPTURE",
    "policy": "hiors_policy.params:POLICY",
    "arbiter": "hiors_teleop.params:ARBITER",
    "recorder": "hiors_teleop.params:RECORDER",
    "quest3": "hiors_teleop.params:QUEST3",
    "leader_arm": "hiors_teleop.params:LEADER_ARM",
    "driver_bridge": "hiors_teleop.params:DRIVER_BRIDGE",
    "episode_filter": "hiors_learner.params:EPISODE_FILTER",
    "learner": "hiors_learner.params:LEARNER",
}
# Parameters every rclpy node has without declaring them.
IMPLICIT_PARAMS = frozenset({"use_sim_time", "start_type_description_service"})


@dataclass(frozen=True)
class NodeSpec:
    name: str  # node name (relative; the namespace is applied on top)
    package: str
    executable: str  # console script installed by the package (its setup.py is the one place naming the code)
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphArgs:
    robot: str
    task: str = ""
    sim: bool = True
    policy: str = ""  # checkpoint folder; "" = a tiny policy built offline for the robot and task
    learner: str = "local"
    use_sim_time: bool = True
    namespace: str = ""
    run_dir: str = "runs/latest"
    config_file: str = ""  # "" = config/<robot>.yaml
    # A `hiors pretrain --out` folder: its policy/ (weights and normalisation statistics) is copied to
    # <run_dir>/policy by `prepare_run`, and the policy node and the learner start from that copy; its demos/ are
    # the learner's demonstrations and its task the default task.
    base: str = ""
    demos: str = ""  # the learner's demonstrations (an episode log); "" = the base's demos/, else <run_dir>/demos
    driver_bridge: bool = False  # a real robot: bridge an existing driver's joint_states and commands (its config)

    def validated(self) -> GraphArgs:
        if self.robot not in ROBOTS:
            raise ConfigError(f"unknown robot {self.robot!r}; known: {sorted(ROBOTS)}")
        task = self.task
        if self.base:
            if self.policy or self.demos:
                given = "policy" if self.policy else "demos"
                raise ConfigError(f"base {self.base} brings its policy and demonstrations: give either base or {given}")
            base_task = read_base(self.base, self.robot, task).task  # a ConfigError naming what the folder lacks
            task = task or base_task
        elif self.demos and not Path(self.demos).is_dir():
            raise ConfigError(f"demos {self.demos}: no such folder (an episode log of demonstrations)")
        task = task or default_task(self.robot)
        get_task(task, self.robot)  # a ConfigError naming the robot's tasks
        if self.learner not in LEARNER_MODES:
            raise ConfigError(f"learner must be one of {LEARNER_MODES}, got {self.learner!r}")
        if self.use_sim_time and not self.sim:
            raise ConfigError("use_sim_time needs sim:=true (a real robot has no /clock)")
        if self.driver_bridge and self.sim:
            raise ConfigError("driver_bridge needs sim:=false (the twin publishes and takes the robot topics itself)")
        return GraphArgs(**{**self.__dict__, "task": task})


def config_dir() -> Path:
    """The top-level config/ folder: installed share/hiors_bringup/config, or the source checkout's."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "config", here.parents[1] / "config"):
        if candidate.is_dir():
            return candidate
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("hiors_bringup")) / "config"
    except Exception:  # no ament index on a pip-only install
        raise ConfigError(f"cannot find the hiors config folder near {here}") from None


def param_table(node: str) -> dict:
    """The node's parameter table {name: hiors_core.params.Param}."""
    module, _, name = PARAM_TABLES[node].partition(":")
    return getattr(importlib.import_module(module), name)


def check_parameters(node: str, values: dict, source: str) -> dict:
    """`values` for `node` checked against its table and normalized; raises ConfigError, one line per problem
    naming the node, the parameter, the value and what is allowed (or the closest known name)."""
    out, lines = check_values(node, param_table(node), values, source, ignore=IMPLICIT_PARAMS)
    if lines:
        raise ConfigError("\n".join(lines))
    return out


def _node(name, package, executable, params) -> NodeSpec:
    return NodeSpec(name=name, package=package, executable=executable, parameters=params)


def robot_graph(args: GraphArgs) -> list[NodeSpec]:
    """Every node of one robot's Hi-ORS graph with its parameters (config file + arguments)."""
    args = args.validated()
    cfg_path = Path(args.config_file) if args.config_file else config_dir() / f"{args.robot}.yaml"
    cfg = load_yaml(cfg_path)
    run = Path(args.run_dir)
    robot_task = {"robot": args.robot, "task": args.task}
    start = start_policy(args)
    checkpoint = start or f"tiny:{args.robot}:{args.task}"

    for section in cfg:
        if section != "/**" and section.rsplit("/", 1)[-1] not in PARAM_TABLES:
            raise ConfigError(f"{cfg_path}: no node {section!r} in a hiors graph{closest(section, PARAM_TABLES)}")

    def params(node: str, **extra) -> dict:
        common = {"use_sim_time": args.use_sim_time, **({} if node in ROBOT_AGNOSTIC else robot_task)}
        given = check_parameters(node, node_parameters(cfg, node, str(cfg_path)), str(cfg_path))
        return {**common, **given, **extra}

    # A goal-state policy (the twin's privileged variant) needs the goal in its state: the capture node adds it.
    source = str(Path(args.base) / "policy") if args.base else args.policy  # start's contents, before prepare_run
    goal_state = is_goal_state_policy(source, args.robot, args.task)
    if goal_state and not args.sim:
        raise ConfigError(
            f"policy {source}: a goal-state policy reads the task's goal from the twin; a real robot needs a "
            "camera-only policy"
        )

    nodes: list[NodeSpec] = []
    if args.sim:
        nodes += [
            _node("sim", "hiors_sim", "sim_node", params("sim")),
            _node("sim_operator", "hiors_sim", "sim_operator", params("sim_operator")),
            _node("reward_oracle", "hiors_sim", "reward_oracle", params("reward_oracle")),
            _node("episode_runner", "hiors_sim", "episode_runner", params("episode_runner")),
        ]
    nodes += [
        _node("capture", "hiors_policy", "capture", params("capture", **({"goal_state": True} if goal_state else {}))),
        _node("policy", "hiors_policy", "policy", params("policy", checkpoint=checkpoint)),
        _node("arbiter", "hiors_teleop", "arbiter", params("arbiter")),
        _node(
            "recorder",
            "hiors_teleop",
            "recorder",
            params("recorder", log_dir=str(run / "episodes")),
        ),
    ]
    if not args.sim:
        name, executable = HUMAN_BRIDGES[get_robot(args.robot).human_source]
        nodes.append(_node(name, "hiors_teleop", executable, params(name)))
        if args.driver_bridge:
            nodes.append(_node("driver_bridge", "hiors_teleop", "driver_bridge", params("driver_bridge")))
    if args.learner == "local":
        # R's parameters live in the filter's section; the learner computes the same R for what it re-reads
        returns = {k: v for k, v in params("episode_filter").items() if k.startswith("return_")}
        nodes += [
            _node("episode_filter", "hiors_learner", "episode_filter", params("episode_filter")),
            _node(
                "learner",
                "hiors_learner",
                "learner",
                params(
                    "learner",
                    **returns,
                    policy_path=start,
                    run_dir=str(run / "learner"),
                    log_dir=str(run / "episodes"),
                    demo_log_dir=demos_dir(args),
                ),
            ),
        ]
    return nodes


@dataclass(frozen=True)
class Base:
    policy: Path
    demos: Path
    task: str


def read_base(folder: str, robot: str, task: str = "", label: str = "") -> Base:
    """The pretrained base in `folder` (`hiors pretrain --out`), checked: policy/ for this robot (and task, if
    given) and demos/. Raises ConfigError naming the folder (as `label`, default `base:=<folder>`) and what it
    lacks."""
    from hiors_policy.checkpoint import CONFIG_FILE
    from hiors_policy.policy import PolicyConfig

    root = Path(folder)
    label = label or f"base:={root}"
    config = root / "policy" / CONFIG_FILE
    if not root.is_dir():
        raise ConfigError(f"{label}: no such folder (make one with `hiors pretrain {robot} --out {root}`)")
    if not config.is_file() or not (root / "demos").is_dir():
        raise ConfigError(
            f"{label}: not a pretrained base: it needs policy/{CONFIG_FILE} and demos/ "
            f"(as `hiors pretrain {robot} --out {root}` writes them)"
        )
    pc = PolicyConfig.from_json(config.read_text(), str(config))
    if pc.robot != robot or (task and pc.task != task):
        raise ConfigError(f"{label}: its policy is for {pc.robot}/{pc.task}, not {robot}/{task or pc.task}")
    return Base(policy=root / "policy", demos=root / "demos", task=pc.task)


def start_policy(args: GraphArgs) -> str:
    """The checkpoint the policy node and the learner start from: the run's copy of the base's policy, the given
    policy, or "" (a tiny policy built offline)."""
    return str(Path(args.run_dir) / "policy") if args.base else args.policy


def demos_dir(args: GraphArgs) -> str:
    """The learner's demonstrations: the given folder, the base's demos/, or <run_dir>/demos."""
    if args.demos:
        return args.demos
    if args.base:
        return str((Path(args.base) / "demos").resolve())
    return str(Path(args.run_dir) / "demos")


def prepare_run(args: GraphArgs) -> GraphArgs:
    """Make the run folder hold what `robot_graph(args)` names: with a base, its policy/ copied to
    <run_dir>/policy (the run's own starting policy, where `hiors eval --run` and the final evaluation look).
    `hiors up` and the launch files call it before they start the nodes. Returns the validated args."""
    args = args.validated()
    robot_graph(args)  # every refusal (the config, a goal-state policy on a real robot) before anything is copied
    if args.base:
        shutil.copytree(Path(args.base) / "policy", start_policy(args), dirs_exist_ok=True)
    return args


def is_goal_state_policy(policy: str, robot: str, task: str) -> bool:
    """Whether the checkpoint folder `policy` holds a goal-state policy (its saved state names carry the task's
    goal entries). The tiny policy ("" or tiny:...) and checkpoints without the project's config are camera-only."""
    if not policy or policy.startswith("tiny:"):
        return False
    from hiors_policy.checkpoint import CONFIG_FILE
    from hiors_policy.layout import has_goal_state
    from hiors_policy.policy import PolicyConfig

    path = Path(policy) / CONFIG_FILE
    if not path.is_file():
        return False
    return has_goal_state(PolicyConfig.from_json(path.read_text(), str(path)).state_names, robot, task)


def entry_point(spec: NodeSpec) -> str:
    """ "module:function" of a node's console script, read from its package's installed metadata."""
    try:
        dist = importlib.metadata.distribution(spec.package)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"node {spec.name!r}: package {spec.package} is not installed") from None
    for ep in dist.entry_points:
        if ep.group == "console_scripts" and ep.name == spec.executable:
            return ep.value
    raise ConfigError(f"node {spec.name!r}: package {spec.package} has no executable {spec.executable!r}")


def resolve_entry(spec: NodeSpec):
    """The callable behind a node's console script; raises ConfigError naming the node if it does not exist."""
    value = entry_point(spec)
    module, func = value.split(":")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"node {spec.name!r}: entry point {value} does not load ({e})") from None
