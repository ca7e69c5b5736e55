"""The rviz configs: generated from the robot facts, and everything they display is really published."""

import pytest
import rclpy
import yaml
from rclpy.parameter import Parameter
from visualization_msgs.msg import MarkerArray

from hiors_bringup.graph import config_dir
from hiors_bringup.rviz_config import MARKER_NAMESPACES, displayed_topics, render
from hiors_core import topics
from hiors_core.ros_testing import ros_context, spinning, wait_for


@pytest.mark.parametrize("robot", ["tora_one", "xtrainer"])
def test_committed_config_is_the_generated_one(robot):
    committed = (config_dir() / f"{robot}.rviz").read_text()
    assert committed == render(robot), "config/*.rviz is stale: run `python -m hiors_bringup.rviz_config`"


@pytest.mark.node
@pytest.mark.parametrize("robot", ["tora_one", "xtrainer"])
def test_every_displayed_topic_is_published_with_its_type_and_namespaces(robot):
    from hiors_sim.sim_node import SimNode
    from hiors_teleop.arbiter import Arbiter

    config = yaml.safe_load((config_dir() / f"{robot}.rviz").read_text())
    shown = displayed_topics(config)
    marker_display = next(d for d in config["Visualization Manager"]["Displays"] if "Namespaces" in d)
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
                Parameter("control_mode", value="ee" if robot == "tora_one" else "joint"),
                Parameter("marker_rate_hz", value=10.0),
            ],
        )
        probe = rclpy.create_node("rviz_probe", context=ctx)
        markers = []
        probe.create_subscription(MarkerArray, topics.MARKERS, markers.append, 5)
        with spinning([sim, arbiter, probe], context=ctx):
            for topic, msg_type in shown.items():
                wait_for(lambda t=topic: probe.get_publishers_info_by_topic(t), 20, f"a publisher on {topic}")
                types = {i.topic_type for i in probe.get_publishers_info_by_topic(topic)}
                assert types == {msg_type}, f"{topic}: published as {types}, displayed as {msg_type}"
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
