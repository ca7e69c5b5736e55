"""The task registry: complete and consistent entries, robot defaults, and errors that name the known tasks."""

import dataclasses

import pytest

from hiors_core.errors import ConfigError
from hiors_core.robots import CONTROL_MODES, MODE_EE_POSE, MODE_JOINT, ROBOTS, get_robot
from hiors_core.tasks import (
    TASKS,
    UnknownTaskError,
    _task,
    default_task,
    get_task,
    task_or_default,
    tasks_for,
)


def test_every_task_is_complete_and_names_its_robots_arms():
    assert set(TASKS) == {"raise_hand", "pack_detergent", "insert_moisturizer"}
    for name, t in TASKS.items():
        rs = get_robot(t.robot)
        assert t.name == name and t.instruction.strip() == t.instruction and t.instruction
        assert t.arms and all(rs.arm(a) for a in t.arms)
        assert t.control_mode in CONTROL_MODES and t.human_source in ("quest3", "leader_arm")
        assert bool(t.commanded_arm) == (t.mode == MODE_EE_POSE)
    # One instruction per task, and no two tasks share one (a prompt names its task).
    assert len({t.instruction for t in TASKS.values()}) == len(TASKS)


def test_the_tasks_facts():
    raise_hand, insert = get_task("raise_hand"), get_task("insert_moisturizer")
    assert (raise_hand.robot, raise_hand.arms, raise_hand.mode, raise_hand.commanded_arm) == (
        "tora_one",
        ("left",),
        MODE_EE_POSE,
        "left",
    )
    assert raise_hand.human_source == "quest3"
    assert (insert.robot, insert.arms, insert.mode, insert.commanded_arm, insert.human_source) == (
        "xtrainer",
        ("left", "right"),
        MODE_JOINT,
        "",
        "leader_arm",
    )


def test_control_mode_and_human_source_default_to_the_robots():
    for robot in ROBOTS.values():
        arm = robot.arms[0].name if robot.control_mode == "ee" else ""
        t = _task("t", robot.name, "do it", (robot.arms[0].name,), commanded_arm=arm)
        assert (t.control_mode, t.human_source) == (robot.control_mode, robot.human_source)
    t = _task("t", "tora_one", "do it", ("left",), "joint", human_source="leader_arm")
    assert (t.control_mode, t.human_source) == ("joint", "leader_arm")


def test_bad_entries_are_refused():
    with pytest.raises(KeyError, match="no arm 'middle'"):
        _task("t", "tora_one", "x", ("middle",), "ee", "left")
    with pytest.raises(ConfigError, match="control mode"):
        _task("t", "tora_one", "x", ("left",), "velocity", "left")
    with pytest.raises(ConfigError, match="commanded arm"):
        _task("t", "tora_one", "x", ("left",), "ee")
    with pytest.raises(ConfigError, match="commanded arm"):
        _task("t", "xtrainer", "x", ("left",), "joint", "left")


def test_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TASKS["raise_hand"].instruction = "wave"


def test_unknown_names_are_named_with_the_known_ones():
    with pytest.raises(UnknownTaskError, match=r"did you mean 'raise_hand'.*known tasks") as e:
        get_task("raise_hands")
    assert isinstance(e.value, ConfigError) and isinstance(e.value, KeyError)
    assert str(e.value).startswith("unknown task 'raise_hands'")  # not quoted as KeyError would
    with pytest.raises(UnknownTaskError, match="known tasks") as e:
        get_task("fold_laundry")
    assert "did you mean" not in str(e.value)
    with pytest.raises(UnknownTaskError, match=r"robot 'xtrainer' has no task 'raise_hand'.*insert_moisturizer"):
        get_task("raise_hand", "xtrainer")
    with pytest.raises(KeyError, match="unknown robot"):
        get_task("raise_hand", "spot")


def test_tasks_of_a_robot_and_its_default():
    assert tasks_for("tora_one") == ("raise_hand", "pack_detergent")
    assert tasks_for("xtrainer") == ("insert_moisturizer",)
    assert default_task("tora_one") == "raise_hand" and default_task("xtrainer") == "insert_moisturizer"
    assert task_or_default("xtrainer") is TASKS["insert_moisturizer"]
    assert task_or_default("tora_one", "pack_detergent") is TASKS["pack_detergent"]
    with pytest.raises(UnknownTaskError):
        task_or_default("xtrainer", "pack_detergent")
    with pytest.raises(KeyError, match="unknown robot"):
        tasks_for("spot")
