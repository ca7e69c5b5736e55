"""The launch files with the exact argument sets the README shows, through the launch files' own logic (the
launch packages are stubbed: they are not in the pip wheels), and the launch arguments' string handling."""

import re
import runpy
import sys
import types
from pathlib import Path

import pytest

from hiors_bringup.graph import robot_graph
from hiors_bringup.launch_args import graph_args
from hiors_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
LAUNCH_LINE = re.compile(r"ros2 launch hiors_bringup (\w+\.launch\.py)((?:[ \t]+[\w.]+:=\S*)*)")


def readme_launch_lines() -> list[tuple[str, dict[str, str]]]:
    text = (ROOT / "README.md").read_text()
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


@pytest.mark.parametrize("file, given", readme_launch_lines(), ids=lambda x: x if isinstance(x, str) else str(x))
def test_every_readme_launch_line_starts_its_graph(launch_stubs, file, given):
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
