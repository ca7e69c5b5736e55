"""The one node-graph description: every node it names exists, configs parse, bad arguments get clear errors."""

import ast
import os
from pathlib import Path

import pytest

from hiors_bringup.graph import ROBOT_AGNOSTIC, GraphArgs, config_dir, entry_point, robot_graph
from hiors_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
CASES = [
    GraphArgs(robot="tora_one", sim=True),
    GraphArgs(robot="tora_one", task="pack_detergent", sim=True),
    GraphArgs(robot="xtrainer", sim=True),
    GraphArgs(robot="tora_one", sim=False, use_sim_time=False),
    GraphArgs(robot="xtrainer", sim=False, use_sim_time=False, learner="remote"),
    GraphArgs(robot="xtrainer", sim=False, use_sim_time=False, driver_bridge=True),
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: f"{a.robot}-{a.task or 'default'}-sim{a.sim}-{a.learner}")
def test_every_node_exists_and_gets_robot_task_and_clock(args):
    specs = robot_graph(args)
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert {"capture", "policy", "arbiter", "recorder"} <= set(names)
    assert ("learner" in names) == (args.learner == "local")
    assert ("sim" in names) == args.sim
    assert ("driver_bridge" in names) == args.driver_bridge
    for spec in specs:
        module, func = entry_point(spec).split(":")  # raises ConfigError naming the node if it is missing
        assert module.startswith(spec.package) and func
        if spec.name not in ROBOT_AGNOSTIC:
            assert spec.parameters["robot"] == args.robot
        assert spec.parameters["use_sim_time"] == args.use_sim_time


def test_a_real_robot_gets_the_bridge_of_its_human_input_device():
    for robot, bridge, executable in (
        ("tora_one", "quest3", "quest3_bridge"),
        ("xtrainer", "leader_arm", "leader_arm"),
    ):
        specs = {s.name: s for s in robot_graph(GraphArgs(robot=robot, sim=False, use_sim_time=False))}
        assert specs[bridge].executable == executable
        assert not {"quest3", "leader_arm"} - {bridge} & set(specs)
        assert bridge not in {s.name for s in robot_graph(GraphArgs(robot=robot))}  # the twin has no device


def test_recorder_horizon_matches_the_policy_chunk_length():
    from hiors_policy.presets import get_preset

    for robot in ("tora_one", "xtrainer"):
        specs = {s.name: s for s in robot_graph(GraphArgs(robot=robot))}
        assert specs["recorder"].parameters["horizon"] == get_preset("tiny").chunk_size
        assert specs["arbiter"].parameters["k_auto"] <= specs["recorder"].parameters["horizon"]


@pytest.mark.parametrize(
    "args, message",
    [
        (GraphArgs(robot="ur5"), "unknown robot"),
        (GraphArgs(robot="xtrainer", task="raise_hand"), "has no task"),
        (GraphArgs(robot="tora_one", learner="cloud"), "learner must be"),
        (GraphArgs(robot="tora_one", sim=False, use_sim_time=True), "use_sim_time"),
        (GraphArgs(robot="tora_one", driver_bridge=True), "driver_bridge needs sim:=false"),
        (GraphArgs(robot="tora_one", config_file="/nonexistent.yaml"), "config file not found"),
    ],
)
def test_bad_arguments_are_named(args, message):
    with pytest.raises(ConfigError, match=message):
        robot_graph(args)


def test_config_section_without_ros_parameters_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("arbiter:\n  k_auto: 3\n")
    with pytest.raises(ConfigError, match="bad.yaml.*arbiter.*ros__parameters"):
        robot_graph(GraphArgs(robot="tora_one", config_file=str(bad)))


def test_launch_files_declare_every_argument_with_a_description():
    common = ast.parse((ROOT / "launch" / "hiors_common.launch.py").read_text())
    args = next(
        n for n in ast.walk(common) if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "ARGUMENTS"
    )
    declared = {elt.elts[0].value: elt.elts[2].value for elt in args.value.elts}
    assert set(declared) >= {"sim", "policy", "task", "learner", "use_sim_time", "namespace", "rviz", "robot"}
    assert all(len(desc) > 10 for desc in declared.values())
    for robot in ("tora_one", "xtrainer"):
        text = (ROOT / "launch" / f"{robot}.launch.py").read_text()
        ast.parse(text)
        assert f'"robot": "{robot}"' in text and "hiors_common.launch.py" in text
    assert (config_dir() / "tora_one.yaml").exists()


def test_node_processes_get_passive_openmp_and_a_share_of_the_cores_unless_told_otherwise():
    from hiors_bringup.processes import GraphProcesses, node_env_defaults

    assert node_env_defaults()["OMP_WAIT_POLICY"] == "PASSIVE" and int(node_env_defaults()["OMP_NUM_THREADS"]) >= 1
    env = GraphProcesses([], ROOT / "runs" / "unused", env={"OMP_NUM_THREADS": "3"}).env
    assert env["OMP_NUM_THREADS"] == "3" and env["OMP_WAIT_POLICY"] == os.environ.get("OMP_WAIT_POLICY", "PASSIVE")


def test_undeclared_parameters_are_found_and_implicit_ones_ignored():
    from hiors_bringup.graph_check import undeclared

    configured = {"use_sim_time": True, "k_auto": 12, "k_autoo": 3, "robot": "x"}
    assert undeclared(configured, {"k_auto", "robot"}) == ["k_autoo"]
    assert undeclared(configured, {"k_auto", "k_autoo", "robot"}) == []


def test_set_overrides_are_parsed_and_name_what_is_wrong(tmp_path):
    from hiors_bringup.cli import parse_set
    from hiors_bringup.up import UpOptions, _apply_overrides
    from hiors_core.errors import HiorsError

    assert parse_set("learner.utd_target=8") == ("learner", "utd_target", 8)
    assert parse_set("arbiter.sampling_mode=fixed_low") == ("arbiter", "sampling_mode", "fixed_low")
    assert parse_set("learner.lr=2.5e-5") == ("learner", "lr", 2.5e-5)
    for bad in ("learner.utd_target", "utd_target=8", "learner.=1", "learner.x={a: 1}"):
        with pytest.raises(HiorsError, match="--set"):
            parse_set(bad)
    specs = robot_graph(GraphArgs(robot="tora_one", sim=True, run_dir=str(tmp_path)))
    opts = UpOptions(robot="tora_one", overrides=(parse_set("learner.utd_target=8"),))
    learner = next(s for s in _apply_overrides(specs, opts, tmp_path) if s.name == "learner")
    assert learner.parameters["utd_target"] == 8.0 and isinstance(learner.parameters["utd_target"], float)
    with pytest.raises(HiorsError, match="no node 'lerner'"):
        _apply_overrides(specs, UpOptions(robot="tora_one", overrides=(("lerner", "utd_target", 8),)), tmp_path)


@pytest.mark.node
def test_running_graph_check_names_undeclared_parameters_and_exited_nodes():
    from rclpy.node import Node

    from hiors_bringup.graph import NodeSpec
    from hiors_bringup.graph_check import check_running_graph
    from hiors_testing.ros import ros_context, spinning

    with ros_context() as ctx:
        alive = Node("graph_check_alive", context=ctx)
        alive.declare_parameter("k_auto", 12)
        probe = Node("graph_check_probe", context=ctx)
        specs = [
            NodeSpec("graph_check_alive", "pkg", "exe", {"k_auto": 8, "k_autoo": 8}),
            NodeSpec("graph_check_gone", "pkg", "exe", {}),
        ]
        try:
            with spinning([alive, probe], context=ctx):
                problems = check_running_graph(probe, specs, timeout_s=120.0, exited=lambda n: n.endswith("gone"))
        finally:
            alive.destroy_node()
            probe.destroy_node()
    # (Without `exited`, the gone node would be waited for until the timeout.)
    assert problems == {"graph_check_alive": ["k_autoo"], "graph_check_gone": ["not running (its process exited)"]}


def test_a_goal_state_policy_switches_the_capture_to_goal_state_and_only_on_the_twin(tmp_path):
    from hiors_bringup.graph import is_goal_state_policy
    from hiors_policy.checkpoint import CONFIG_FILE
    from hiors_policy.policy import PolicyConfig
    from hiors_policy.presets import get_preset

    def saved(name, goal_state):
        d = tmp_path / name
        d.mkdir()
        config = PolicyConfig.for_task("tora_one", "raise_hand", get_preset("tiny"), goal_state=goal_state)
        (d / CONFIG_FILE).write_text(config.to_json())
        return str(d)

    goal, cameras = saved("goal", True), saved("cameras", False)
    assert is_goal_state_policy(goal, "tora_one", "raise_hand")
    assert not is_goal_state_policy(cameras, "tora_one", "raise_hand")
    assert not is_goal_state_policy("", "tora_one", "raise_hand")
    assert not is_goal_state_policy(str(tmp_path), "tora_one", "raise_hand")  # no project config: camera-only

    def capture(policy, **kw):
        specs = robot_graph(GraphArgs(robot="tora_one", policy=policy, **kw))
        return next(s for s in specs if s.name == "capture").parameters

    assert capture(goal)["goal_state"] is True
    assert capture(cameras).get("goal_state", False) is False
    with pytest.raises(ConfigError, match="goal-state policy"):
        capture(goal, sim=False, use_sim_time=False)
