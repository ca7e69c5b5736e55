# Source in each (bash) shell of a machine set up by tools/setup_ros_system.sh: ROS 2, the venv, the workspace.
#   source tools/ros_env.sh
_hiors_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1090
. "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
# shellcheck disable=SC1091
. "${HIORS_VENV:-$_hiors_root/.venv-ros}/bin/activate"
# shellcheck disable=SC1091
. "$_hiors_root/install/setup.bash"
unset _hiors_root
