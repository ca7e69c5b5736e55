"""The launch files' arguments (strings, as `ros2 launch ... name:=value` gives them) as the graph's GraphArgs.

Pure, so the README's launch lines are tested here without the launch packages. `use_sim_time` left empty (its
default) follows `sim`: the twin publishes /clock, a real robot has none, so `sim:=false` alone is a valid
real-robot launch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from hiors_core.errors import ConfigError

from .graph import GraphArgs

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_bool(name: str, text: str) -> bool:
    """A launch argument's true/false, with an error naming it for anything else (a typo must not mean false)."""
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ConfigError(f"launch argument {name}:={text!r}: expected true or false")


def graph_args(values: Mapping[str, str]) -> GraphArgs:
    """GraphArgs from the launch arguments' values; arguments that are not GraphArgs fields (rviz) are ignored,
    fields without an argument keep their defaults."""
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(GraphArgs):
        if f.name not in values or f.name == "use_sim_time":
            continue
        text = values[f.name]
        kwargs[f.name] = parse_bool(f.name, text) if f.type in (bool, "bool") else text
    sim = kwargs.get("sim", GraphArgs.sim)
    clock = values.get("use_sim_time", "").strip()
    kwargs["use_sim_time"] = parse_bool("use_sim_time", clock) if clock else sim
    return GraphArgs(**kwargs)
