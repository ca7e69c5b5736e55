"""Common bringup for one robot: the node graph of hiors_bringup.graph, started with launch_ros.

Included by tora_one.launch.py and xtrainer.launch.py; the pip-only `hiors up` starts the same graph.
"""

import os

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace

from launch import LaunchDescription

ARGUMENTS = [
    ("robot", "tora_one", "Robot kind: tora_one or xtrainer."),
    (
        "sim",
        "true",
        "true: MuJoCo twin, simulated operator and reward oracle; false: a real robot, whose driver publishes and "
        "takes the robot topics (docs/ROBOT_DRIVER.md; driver_bridge:=true bridges a ros2_control driver).",
    ),
    (
        "policy",
        "",
        "pi0 checkpoint folder (lerobot or hiors layout, with its normalisation statistics); empty: the base's policy, "
        "or without a base an untrained tiny pi0 with identity normalisation (a smoke test, it learns nothing useful).",
    ),
    (
        "base",
        "",
        "A `hiors pretrain --out` folder, as `hiors up --base`: its policy/ is copied to run_dir/policy and started "
        "from, its demos/ are the learner's demonstrations. Give base or policy (and demos), not both.",
    ),
    ("demos", "", "The learner's demonstrations (an episode log folder); empty: base's demos/, else run_dir/demos."),
    ("task", "", "Task name, one of the robot's in hiors_core.tasks; empty: the robot's first task."),
    ("learner", "local", "local: start episode_filter and learner here; remote: they run elsewhere; none."),
    ("use_sim_time", "", "Follow /clock from the simulator (true only with sim:=true); empty: the value of sim."),
    ("namespace", "", "Namespace for every node and relative topic."),
    ("rviz", "false", "Start rviz2 with config/<robot>.rviz (needs a full ROS 2 install; not in the pip wheels)."),
    ("run_dir", "runs/latest", "Folder for episode bags, checkpoints and metrics."),
    ("config_file", "", "Node parameters (node: ros__parameters:); empty: config/<robot>.yaml."),
    (
        "driver_bridge",
        "false",
        "With sim:=false: start driver_bridge, which relays an existing driver's /joint_states and commands "
        "(docs/ROBOT_DRIVER.md; its parameters in config_file's driver_bridge section; use a namespace).",
    ),
]


def _graph_nodes(context):
    from hiors_bringup.graph import prepare_run, robot_graph
    from hiors_bringup.launch_args import graph_args, parse_bool
    from hiors_bringup.processes import node_env_defaults

    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    # The strings as GraphArgs (use_sim_time follows sim unless given), and the run folder prepared as `hiors up`
    # prepares it (a base's policy copied in): the same inputs give the same nodes the same parameters.
    args = prepare_run(graph_args(values))
    # The node processes' environment, as `hiors up` gives it (what the caller's environment sets wins).
    actions = [SetEnvironmentVariable(k, os.environ.get(k, v)) for k, v in node_env_defaults().items()]
    if parse_bool("rviz", values["rviz"]):
        actions.append(_rviz(args))
    if args.namespace:
        actions.append(PushRosNamespace(args.namespace))
    for spec in robot_graph(args):
        actions.append(
            Node(
                package=spec.package,
                executable=spec.executable,
                name=spec.name,
                parameters=[spec.parameters],
                output="screen",
            )
        )
    return actions


def _rviz(args):
    """rviz2 on config/<robot>.rviz; its absolute topics are remapped into the stack's namespace, if any."""
    from ament_index_python.packages import get_package_share_directory

    from hiors_bringup.rviz_config import rviz_remappings

    config = os.path.join(get_package_share_directory("hiors_bringup"), "config", f"{args.robot}.rviz")
    return Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", config],
        parameters=[{"use_sim_time": args.use_sim_time}],
        remappings=rviz_remappings(args.robot, args.namespace),
        output="screen",
    )


def generate_launch_description():
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=desc) for name, default, desc in ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_graph_nodes)])
