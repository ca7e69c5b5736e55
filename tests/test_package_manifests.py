"""Each package.xml declares what its package's code imports, so `rosdep install` and colcon on a full ROS install
get every ROS package the code needs (a cheap grep of the import lines, no imports executed).

ROS packages (hiors_*, rclpy, launch, *_msgs, ...) must be declared as <depend>/<exec_depend>, and nothing is
declared that the code does not import. Python libraries without a rosdep key (torch, mujoco, ...) come from
requirements.txt; every third-party import must be classified in PYTHON_LIBS, so a new one cannot slip by.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROS_PACKAGES = {"rclpy", "launch", "launch_ros", "ament_index_python", "rosbag2_py"}  # besides hiors_*, *_msgs, ...
PYTHON_LIBS = {  # installed from requirements.txt
    "numpy", "yaml", "cv2", "matplotlib", "psutil", "pyarrow", "rosbags", "mcap", "torch", "mujoco",
    "transformers", "safetensors", "sentencepiece", "deepspeed", "websockets", "dynamixel_sdk",
}  # fmt: skip
# (package, import) pairs that would make a dependency cycle: code in the wrong package, imported lazily.
MISPLACED: dict[tuple[str, str], str] = {}
IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


def is_ros(module: str) -> bool:
    return module in ROS_PACKAGES or module.startswith("hiors_") or module.endswith(("_msgs", "_interfaces"))


def python_packages() -> list[Path]:
    return sorted(p.parent for p in SRC.glob("*/package.xml") if (p.parent / "setup.py").exists())


def declared(pkg: Path) -> set[str]:
    root = ET.parse(pkg / "package.xml").getroot()
    return {e.text.strip() for tag in ("depend", "exec_depend") for e in root.iter(tag)}


def imported(pkg: Path) -> set[str]:
    files = [*(pkg / pkg.name).rglob("*.py"), *(pkg / "launch").glob("*.py")]
    return {m for f in files for m in IMPORT.findall(f.read_text(encoding="utf-8"))}


def test_the_import_scan_sees_the_imports():
    assert IMPORT.findall("import os\nfrom launch_ros.actions import Node\n    from hiors_sim.tasks import x\n") == [
        "os",
        "launch_ros",
        "hiors_sim",
    ]
    assert len(python_packages()) >= 6


@pytest.mark.parametrize("pkg", python_packages(), ids=lambda p: p.name)
def test_package_xml_declares_every_ros_package_the_code_imports(pkg):
    mods = imported(pkg) - {pkg.name, "__future__"} - set(sys.stdlib_module_names)
    ros = {m for m in mods if is_ros(m) and (pkg.name, m) not in MISPLACED}
    unknown = sorted(mods - ros - PYTHON_LIBS - {m for p, m in MISPLACED if p == pkg.name})
    assert not unknown, f"{pkg.name}: classify these imports (ROS package or PYTHON_LIBS): {unknown}"
    deps = {d for d in declared(pkg) if is_ros(d)}
    assert sorted(ros - deps) == [], f"{pkg.name}/package.xml lacks what its code imports"
    assert sorted(deps - ros) == [], f"{pkg.name}/package.xml declares what its code never imports"


def test_test_support_stays_out_of_the_product():
    """hiors_testing serves tests and benchmarks; a node importing it would ship test code to the robot."""
    users = sorted(p.name for p in python_packages() if "hiors_testing" in declared(p))
    assert users == ["hiors_bench"], f"only hiors_bench may depend on hiors_testing, not {users}"
