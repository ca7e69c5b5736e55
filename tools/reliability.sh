#!/usr/bin/env bash
# The reliability and security suite (tests/reliability): faults, bad input, load, soak, access, with one table of
# counts at the end (printed, and written as <run-dir>/reliability.csv).
# Usage: tools/reliability.sh [--full] [--run-dir DIR] [-- PYTEST_ARGS...]
#   without --full: the CI subset (what `make test` runs of it, about 3 minutes on 2 cores)
#   --full:         repeated kill/restart rounds over policy, learner, recorder and sim; thousands of malformed
#                   messages per input; minutes of load; the soak (HIORS_SOAK_S seconds, 3600 by default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec "${HIORS_VENV:-$root/.venv}/bin/python" -m hiors_bench.reliability "$@"
