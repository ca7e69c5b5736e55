"""The rviz configs: generated from the robot facts, everything they display is really published (type, QoS,
marker namespaces), and the launch file starts rviz2 on them. rviz2 itself is not in the pip wheels: headless."""

import os
import runpy
import sys
import types
from pathlib import Path

import pytest
import yaml

from hiors_bringup.graph import config_dir
from hiors_bringup.rviz_config import MARKER_NAMESPACES, displayed_topics, render, rviz_remappings
from hiors_core import topics
from hiors_core.robots import get_robot

ROOT = Path(__file__).resolve().parents[3]


def _displays(config: dict) -> list[dict]:
    return config["Visualization Manager"]["Displays"]


@pytest.mark.parametrize("robot", ["tora_one", "xtrainer"])
def test_committed_config_is_the_generated_one(robot):
    committed = (config_dir() / f"{robot}.rviz").read_text()
    assert committed == render(robot), "config/*.rviz is stale: run `python -m hiors_bringup.rviz_config`"
    config = yaml.safe_load(committed)
    spec = get_robot(robot)
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == spec.base_frame
    shown = displayed_topics(config)
    assert "/" + topics.MARKERS in shown
    assert {"/" + topics.CAMERA.format(name=c) for c in spec.cameras} <= set(shown)
    assert not any(d["Class"] == "rviz_default_plugins/RobotModel" for d in _displays(config))  # no URDF


def test_namespaced_launch_remaps_every_displayed_topic():
    assert rviz_remappings("xtrainer") == []
    remaps = dict(rviz_remappings("xtrainer", "/cell_2/"))
    shown = displayed_topics(yaml.safe_load((config_dir() / "xtrainer.rviz").read_text()))
    assert remaps == {t: "/cell_2" + t for t in shown}


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def test_launch_starts_rviz_on_the_robot_config_outside_the_namespace(monkeypatch):
    """The launch file's rviz action, with launch/launch_ros stubbed (they are not in the pip wheels)."""
    values = {"robot": "tora_one", "task": "", "sim": "true", "policy": "", "learner": "local"}
    values |= {"use_sim_time": "true", "namespace": "lab", "rviz": "true", "run_dir": "runs/x"}
    values |= {"base": "", "demos": "", "config_file": "", "driver_bridge": "false"}

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return values[self.name]

    stubs = {
        "launch": types.ModuleType("launch"),
        "launch.actions": types.ModuleType("launch.actions"),
        "launch.substitutions": types.ModuleType("launch.substitutions"),
        "launch_ros": types.ModuleType("launch_ros"),
        "launch_ros.actions": types.ModuleType("launch_ros.actions"),
    }
    stubs["launch"].LaunchDescription = _Recorded
    stubs["launch.actions"].DeclareLaunchArgument = stubs["launch.actions"].OpaqueFunction = _Recorded
    stubs["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    stubs["launch_ros.actions"].Node = type("Node", (_Recorded,), {})
    stubs["launch_ros.actions"].PushRosNamespace = type("PushRosNamespace", (_Recorded,), {})
    stubs["launch.actions"].SetEnvironmentVariable = type("SetEnvironmentVariable", (_Recorded,), {})
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    import ament_index_python.packages as ament

    monkeypatch.setattr(ament, "get_package_share_directory", lambda pkg: str(ROOT))
    launch = runpy.run_path(str(ROOT / "launch" / "hiors_common.launch.py"))
    actions = launch["_graph_nodes"](None)
    # The node processes' environment first, as `hiors up` gives it; the caller's environment wins.
    from hiors_bringup.processes import node_env_defaults

    env = {a.args[0]: a.args[1] for a in actions if type(a).__name__ == "SetEnvironmentVariable"}
    assert env == {k: os.environ.get(k, v) for k, v in node_env_defaults().items()}
    actions = [a for a in actions if type(a).__name__ != "SetEnvironmentVariable"]
    rviz, push = actions[0], actions[1]
    assert rviz.kwargs["executable"] == "rviz2" and type(push).__name__ == "PushRosNamespace"
    config = Path(rviz.kwargs["arguments"][1])
    assert rviz.kwargs["arguments"][0] == "-d" and config == ROOT / "config" / "tora_one.rviz" and config.exists()
    assert rviz.kwargs["remappings"] == rviz_remappings("tora_one", "lab")
    assert rviz.kwargs["parameters"] == [{"use_sim_time": True}]
    values["rviz"] = "false"
    assert all(a.kwargs.get("executable") != "rviz2" for a in launch["_graph_nodes"](None))


@pytest.mark.node
@pytest.mark.parametrize("robot", ["tora_one", "xtrainer"])
def test_every_displayed_topic_is_published_with_its_type_and_namespaces(robot):
    import rclpy
    from rclpy.parameter import Parameter
    from rclpy.qos import ReliabilityPolicy
    from visualization_msgs.msg import MarkerArray

    from hiors_sim.sim_node import SimNode
    from hiors_teleop.arbiter import Arbiter
    from hiors_testing.ros import ros_context, spinning, wait_for

    config = yaml.safe_load((config_dir() / f"{robot}.rviz").read_text())
    shown = displayed_topics(config)
    reliable = {
        d["Topic"]["Value"]: d["Topic"]["Reliability Policy"] == "Reliable" for d in _displays(config) if "Topic" in d
    }
    marker_display = next(d for d in _displays(config) if "Namespaces" in d)
    with ros_context() as ctx:
        sim = SimNode(
            context=ctx,
            parameter_overrides=[
                Parameter("robot", value=robot),
                Parameter("real_time_factor", value=1.0),
                Parameter("image_width", value=32),
                Parameter("image_height", value=32),
                Parameter("camera_rate_hz", value=5.0),
            ],
        )
        arbiter = Arbiter(
            context=ctx,
            parameter_overrides=[
                Parameter("robot", value=robot),
                Parameter("marker_rate_hz", value=10.0),
            ],
        )
        probe = rclpy.create_node("rviz_probe", context=ctx)
        markers = []
        probe.create_subscription(MarkerArray, topics.MARKERS, markers.append, topics.qos(topics.MARKERS, depth=5))
        with spinning([sim, arbiter, probe], context=ctx):
            for topic, msg_type in shown.items():
                wait_for(lambda t=topic: probe.get_publishers_info_by_topic(t), 20, f"a publisher on {topic}")
                infos = probe.get_publishers_info_by_topic(topic)
                types = {i.topic_type for i in infos}
                assert types == {msg_type}, f"{topic}: published as {types}, displayed as {msg_type}"
                if reliable[topic]:  # a reliable subscription never matches a best-effort publisher
                    assert all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos), topic
            wait_for(lambda: markers, 20, "markers")
            namespaces = {m.ns for m in markers[-1].markers}
            assert set(marker_display["Namespaces"]) == set(MARKER_NAMESPACES) <= namespaces
            assert all(
                m.header.frame_id == config["Visualization Manager"]["Global Options"]["Fixed Frame"]
                for m in markers[-1].markers
            )
        arbiter.destroy_node()
        sim.destroy_node()
        probe.destroy_node()
