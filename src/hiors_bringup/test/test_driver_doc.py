"""docs/ROBOT_DRIVER.md, the robot driver contract: its tables are what `hiors_bringup.driver_doc` generates from the
registries, they list exactly the robot-side topics the arbiter and capture nodes use for every robot and task, and
its example bridge configuration is one the driver bridge accepts."""

import re

import pytest
import yaml

from hiors_bringup import driver_doc
from hiors_core import topics
from hiors_core.robots import ROBOTS, get_robot
from hiors_core.tasks import tasks_for

PAGE = driver_doc.PAGE
# The robot side of the graph: what a driver publishes or takes (resync and estop are optional extras).
ROBOT_SIDE = re.compile(r"^/(joint_states|ee_pose/\w+|camera/\w+/image_raw|command/.+)$")
CASES = [(robot, task) for robot in ROBOTS for task in tasks_for(robot)]


def test_the_page_is_what_the_registries_generate():
    page = PAGE.read_text()
    assert page == driver_doc.render(page), "docs/ROBOT_DRIVER.md is stale: run `python -m hiors_bringup.driver_doc`"
    for robot in ROBOTS:  # every joint, in the robot's order
        rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", page.split(f"### {robot}")[1].split("###")[0], re.M)
        assert [name for _, name in rows] == list(get_robot(robot).joint_names)


def _type_name(cls) -> str:
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


@pytest.mark.node
@pytest.mark.parametrize("robot, task", CASES)
def test_the_arbiter_and_capture_use_exactly_the_robot_topics_the_page_lists(robot, task):
    from rclpy.parameter import Parameter

    from hiors_policy.capture_node import CaptureNode
    from hiors_teleop.arbiter import Arbiter
    from hiors_testing.ros import ros_context

    params = [Parameter("robot", value=robot), Parameter("task", value=task)]
    with ros_context() as ctx:
        nodes = [Arbiter(context=ctx, parameter_overrides=params), CaptureNode(context=ctx, parameter_overrides=params)]
        try:
            sent = {(p.topic_name, _type_name(p.msg_type)) for n in nodes for p in n.publishers}
            read = {(s.topic_name, _type_name(s.msg_type)) for n in nodes for s in n.subscriptions}
        finally:
            for n in nodes:
                n.destroy_node()
    listed_pub = {(f"/{s.topic}", s.type) for s in driver_doc.driver_publishes(robot, task)}
    listed_sub = {(f"/{s.topic}", s.type) for s in driver_doc.driver_subscribes(robot, task)}
    assert {t for t in read if ROBOT_SIDE.match(t[0])} == listed_pub  # the graph reads what the driver publishes
    assert {t for t in sent if ROBOT_SIDE.match(t[0])} == listed_sub  # the driver takes what the graph sends


def test_the_qos_the_page_asks_for_reaches_every_reader():
    for robot, task in CASES:
        for s in driver_doc.driver_publishes(robot, task):
            name = next(n for n in topics.TOPICS if n.split("/")[0] == s.topic.split("/")[0])
            readers = [topics.topic(name).qos, *topics.topic(name).readers.values()]
            assert s.qos.startswith("reliable") == any(r.reliable for r in readers), s.topic


def test_the_example_bridge_configuration_is_accepted():
    from hiors_bringup.graph import check_parameters
    from hiors_core.config import node_parameters
    from hiors_teleop.robot_driver.mapping import DriverMap

    (block,) = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), re.S)
    values = check_parameters("driver_bridge", node_parameters(yaml.safe_load(block), "driver_bridge"), "the page")
    dmap = DriverMap.build(
        get_robot("xtrainer"),
        values["joint_map"],
        values["command_joints"],
        values["gripper_closed"],
        values["gripper_open"],
    )
    assert set(dmap.command_joints) == set(get_robot("xtrainer").joint_names)
