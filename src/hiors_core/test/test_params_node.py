"""Node test: parameters declared from a table (hiors_core.params.declare) carry their range, choices and
read_only into ROS, so a `ros2 param set` (the node's SetParameters service) outside them is refused, and a start-up
value outside them stops the node with one line."""

import math
import time

import pytest
from rcl_interfaces.srv import DescribeParameters, SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter

from hiors_core.errors import ConfigError
from hiors_core.params import Param, declare
from hiors_testing.ros import ros_context, spinning

TABLE = {
    "robot": Param("tora_one", "robot name", choices=("tora_one", "xtrainer"), read_only=True),
    "teleop_timeout_s": Param(0.25, "the human's input is lost when older (s)", 0.001, 10.0),
    "k_auto": Param(20, "policy steps per chunk", 1, 1000),
    "sampling_mode": Param("dual", "sampling", choices=("dual", "fixed_low")),
}


def _call(client, request, timeout_s: float = 10.0):
    future = client.call_async(request)
    deadline = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert future.done(), "no answer from the node's parameter service"
    return future.result()


def test_ros2_param_set_outside_a_parameters_range_is_refused():
    with ros_context() as ctx:
        node = Node("arbiter", context=ctx)
        cli = Node("param_cli", context=ctx)
        try:
            values = declare(node, TABLE)
            assert values == {"robot": "tora_one", "teleop_timeout_s": 0.25, "k_auto": 20, "sampling_mode": "dual"}
            setter = cli.create_client(SetParameters, "/arbiter/set_parameters")
            describer = cli.create_client(DescribeParameters, "/arbiter/describe_parameters")
            with spinning([node, cli], ctx):
                assert setter.wait_for_service(timeout_sec=10.0)
                attempts = [
                    Parameter("teleop_timeout_s", value=math.inf),
                    Parameter("teleop_timeout_s", value=math.nan),
                    Parameter("teleop_timeout_s", value=-1.0),
                    Parameter("k_auto", value=1_000_000),
                    Parameter("k_auto", value="many"),
                    Parameter("sampling_mode", value="duel"),
                    Parameter("robot", value="xtrainer"),  # read-only: fixed once the node runs
                    Parameter("k_auto", value=12),  # in range: taken
                ]
                request = SetParameters.Request(parameters=[p.to_parameter_msg() for p in attempts])
                results = _call(setter, request).results
                assert [r.successful for r in results] == [False] * 7 + [True], [r.reason for r in results]
                assert "sampling_mode" in results[5].reason and "'duel'" in results[5].reason
                assert node.get_parameter("teleop_timeout_s").value == 0.25
                assert node.get_parameter("k_auto").value == 12
                assert node.get_parameter("robot").value == "tora_one"
                described = _call(describer, DescribeParameters.Request(names=["teleop_timeout_s"])).descriptors[0]
                assert described.description == TABLE["teleop_timeout_s"].description
                assert described.additional_constraints == "a float in [0.001, 10]"
                rng = described.floating_point_range[0]
                assert (rng.from_value, rng.to_value) == (0.001, 10.0)
        finally:
            cli.destroy_node()
            node.destroy_node()


@pytest.mark.parametrize(
    "override, words",
    [
        (Parameter("k_auto", value=0), "k_auto"),
        (Parameter("teleop_timeout_s", value=math.nan), "teleop_timeout_s"),
        (Parameter("sampling_mode", value="duel"), "'duel'"),
        (Parameter("k_auto", value=2.5), "k_auto"),
    ],
)
def test_a_start_up_value_outside_the_table_stops_the_node_in_one_line(override, words):
    with ros_context() as ctx:
        node = Node("arbiter", context=ctx, parameter_overrides=[override])
        try:
            with pytest.raises(ConfigError) as err:
                declare(node, TABLE)
            assert "\n" not in str(err.value) and str(err.value).startswith("node arbiter, parameter ")
            assert words in str(err.value)
        finally:
            node.destroy_node()


def test_a_default_the_node_computes_follows_the_values_declared_before_it():
    table = {"arm": Param("left", "arm"), "joints": Param([""], "joints"), "offsets": Param([0.0], "offsets")}
    with ros_context() as ctx:
        node = Node("leader_arm", context=ctx, parameter_overrides=[Parameter("arm", value="right")])
        try:
            p = declare(
                node, table, {"joints": lambda v: [f"{v['arm']}_j1", f"{v['arm']}_j2"], "offsets": lambda v: [0.0] * 2}
            )
            assert p == {"arm": "right", "joints": ["right_j1", "right_j2"], "offsets": [0.0, 0.0]}
        finally:
            node.destroy_node()
