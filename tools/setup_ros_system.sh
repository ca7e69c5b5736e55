#!/usr/bin/env bash
# Set-up on a machine with ROS 2 Jazzy from Ubuntu 24.04's packages (a robot PC; docker/Dockerfile runs it too):
# a venv that sees the system's site packages, the pins of requirements-ros-system.txt in it, and a colcon build of
# the workspace run by the venv's Python, so that the nodes' scripts start with it. rclpy, colcon and Ubuntu's
# numpy 1.26 stay the system's: pip installs beside them and never tries to uninstall a Debian package.
# (tools/setup.sh is the other set-up: ROS 2 from PyPI wheels on a machine without ROS.)
# Usage: tools/setup_ros_system.sh [--no-build]   (--no-build: the venv only)
#        then in each shell: source tools/ros_env.sh
# HIORS_VENV names the venv (default .venv-ros); pip's own variables pass through (the Dockerfile sets
# PIP_EXTRA_INDEX_URL for torch's CPU build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${HIORS_VENV:-$root/.venv-ros}
build=1
[ "${1:-}" = "--no-build" ] && build=0

say() { printf '[setup_ros_system] %s\n' "$*"; }

if [ -z "${AMENT_PREFIX_PATH:-}" ]; then
  setup=/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash
  [ -f "$setup" ] || { say "no ROS 2 install: $setup is missing (on a machine without ROS use tools/setup.sh)"; exit 1; }
  set +u  # ROS's setup files read unset variables
  # shellcheck disable=SC1090
  . "$setup"
  set -u
fi

[ -x "$venv/bin/python" ] || { say "creating $venv"; python3 -m venv --system-site-packages "$venv"; }
touch "$venv/COLCON_IGNORE"
say "installing requirements-ros-system.txt into $venv"
"$venv/bin/python" -m pip install -r "$root/requirements-ros-system.txt"

# The ROS message packages are compiled against the system's numpy: one from the venv must not shadow it.
"$venv/bin/python" - <<'EOF'
import sys

import numpy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import JointState

if numpy.__file__.startswith(sys.prefix):
    sys.exit(f"numpy {numpy.__version__} was installed into the venv over the system's; see requirements-ros-system.txt")
msg = deserialize_message(serialize_message(JointState(position=[1.0, 2.0])), JointState)
assert list(msg.position) == [1.0, 2.0]
print(f"[setup_ros_system] rclpy and the system's numpy {numpy.__version__} work in the venv")
EOF

[ $build = 1 ] || exit 0
say "building the workspace with colcon"
cd "$root"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m colcon build --symlink-install --cmake-args -DBUILD_TESTING=OFF
say "ready: source tools/ros_env.sh"
