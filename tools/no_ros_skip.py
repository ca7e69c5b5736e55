"""pytest plugin for tools/test_numpy126.sh: in a venv without ROS, a test or test file that needs a ROS module
(rclpy, generated messages, launch) is reported as skipped with that module's name instead of failing, so the run
shows what passes without ROS and fails on anything else. A test whose failure report names a missing ROS module
(from a subprocess of its own) counts as needing ROS too."""

from __future__ import annotations

import re

import pytest

ROS_MODULE = re.compile(
    r"^(rclpy|launch|launch_ros|ament_index_python|rosbag2_py|rosidl\w*|\w+_msgs|\w+_srvs|\w+_interfaces)$"
)


def _ros_module(excinfo) -> str | None:
    if excinfo is None:
        return None
    e = excinfo.value
    while e is not None:
        if isinstance(e, ModuleNotFoundError) and e.name and ROS_MODULE.match(e.name.split(".")[0]):
            return e.name
        e = e.__cause__ or e.__context__
    return None


def _named_in(text: str) -> str | None:
    m = re.search(r"ModuleNotFoundError: No module named \\?'([\w.]+)\\?'", text)  # quoted or in a repr
    return m.group(1) if m and ROS_MODULE.match(m.group(1).split(".")[0]) else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    name = (_ros_module(call.excinfo) or _named_in(str(report.longrepr))) if report.failed else None
    if name:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"needs ROS ({name})")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    name = _named_in(str(report.longrepr))
    if name:
        report.outcome = "skipped"
        report.longrepr = (str(collector.path), 0, f"needs ROS ({name})")
