"""Node parameters, declared once: type, default, range or choices and description per parameter.

Every node keeps its parameters in a table `{name: Param}` in a pure module of its package (`<package>/params.py`),
which the node declares from (`declare`) and `hiors up` and the launch files check values against before any
process starts (`check_values`). The node's declaration carries the same facts as a ROS ParameterDescriptor
(FloatingPointRange / IntegerRange, read_only), so `ros2 param set` refuses what the table refuses.

A parameter's type is its default's: bool, int, float, str, or a list of one of them. Floats are always finite (a
FloatingPointRange refuses NaN and inf); an int is accepted where a float is expected (`lr: 1` in YAML).
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_KIND_NAMES = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}


@dataclass(frozen=True)
class Param:
    default: Any  # its type is the parameter's (a list: of its first item's type)
    description: str
    low: float | None = None  # inclusive bounds of a number (of every item of a list of numbers); None = open
    high: float | None = None
    choices: tuple = ()  # the allowed values of a string (empty: any)
    read_only: bool = False  # fixed once the node runs (identity, wiring, files): `ros2 param set` is refused

    def __post_init__(self):
        if self.kind is list and not self.default:
            raise ValueError("a list parameter needs a non-empty default to fix its item type")
        if self.choices and self.default not in self.choices:
            raise ValueError(f"default {self.default!r} is not one of {self.choices}")
        if self.problem(self.default):
            raise ValueError(f"default {self.default!r} is not {self.allowed()}")

    @property
    def kind(self) -> type:
        return type(self.default) if type(self.default) in _KIND_NAMES else list

    @property
    def item(self) -> type | None:
        """The item type of a list parameter (None for scalars)."""
        return type(self.default[0]) if self.kind is list else None

    def allowed(self) -> str:
        """What the parameter accepts, in words: 'a float in [0, 10]', "one of 'a', 'b'", 'a list of strings'."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = self.item or self.kind
        what = _KIND_NAMES[kind] + _bounds(self.low, self.high)
        if self.kind is list:
            what = "a list of " + (_KIND_NAMES[kind].split(" ", 1)[1] + "s" + _bounds(self.low, self.high))
        return what

    def normalized(self, value: Any) -> Any:
        """`value` as the node receives it: ints widened to floats where floats are expected, tuples as lists.
        Call it on a value without `problem`s."""
        if self.kind is float:
            return float(value)
        if self.kind is list:
            return [float(v) for v in value] if self.item is float else list(value)
        return value

    def problem(self, value: Any) -> str:
        """'' when `value` is allowed, else why not (the value, then what is allowed)."""
        if self.kind is list:
            ok = isinstance(value, list | tuple) and all(self._scalar_ok(v, self.item) for v in value)
        else:
            ok = self._scalar_ok(value, self.kind)
        return "" if ok else f"{_show(value)} is not allowed; expected {self.allowed()}"

    def _scalar_ok(self, value: Any, kind: type) -> bool:
        if kind is bool or kind is str:
            return type(value) is kind and (not self.choices or value in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def _num(x: float) -> str:
    return f"{x:g}"


def _bounds(low, high) -> str:
    if low is not None and high is not None:
        return f" in [{_num(low)}, {_num(high)}]"
    if low is not None:
        return f" >= {_num(low)}"
    if high is not None:
        return f" <= {_num(high)}"
    return ""


def _show(value: Any) -> str:
    kind = _KIND_NAMES.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})" if isinstance(value, str | bool) else repr(value)


def defaults(*tables: Mapping[str, Param]) -> dict[str, Any]:
    """{name: default} over the tables (later tables win)."""
    return {name: spec.default for table in tables for name, spec in table.items()}


def closest(name: str, known) -> str:
    """' (did you mean 'x'?)' for the closest known name, or ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_values(
    node: str, table: Mapping[str, Param], values: Mapping[str, Any], source: str = "", ignore=()
) -> tuple[dict[str, Any], list[str]]:
    """Check `values` given to `node` against its table: (the values normalized, one line per problem).

    Each line names the node, the parameter, the value and what is allowed, or the closest known name of an
    unknown parameter; `source` (a file, '--set') is appended. Names in `ignore` (parameters every node has, such
    as use_sim_time) pass through unchecked."""
    out: dict[str, Any] = {}
    lines: list[str] = []
    where = f" (from {source})" if source else ""
    for name, value in values.items():
        spec = table.get(name)
        if name in ignore:
            out[name] = value
        elif spec is None:
            lines.append(f"node {node} has no parameter {name!r}{closest(name, table)}{where}")
        elif why := spec.problem(value):
            lines.append(f"node {node}, parameter {name}: {why}{where}")
        else:
            out[name] = spec.normalized(value)
    return out, lines


# ------------------------------------------------------------------------------------------ ROS side (lazy imports)
def descriptor(name: str, spec: Param):
    """The ROS ParameterDescriptor of one parameter: its description, what it allows, its range, read_only."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    d = ParameterDescriptor(
        name=name, description=spec.description, additional_constraints=spec.allowed(), read_only=spec.read_only
    )
    kind = spec.item or spec.kind
    if spec.kind is float:  # always a range: it also refuses NaN and inf
        low = -sys.float_info.max if spec.low is None else float(spec.low)
        high = sys.float_info.max if spec.high is None else float(spec.high)
        d.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
    elif kind is int and spec.kind is int and (spec.low is not None or spec.high is not None):
        low = _INT_MIN if spec.low is None else int(spec.low)
        high = _INT_MAX if spec.high is None else int(spec.high)
        d.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
    return d


def declare(node, table: Mapping[str, Param], initial: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Declare every parameter of `table` on the rclpy `node` with its descriptor; return {name: value}.

    `initial` replaces a table default that the node only knows once running, as a value or as a function of the
    values declared before it (in table order), e.g. the joint names of the `arm` declared above: the table's
    default then only fixes the type. Later changes (`ros2 param set`) are checked against the table too
    (choices, list items), and a value given at start-up that the table refuses raises ConfigError in one line."""
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.exceptions import ParameterException

    name_of = node.get_name()

    def on_set(params) -> SetParametersResult:
        for prm in params:
            spec = table.get(prm.name)
            why = spec.problem(prm.value) if spec is not None else ""
            if why:
                return SetParametersResult(successful=False, reason=f"node {name_of}, parameter {prm.name}: {why}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    initial = initial or {}
    out = {}
    for name, spec in table.items():
        try:
            first = initial.get(name, spec.default)
            first = first(out) if callable(first) else first
            value = node.declare_parameter(name, first, descriptor(name, spec)).value
        except ParameterException as e:  # a start-up override the descriptor or on_set refused
            raise ConfigError(f"node {name_of}, parameter {name}: {e}".replace("\n", " ")) from None
        if why := spec.problem(value):  # e.g. an override of another type than the default's
            raise ConfigError(f"node {name_of}, parameter {name}: {why}")
        out[name] = spec.normalized(value)
    return out
