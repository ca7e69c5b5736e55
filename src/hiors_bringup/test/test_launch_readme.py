"""The launch files with the exact argument sets the README shows, through the launch files' own logic (the
launch packages are stubbed: they are not in the pip wheels), the launch arguments' string handling, and the launch
path against `hiors up`: the same inputs give the same nodes the same parameters."""

import re
import runpy
import sys
import types
from pathlib import Path

import pytest

from hiors_bringup import up
from hiors_bringup.graph import robot_graph
from hiors_bringup.launch_args import graph_args
from hiors_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
LAUNCH_LINE = re.compile(r"ros2 launch hiors_bringup (\w+\.launch\.py)((?:[ \t]+[\w.]+:=\S*)*)")


def readme_launch_lines(page: str = "README.md") -> list[tuple[str, dict[str, str]]]:
    text = (ROOT / page).read_text()
    lines = []
    for m in LAUNCH_LINE.finditer(text):
        args = dict(a.strip("`").split(":=", 1) for a in m.group(2).split())
        lines.append((m.group(1), args))
    return lines


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _Config:
    """LaunchConfiguration: performed against a context that is a plain dict of the launch's values."""

    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


@pytest.fixture
def launch_stubs(monkeypatch):
    names = [
        "launch",
        "launch.actions",
        "launch.substitutions",
        "launch.launch_description_sources",
        "launch_ros",
        "launch_ros.actions",
        "launch_ros.substitutions",
    ]
    stubs = {n: types.ModuleType(n) for n in names}
    stubs["launch"].LaunchDescription = _Recorded
    for cls in ("DeclareLaunchArgument", "OpaqueFunction", "SetEnvironmentVariable", "IncludeLaunchDescription"):
        setattr(stubs["launch.actions"], cls, type(cls, (_Recorded,), {}))
    stubs["launch.substitutions"].LaunchConfiguration = _Config
    stubs["launch.substitutions"].PathJoinSubstitution = _Recorded
    stubs["launch.launch_description_sources"].PythonLaunchDescriptionSource = _Recorded
    stubs["launch_ros.actions"].Node = type("Node", (_Recorded,), {})
    stubs["launch_ros.actions"].PushRosNamespace = type("PushRosNamespace", (_Recorded,), {})
    stubs["launch_ros.substitutions"].FindPackageShare = _Recorded
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    import ament_index_python.packages as ament

    monkeypatch.setattr(ament, "get_package_share_directory", lambda pkg: str(ROOT))


def launch(file: str, given: dict[str, str]) -> tuple[dict[str, str], list]:
    """What `ros2 launch hiors_bringup <file> <given>` starts: the per-robot file's include of the common file
    with its arguments, the common file's declared defaults under them, then its node actions."""
    robot_file = runpy.run_path(str(ROOT / "launch" / file))["generate_launch_description"]()
    (include,) = robot_file.args[0]
    assert "hiors_common.launch.py" in include.args[0].args[0].args[0]  # Source(PathJoin([share, dir, file]))
    common = runpy.run_path(str(ROOT / "launch" / "hiors_common.launch.py"))
    declared = {
        a.args[0]: a.kwargs["default_value"]
        for a in common["generate_launch_description"]().args[0]
        if type(a).__name__ == "DeclareLaunchArgument"
    }
    assert set(given) <= set(declared), f"{file}: undeclared arguments {set(given) - set(declared)}"
    values = {**declared, **given, **dict(include.kwargs["launch_arguments"])}  # the include's robot wins
    return values, common["_graph_nodes"](values)


def test_the_readme_shows_a_real_robot_and_a_twin_launch_line():
    sims = {args.get("sim", "true") for _, args in readme_launch_lines()}
    assert sims == {"true", "false"}, readme_launch_lines()


def base_folder(root: Path, robot="tora_one", task="raise_hand", goal_state=True) -> Path:
    """A stand-in for a `hiors pretrain --out` folder: the policy's config and statistics, an empty demos/."""
    from hiors_policy.checkpoint import CONFIG_FILE, NORM_FILE
    from hiors_policy.policy import PolicyConfig
    from hiors_policy.presets import get_preset

    (root / "policy").mkdir(parents=True)
    config = PolicyConfig.for_task(robot, task, get_preset("tiny"), goal_state=goal_state)
    (root / "policy" / CONFIG_FILE).write_text(config.to_json())
    (root / "policy" / NORM_FILE).write_text("{}")
    (root / "demos").mkdir()
    return root


def with_folders(given: dict[str, str], tmp: Path) -> dict[str, str]:
    """The README's arguments with its placeholder folders made real under `tmp` (a camera-only base on a real
    robot); every line runs into a run folder under `tmp`."""
    out = {**given, "run_dir": str(tmp / "run")}
    if "base" in given:
        robot = "xtrainer" if "xtrainer" in given["base"] else "tora_one"
        task = "insert_moisturizer" if robot == "xtrainer" else "raise_hand"
        out["base"] = str(base_folder(tmp / "base", robot, task, goal_state=given.get("sim", "true") == "true"))
    if "demos" in given:
        (tmp / "demos").mkdir()
        out["demos"] = str(tmp / "demos")
    return out


@pytest.mark.parametrize("file, given", readme_launch_lines(), ids=lambda x: x if isinstance(x, str) else str(x))
def test_every_readme_launch_line_starts_its_graph(launch_stubs, file, given, tmp_path):
    given = with_folders(given, tmp_path)
    values, actions = launch(file, given)
    nodes = [a for a in actions if type(a).__name__ == "Node"]
    sim = values["sim"] == "true"
    assert {n.kwargs["name"] for n in nodes} >= {"capture", "policy", "arbiter", "recorder"}
    assert ("sim" in {n.kwargs["name"] for n in nodes}) == sim
    graph = [n for n in nodes if n.kwargs["executable"] != "rviz2"]
    assert all(n.kwargs["parameters"][0]["use_sim_time"] is sim for n in graph)  # a real robot has no /clock
    rviz = [n for n in nodes if n.kwargs["executable"] == "rviz2"]
    assert len(rviz) == (given.get("rviz") == "true")
    assert all(r.kwargs["parameters"] == [{"use_sim_time": sim}] for r in rviz)
    if "policy" in given:
        policy = next(n for n in graph if n.kwargs["name"] == "policy")
        assert policy.kwargs["parameters"][0]["checkpoint"] == given["policy"]


def test_use_sim_time_follows_sim_unless_given():
    base = {"robot": "tora_one", "task": "", "policy": "", "learner": "local", "namespace": "", "run_dir": "r"}
    assert graph_args({**base, "sim": "false", "use_sim_time": ""}).use_sim_time is False
    assert graph_args({**base, "sim": "true", "use_sim_time": ""}).use_sim_time is True
    assert graph_args({**base, "sim": "true", "use_sim_time": "false"}).use_sim_time is False
    with pytest.raises(ConfigError, match="use_sim_time needs sim:=true"):  # asked for explicitly: still refused
        robot_graph(graph_args({**base, "sim": "false", "use_sim_time": "true"}))
    with pytest.raises(ConfigError, match="launch argument sim:='ture': expected true or false"):
        graph_args({**base, "sim": "ture"})


def test_the_launch_files_and_hiors_up_give_the_same_nodes_the_same_parameters(launch_stubs, tmp_path, monkeypatch):
    base, run = base_folder(tmp_path / "base"), tmp_path / "run"
    started = {}

    class Started(Exception):
        pass

    def processes(specs, run_dir, env=None):  # what `hiors up` would start; it stops there
        started["specs"] = specs
        raise Started

    monkeypatch.setattr(up, "GraphProcesses", processes)
    with pytest.raises(Started):
        up.run_up(up.UpOptions(robot="tora_one", base=str(base), run_dir=str(run)), quiet=True)
    by_up = {s.name: s.parameters for s in started["specs"]}
    (run / "policy").rename(tmp_path / "up_policy")  # the launch makes its own copy

    _, actions = launch("tora_one.launch.py", {"sim": "true", "base": str(base), "run_dir": str(run)})
    by_launch = {a.kwargs["name"]: a.kwargs["parameters"][0] for a in actions if type(a).__name__ == "Node"}

    # `hiors up`'s own run controls: how many episodes it runs, their seeds, the simulated operator's mode.
    run_controls = {"episode_runner": {"episodes", "seed"}, "sim_operator": {"mode"}}
    assert set(by_up) == set(by_launch)
    for name, params in by_up.items():
        assert set(params) - set(by_launch[name]) == run_controls.get(name, set()), name
        assert {k: v for k, v in params.items() if k not in run_controls.get(name, ())} == by_launch[name], name
    assert by_launch["policy"]["checkpoint"] == by_launch["learner"]["policy_path"] == str(run / "policy")
    assert by_launch["learner"]["demo_log_dir"] == str((base / "demos").resolve())
    assert by_launch["capture"]["goal_state"] is True  # read from the base's policy
    for copy in (run / "policy", tmp_path / "up_policy"):  # the base's weights and normalisation statistics
        assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in (base / "policy").iterdir())


def test_a_real_robot_launch_takes_a_checkpoint_and_demonstrations_and_refuses_a_goal_state_base(
    launch_stubs, tmp_path
):
    demos, ckpt = tmp_path / "demos", tmp_path / "ckpt"
    demos.mkdir()
    _, actions = launch(
        "xtrainer.launch.py", {"sim": "false", "policy": str(ckpt), "demos": str(demos), "run_dir": str(tmp_path)}
    )
    nodes = {a.kwargs["name"]: a.kwargs["parameters"][0] for a in actions if type(a).__name__ == "Node"}
    assert nodes["policy"]["checkpoint"] == nodes["learner"]["policy_path"] == str(ckpt)
    assert nodes["learner"]["demo_log_dir"] == str(demos)
    assert "sim" not in nodes and "leader_arm" in nodes

    goal_base = base_folder(tmp_path / "goal", goal_state=True)
    with pytest.raises(ConfigError, match="goal-state policy"):
        launch("tora_one.launch.py", {"sim": "false", "base": str(goal_base), "run_dir": str(tmp_path / "r")})
    with pytest.raises(ConfigError, match="give either base or policy"):
        launch("tora_one.launch.py", {"base": str(goal_base), "policy": str(ckpt)})
    with pytest.raises(ConfigError, match="base:=.*missing: no such folder"):
        launch("tora_one.launch.py", {"base": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="demos .*missing: no such folder"):
        launch("tora_one.launch.py", {"demos": str(tmp_path / "missing")})
    assert not (tmp_path / "r" / "policy").exists()  # refused before anything is copied


def test_the_robot_driver_pages_launch_line_starts_the_bridge_with_its_configuration(launch_stubs, tmp_path):
    import yaml

    page = "docs/ROBOT_DRIVER.md"
    ((file, given),) = readme_launch_lines(page)
    (block,) = re.findall(r"```yaml\n(.*?)```", (ROOT / page).read_text(), re.S)
    config = tmp_path / given["config_file"]  # config/xtrainer.yaml plus the page's driver_bridge section
    config.write_text((ROOT / "config" / "xtrainer.yaml").read_text() + "\n" + block)
    values, actions = launch(file, {**with_folders(given, tmp_path), "config_file": str(config)})
    assert values["sim"] == "false" and values["robot"] == "xtrainer"
    assert [a.args[0] for a in actions if type(a).__name__ == "PushRosNamespace"] == ["hiors"]
    nodes = {a.kwargs["name"]: a.kwargs["parameters"][0] for a in actions if type(a).__name__ == "Node"}
    bridge = yaml.safe_load(block)["driver_bridge"]["ros__parameters"]
    assert {k: nodes["driver_bridge"][k] for k in bridge} == bridge
    assert nodes["learner"]["demo_log_dir"] == str(tmp_path / "demos")
