"""Hi-ORS on the tora one (real robot or its simulated twin): `ros2 launch hiors_bringup tora_one.launch.py sim:=true`."""

from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description():
    common = PathJoinSubstitution([FindPackageShare("hiors_bringup"), "launch", "hiors_common.launch.py"])
    # Every other argument (sim, policy, base, demos, task, learner, ...; `ros2 launch -s` lists them) is declared,
    # with its description, by the common file and passes through unchanged.
    return LaunchDescription(
        [
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(common), launch_arguments={"robot": "tora_one"}.items()
            )
        ]
    )
