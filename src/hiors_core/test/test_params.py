"""Parameter tables (hiors_core.params): types, ranges, choices and the one-line problems, without rclpy."""

import math

import pytest

from hiors_core.params import Param, check_values, defaults

TABLE = {
    "rate_hz": Param(10.0, "rate (Hz)", 0.1, 100.0),
    "steps": Param(5, "steps", 1, 1000),
    "mode": Param("dual", "mode", choices=("dual", "fixed")),
    "on": Param(True, "switch"),
    "names": Param([""], "names"),
    "gains": Param([1.0], "gains", -1.0, 1.0),
    "ids": Param([1], "ids", 0, 253),
}


@pytest.mark.parametrize(
    "name, value",
    [
        ("rate_hz", math.nan),
        ("rate_hz", math.inf),
        ("rate_hz", -50.0),
        ("rate_hz", 0.0),
        ("rate_hz", "fast"),
        ("rate_hz", True),  # a boolean is not a number here
        ("steps", 0),
        ("steps", 2.5),  # an integer parameter takes no float
        ("steps", 10**6),
        ("mode", "duel"),
        ("mode", 1),
        ("on", 1),
        ("names", "a"),
        ("names", [1]),
        ("gains", [0.5, 2.0]),
        ("gains", [math.nan]),
        ("ids", [1.5]),
    ],
)
def test_values_outside_a_parameter_type_or_range_are_refused_in_one_line(name, value):
    out, lines = check_values("arbiter", TABLE, {name: value}, "--set")
    assert out == {} and len(lines) == 1
    line = lines[0]
    assert "\n" not in line and line.startswith(f"node arbiter, parameter {name}: {value!r}")
    assert line.endswith("(from --set)") and TABLE[name].allowed() in line


def test_allowed_values_pass_normalized():
    given = {"rate_hz": 100, "steps": 1, "mode": "fixed", "on": False, "names": ("a", "b"), "gains": [1, -0.5]}
    out, lines = check_values("arbiter", TABLE, given | {"use_sim_time": True}, ignore={"use_sim_time"})
    assert lines == []
    assert out == {**given, "rate_hz": 100.0, "names": ["a", "b"], "gains": [1.0, -0.5], "use_sim_time": True}
    assert type(out["rate_hz"]) is float and type(out["gains"][0]) is float  # as ROS wants a double


def test_a_misspelt_parameter_names_the_closest_known_one():
    _, lines = check_values("learner", TABLE, {"rate_hs": 1.0, "zzz": 1}, "config/tora_one.yaml")
    assert lines == [
        "node learner has no parameter 'rate_hs' (did you mean 'rate_hz'?) (from config/tora_one.yaml)",
        "node learner has no parameter 'zzz' (from config/tora_one.yaml)",
    ]


def test_what_a_parameter_allows_reads_as_words():
    assert TABLE["rate_hz"].allowed() == "a float in [0.1, 100]"
    assert Param(0, "x", 0).allowed() == "an integer >= 0"
    assert Param(0.0, "x").allowed() == "a float"
    assert TABLE["mode"].allowed() == "one of 'dual', 'fixed'"
    assert TABLE["ids"].allowed() == "a list of integers in [0, 253]"
    assert TABLE["names"].allowed() == "a list of strings"


def test_a_table_cannot_hold_a_default_it_refuses():
    with pytest.raises(ValueError, match="not one of"):
        Param("x", "mode", choices=("a", "b"))
    with pytest.raises(ValueError, match="not a float in"):
        Param(5.0, "rate", 0.0, 1.0)
    with pytest.raises(ValueError, match="non-empty default"):
        Param([], "list")
    assert defaults(TABLE)["steps"] == 5
