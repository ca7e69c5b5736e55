"""The topic registry: every topic has a type and a QoS, readers are compatible with their publishers, latched
state is transient-local depth 1, and every endpoint in the code takes its QoS (and matches the type) from it."""

import ast
import importlib
from pathlib import Path

import pytest

from hiors_core import topics
from hiors_core.topics import QOS_LATCHED, SERVICES, TOPICS, QoS

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("src", "tests", "tools", "launch")
ENDPOINTS = {"create_publisher": 2, "create_subscription": 3}  # method -> position of its QoS argument
STATE = (topics.ESTOP, topics.CONTROL_STATE, topics.EPISODE_STATUS, topics.POLICY_UPDATE, topics.LEARNER_STATUS)


def _constants() -> dict[str, str]:
    return {k: v for k, v in vars(topics).items() if k.isupper() and isinstance(v, str)}


def test_every_name_is_a_topic_or_a_service():
    names = _constants()
    assert len(set(names.values())) == len(names), "two constants share a name"
    for const, name in names.items():
        assert (name in TOPICS) != (name in SERVICES), f"{const} must be in exactly one of TOPICS and SERVICES"
    assert set(TOPICS) | set(SERVICES) == set(names.values())


def test_types_are_interface_names():
    for name, t in TOPICS.items():
        assert t.name == name
        pkg, kind, cls = t.type.split("/")
        assert kind == "msg" and pkg.endswith("_msgs") and cls[:1].isupper(), t.type
        assert isinstance(t.qos, QoS) and all(isinstance(q, QoS) for q in t.readers.values()), name
    for name, type_ in SERVICES.items():
        assert type_.split("/")[1] == "srv", name


def test_types_exist():
    for t in TOPICS.values():
        pkg, kind, cls = t.type.split("/")
        assert hasattr(importlib.import_module(f"{pkg}.{kind}"), cls), t.type
    for type_ in SERVICES.values():
        pkg, kind, cls = type_.split("/")
        assert hasattr(importlib.import_module(f"{pkg}.{kind}"), cls), type_


def test_latched_state_is_transient_local_depth_one():
    assert QOS_LATCHED == QoS(depth=1, reliable=True, latched=True, keep_all=False)
    for name in STATE:
        assert TOPICS[name].qos == QOS_LATCHED, name
    # The only other latched topics keep a history for late readers on purpose.
    history = {n for n, t in TOPICS.items() if t.qos.latched and t.qos != QOS_LATCHED}
    assert history == {topics.EPISODE_VERDICT, topics.POLICY_WEIGHTS}


def test_readers_match_their_publishers():
    """A reliable reader needs a reliable publisher, a transient-local reader a transient-local one."""
    for name, t in TOPICS.items():
        for role, q in t.readers.items():
            assert t.qos.reliable or not q.reliable, (name, role)
            assert t.qos.latched or not q.latched, (name, role)
            assert q != t.qos, f"{name}: reader {role} is the topic's own QoS; drop it"


def test_lookup_errors_name_what_exists():
    with pytest.raises(KeyError, match="registered topic"):
        topics.qos_spec("no/such/topic")
    with pytest.raises(KeyError, match="recorder"):
        topics.qos_spec(topics.OBSERVATION, "no_such_reader")
    assert topics.qos_spec(topics.OBSERVATION, "recorder") == topics.QOS_SENSOR


def test_profiles_are_rclpys():
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy, qos_profile_sensor_data

    assert topics.profile(topics.QOS_SENSOR) == qos_profile_sensor_data
    default = topics.qos(topics.ACTION_CHUNK)
    assert (default.history, default.depth) == (HistoryPolicy.KEEP_LAST, 10)
    assert (default.reliability, default.durability) == (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE)
    latched = topics.qos(topics.POLICY_UPDATE)
    assert (latched.depth, latched.durability) == (1, DurabilityPolicy.TRANSIENT_LOCAL)
    assert topics.qos(topics.EPISODE).history == HistoryPolicy.KEEP_ALL
    weights = topics.qos(topics.POLICY_WEIGHTS, depth=7)  # the learner's publisher: one version's chunks
    assert (weights.history, weights.depth) == (HistoryPolicy.KEEP_LAST, 7)
    assert weights.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert topics.qos(topics.POLICY_WEIGHTS).history == HistoryPolicy.KEEP_ALL


def _sources():
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path.resolve() != Path(__file__).resolve() and path.name != "topics.py":
                yield path


def test_no_qos_profile_outside_the_registry():
    forbidden = ("QoS" + "Profile(", "qos_" + "profile_")  # rclpy's constructor and its preset profiles
    found = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in _sources()
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if any(f in line for f in forbidden)
    ]
    assert not found, f"QoS made outside hiors_core.topics: {found}"


def _topics_attr(node) -> str | None:
    """The registered topic constant an expression names (`topics.X`, `topics.X.format(...)`, `pre + topics.X`)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "topics":
            if n.attr.isupper():
                return n.attr
    return None


def _endpoint_calls(tree):
    """(call, method) for every create_publisher / create_subscription call, also through a local alias
    (`sub = self.create_subscription`)."""
    aliases = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Attribute) and n.value.attr in ENDPOINTS:
            for target in n.targets:
                if isinstance(target, ast.Name):
                    aliases[target.id] = n.value.attr
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        if isinstance(n.func, ast.Attribute) and n.func.attr in ENDPOINTS:
            yield n, n.func.attr
        elif isinstance(n.func, ast.Name) and n.func.id in aliases:
            yield n, aliases[n.func.id]


def test_every_endpoint_takes_its_qos_and_type_from_the_registry():
    problems, seen = [], 0
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        for call, method in _endpoint_calls(tree):
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            args = list(call.args) + [k.value for k in call.keywords if k.arg == "qos_profile"]
            pos = ENDPOINTS[method]
            if len(args) <= pos:
                problems.append(f"{where}: no QoS argument")
                continue
            seen += 1
            q = args[pos]
            ok = (
                isinstance(q, ast.Call)
                and isinstance(q.func, ast.Attribute)
                and isinstance(q.func.value, ast.Name)
                and q.func.value.id == "topics"
                and q.func.attr in ("qos", "profile")
            )
            if not ok:
                problems.append(f"{where}: QoS not from topics.qos / topics.profile")
                continue
            const = _topics_attr(args[1])
            if const is None or getattr(topics, const) not in TOPICS:
                continue  # a stream outside the graph (device input, a test's own topic): topics.profile
            if q.func.attr != "qos" or not q.args or _topics_attr(q.args[0]) != const:
                problems.append(f"{where}: {const} must take topics.qos(topics.{const}, ...)")
            if isinstance(args[0], ast.Name):
                registered = TOPICS[getattr(topics, const)].type.rsplit("/", 1)[1]
                if args[0].id != registered:
                    problems.append(f"{where}: {args[0].id} on {const}, registered as {registered}")
    assert seen > 50, "the scan found too few endpoints: it no longer sees the code"
    assert not problems, "\n".join(problems)
