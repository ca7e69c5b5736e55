#!/usr/bin/env bash
# requirements-ros-system.txt against numpy 1.26, the numpy that ROS 2 Jazzy's Ubuntu 24.04 packages are built
# against. Not part of `make test`: it downloads and installs a second set of packages (minutes the first time).
#  1. The pins resolve together for Python 3.12 (Ubuntu 24.04's) with numpy==1.26.4: pip's resolver on wheels for
#     3.12 (deepspeed ships no wheel: its declared requirements stand in for it).
#  2. A venv of this machine's Python with those pins and numpy 1.26.4 runs the tests without ROS: the hiors Python
#     packages installed editable, node and end-to-end tests deselected, and a test that needs a ROS module reported
#     as skipped (tools/no_ros_skip.py). Anything else that fails is a failure.
# Usage: tools/test_numpy126.sh [pytest args...]
# HIORS_NP126_VENV: that venv (default: np126-venv beside the repository).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${HIORS_NP126_VENV:-$(dirname "$root")/np126-venv}
req=$root/requirements-ros-system.txt
py=${PYTHON:-python3}
say() { printf '[test_numpy126] %s\n' "$*"; }

say "1. resolving $(basename "$req") for Python 3.12 with numpy==1.26.4"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deepspeed_deps="einops hjson msgpack ninja numpy packaging>=20.0 psutil py-cpuinfo pydantic>=2.0.0 torch>=2.0.0 tqdm"
grep -v '^deepspeed==' "$req" > "$tmp/req.txt"
# shellcheck disable=SC2086
"$py" -m pip install --dry-run --ignore-installed --quiet --report "$tmp/report.json" --python-version 3.12 \
  --only-binary=:all: --target "$tmp/target" -r "$tmp/req.txt" numpy==1.26.4 $deepspeed_deps 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
"$py" -c "
import json, sys
got = {i['metadata']['name'].lower(): i['metadata']['version'] for i in json.load(open(sys.argv[1]))['install']}
print('[test_numpy126]    resolved', len(got), 'packages: numpy', got['numpy'], 'torch', got['torch'],
      'opencv-python-headless', got['opencv-python-headless'], 'pyarrow', got['pyarrow'])
assert got['numpy'] == '1.26.4', got['numpy']
" "$tmp/report.json"

say "2. the tests without ROS on numpy 1.26.4 in $venv"
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip setuptools==80.9.0 2>&1 | { grep -v "^WARNING: Location" || true; }
fi
if ! "$venv/bin/python" -m pip install --quiet -r "$req" numpy==1.26.4 2>"$tmp/pip.log"; then
  grep -v "^WARNING: Location" "$tmp/pip.log"
  exit 1
fi
for d in "$root"/src/*/; do
  [ -f "$d/setup.py" ] || continue
  "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$d" >"$tmp/pip.log" 2>&1 \
    || { cat "$tmp/pip.log"; exit 1; }
done
"$venv/bin/python" -c "import numpy; assert numpy.__version__ == '1.26.4', numpy.__version__"
cd "$root"
PYTHONPATH=$root/tools OMP_WAIT_POLICY=PASSIVE "$venv/bin/python" -m pytest -p no_ros_skip -q \
  -m "not node and not e2e and not gpu and not full" "$@"
