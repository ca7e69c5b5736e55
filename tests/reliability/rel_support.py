"""Shared pieces of the reliability suite: CI/full scale, the facts table, hypothesis plumbing, instrumented nodes
(every callback counted, an exception escaping one recorded as a crash) and a guard that checks everything on the
robot command topics."""

from __future__ import annotations

import json
import math
import os
import traceback
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hiors_bench.reliability import FACTS_ENV

# A test runs at CI scale, or (marked `full`, deselected unless asked for) at full scale.
SCALES = [pytest.param("ci", id="ci"), pytest.param("full", id="full", marks=pytest.mark.full)]


def pick(scale: str, ci, full):
    return ci if scale == "ci" else full


def record(section: str, check: str, count, expected="", ok: bool = True, detail: str = "") -> None:
    """One row of the reliability table (hiors_bench.reliability collects them when it runs the suite)."""
    row = {"section": section, "check": check, "count": count, "expected": expected, "ok": bool(ok), "detail": detail}
    print(f"[reliability] {json.dumps(row)}")
    path = os.environ.get(FACTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def fuzz(strategy, body, examples: int, seed: int = 0) -> None:
    """Run `body(x)` on `examples` values drawn from `strategy`, reproducibly (seeded), without shrinking (the
    nodes under test keep state between examples, so a shrunk example would not replay the same history)."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed == 0,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(strategy)
    def run(x):
        body(x)

    if seed:
        run = __import__("hypothesis").seed(seed)(run)
    run()


# --- values -------------------------------------------------------------------------------------------------------

SPECIAL = [0.0, -0.0, 1e-300, -1e-300, 1e-40, 3.4e38, -3.4e38, 1e300, -1e300, math.nan, math.inf, -math.inf]


def wild_floats(lo: float = -2.0, hi: float = 2.0):
    """Mostly plausible numbers, often special ones (NaN, inf, huge, tiny, -0)."""
    return st.one_of(
        st.floats(lo, hi, allow_nan=False),
        st.sampled_from(SPECIAL),
        st.floats(allow_nan=True, allow_infinity=True),
    )


def f32_floats(lo: float = -2.0, hi: float = 2.0):
    """Values that fit a float32 field (rclpy checks the range of float32 fields when a message is built)."""
    return wild_floats(lo, hi).map(
        lambda v: v if not math.isfinite(v) or abs(v) <= 3.4e38 else math.copysign(3.4e38, v)
    )


def finite(values) -> bool:
    return bool(np.all(np.isfinite(np.asarray(values, dtype=np.float64))))


# --- instrumented nodes ---------------------------------------------------------------------------------------------


def instrumented(cls, methods, observe=()):
    """A subclass of node class `cls` whose `methods` (its callbacks) count every call in `self.calls` and keep an
    exception escaping one in `self.crashes` instead of letting it kill the executor: in a node process that
    exception would end the process (rclpy re-raises callback exceptions from spin). The `observe` methods (worker
    code whose errors the node handles itself) note the type of every exception in `self.raised`, and re-raise."""

    def watch(name):
        orig = getattr(cls, name)

        def method(self, *args, **kwargs):
            try:
                return orig(self, *args, **kwargs)
            except Exception as e:
                self.raised[type(e).__name__] += 1
                raise

        method.__name__ = name
        return method

    def wrap(name):
        orig = getattr(cls, name)

        def method(self, *args, **kwargs):
            try:
                return orig(self, *args, **kwargs)
            except Exception:
                self.crashes.append(f"{name}: {traceback.format_exc()}")
            finally:
                self.calls[name] += 1

        method.__name__ = name
        return method

    def __init__(self, *args, **kwargs):
        self.calls = Counter()
        self.crashes = []
        self.raised = Counter()
        cls.__init__(self, *args, **kwargs)

    body = {"__init__": __init__, **{m: wrap(m) for m in methods}, **{m: watch(m) for m in observe}}
    return type(f"Instrumented{cls.__name__}", (cls,), body)


# --- the robot command guard --------------------------------------------------------------------------------------


class CommandGuard:
    """Subscribes to everything that reaches the robot (command topics and ExecutedCommand) under one namespace and
    checks each message on arrival: finite, within the joint/workspace/gripper limits, and step-limited from the
    command before it. `unsafe` lists what failed."""

    def __init__(self, node, limits, arm: str = "left", ns: str = ""):
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import JointState

        from hiors_core import topics
        from hiors_core.robots import MODE_EE_POSE
        from hiors_msgs.msg import ExecutedCommand

        self.limits = limits
        self.unsafe: list[str] = []
        self.counts = Counter()
        self.prev: tuple[int, np.ndarray] | None = None
        self.executed: list = []
        pre = f"/{ns.strip('/')}/" if ns else ""
        sub = node.create_subscription
        sub(ExecutedCommand, pre + topics.EXECUTED, self.on_executed, topics.qos(topics.EXECUTED))
        if limits.mode == MODE_EE_POSE:
            sub(
                PoseStamped,
                pre + topics.CMD_EE_POSE.format(arm=arm),
                self.on_pose,
                topics.qos(topics.CMD_EE_POSE, depth=100),
            )
            sub(JointState, pre + topics.CMD_GRIPPER, self.on_gripper, topics.qos(topics.CMD_GRIPPER, depth=100))
        else:
            sub(JointState, pre + topics.CMD_JOINT, self.on_joint, topics.qos(topics.CMD_JOINT, depth=100))

    def _bad(self, what: str) -> None:
        self.unsafe.append(what)

    def on_executed(self, msg) -> None:
        from hiors_teleop.safety import step_ok, within_limits

        self.counts["executed"] += 1
        self.executed.append(msg)
        a = np.asarray(msg.action, dtype=np.float64)
        if not within_limits(a, self.limits, tol=1e-4):
            self._bad(f"executed step {msg.step}: {a.tolist()} outside the limits")
        if self.prev is not None and msg.step == self.prev[0] + 1 and not step_ok(a, self.prev[1], self.limits, 1e-4):
            self._bad(f"executed step {msg.step}: step from {self.prev[1].tolist()} to {a.tolist()} too large")
        self.prev = (int(msg.step), a)

    def on_pose(self, msg) -> None:
        self.counts["ee_pose"] += 1
        p, o = msg.pose.position, msg.pose.orientation
        pos, q = np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w])
        lo, hi = self.limits.lower[:3], self.limits.upper[:3]
        if not (finite(pos) and finite(q)) or np.any(pos < lo - 1e-6) or np.any(pos > hi + 1e-6):
            self._bad(f"ee command {pos.tolist()} {q.tolist()} outside the workspace or not finite")
        elif abs(np.linalg.norm(q) - 1.0) > 1e-6:
            self._bad(f"ee command quaternion {q.tolist()} not unit")

    def on_gripper(self, msg) -> None:
        self.counts["gripper"] += 1
        g = np.asarray(msg.position, dtype=np.float64)
        if not finite(g) or np.any(g < -1e-6) or np.any(g > 1 + 1e-6):
            self._bad(f"gripper command {g.tolist()} outside [0, 1]")

    def on_joint(self, msg) -> None:
        from hiors_teleop.safety import within_limits

        self.counts["joint"] += 1
        if list(msg.name) != list(self.limits.names) or not within_limits(msg.position, self.limits, tol=1e-9):
            self._bad(f"joint command {list(msg.name)} {list(msg.position)} outside the limits")

    @property
    def total(self) -> int:
        return sum(self.counts.values())
