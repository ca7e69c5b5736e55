"""requirements-ros-system.txt (a machine with ROS 2 Jazzy from Ubuntu's packages) keeps requirements.txt's pins
(the pip-only workspace), less what ROS brings itself, with a numpy range that takes Ubuntu 24.04's numpy 1.26 and
requirements.txt's numpy, and older pins only where the newer ones refuse numpy 1.x (checked for real by
tools/test_numpy126.sh, which installs that file beside numpy 1.26.4 and runs the tests without ROS)."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
UBUNTU_NUMPY = Version("1.26.4")  # python3-numpy of Ubuntu 24.04, what ROS 2 Jazzy's packages there are built against
# What a ROS 2 install brings itself: the ROS wheels and the tools that build interface packages.
FROM_ROS = re.compile(r"^(ros-jazzy-.*|catkin-pkg|empy|lark|colcon-common-extensions|wheel)$")
# Pinned older on the ROS machine, and why: the release requirements.txt pins requires numpy 2.
OLDER_FOR_NUMPY_1 = {"opencv-python-headless", "pyarrow"}


def requirements(name: str) -> dict[str, Requirement]:
    lines = (ROOT / name).read_text().splitlines()
    reqs = [Requirement(line.split("#")[0].strip()) for line in lines if line.split("#")[0].strip()]
    return {r.name.lower(): r for r in reqs}


def pinned(r: Requirement) -> Version:
    (spec,) = r.specifier
    assert spec.operator == "==", f"{r} is not pinned with =="
    return Version(spec.version)


def test_the_ros_system_file_has_every_pin_but_what_ros_brings():
    pip_only, ros_system = requirements("requirements.txt"), requirements("requirements-ros-system.txt")
    expected = {n for n in pip_only if not FROM_ROS.match(n)}
    assert set(ros_system) == expected, f"differ: {sorted(set(ros_system) ^ expected)}"


def test_numpy_takes_ubuntus_and_the_pip_only_pin():
    pip_only, ros_system = requirements("requirements.txt"), requirements("requirements-ros-system.txt")
    numpy = ros_system["numpy"].specifier
    assert numpy.contains(UBUNTU_NUMPY) and numpy.contains(pinned(pip_only["numpy"])), numpy


def test_the_other_pins_are_the_same_or_older_where_numpy_1_needs_it():
    pip_only, ros_system = requirements("requirements.txt"), requirements("requirements-ros-system.txt")
    for name, r in ros_system.items():
        if name == "numpy":
            continue
        if name in OLDER_FOR_NUMPY_1:
            assert pinned(r) < pinned(pip_only[name]), f"{name}: drop it from OLDER_FOR_NUMPY_1 if the pins agree"
        else:
            assert pinned(r) == pinned(pip_only[name]), f"{name}: {r} here, {pip_only[name]} in requirements.txt"
