"""The README's list of tasks per robot is the registry's (hiors_core/tasks.py), in its order."""

import re
from pathlib import Path

from hiors_core.robots import ROBOTS
from hiors_core.tasks import tasks_for

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_lists_every_robots_tasks_as_registered():
    text = README.read_text()
    listed = {m[1]: re.findall(r"`(\w+)`", m[2]) for m in re.finditer(r"^- `(\w+)`: (.+)$", text, re.M)}
    assert {robot: listed.get(robot) for robot in ROBOTS} == {robot: list(tasks_for(robot)) for robot in ROBOTS}
