"""`hiors replay <bag>`: republish an episode bag on its original topics with its original timing.

Before it starts it says what it will publish (topics, types, counts) and how long that takes. The pauses between
messages are the bag's own, except that a gap longer than `max_gap_s` is a jump of the bag's clock (older recorders
stamped an episode's meta message with the wall clock, 57 years from the sim time of the rest): it is reported and
skipped, not waited out.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2 import Reader, ReaderError

from hiors_core.errors import EpisodeLogError

MAX_GAP_S = 10.0  # longer than any pause within an episode; a longer one is a clock jump, played without waiting


@dataclass(frozen=True)
class Jump:
    index: int  # the message played right after the jump (in bag order)
    topic: str
    gap_s: float  # the bag's clock difference to the message before (negative: backwards)


@dataclass(frozen=True)
class Plan:
    """What a replay of one bag publishes and when, in seconds after its start at rate 1."""

    bag: Path
    topics: dict[str, tuple[str, int]]  # topic -> (type, message count), in the bag's connection order
    offsets_s: list[float]
    jumps: list[Jump]

    @property
    def duration_s(self) -> float:
        return self.offsets_s[-1] if self.offsets_s else 0.0

    def describe(self, rate: float = 1.0) -> list[str]:
        lines = [
            f"{self.bag}: {len(self.offsets_s)} messages on {len(self.topics)} topics, "
            f"lasting {self.duration_s / rate:.2f} s at rate {rate:g}"
        ]
        w_topic = max((len(t) for t in self.topics), default=0)
        w_type = max((len(m) for m, _ in self.topics.values()), default=0)
        lines += [f"  {t:<{w_topic}}  {m:<{w_type}}  {n:>6} messages" for t, (m, n) in self.topics.items()]
        lines += [
            f"warning: the bag's clock jumps by {_span(j.gap_s)} before message {j.index} ({j.topic}); "
            "played without waiting (its messages do not share one time base)"
            for j in self.jumps
        ]
        return lines


def _span(seconds: float) -> str:
    s = abs(seconds)
    text = (
        f"{s / 31_557_600:.1f} years" if s >= 31_557_600 else f"{s / 86_400:.1f} days" if s >= 86_400 else f"{s:.1f} s"
    )
    return text if seconds >= 0 else f"-{text} (backwards)"


def play_offsets(
    stamps_ns: list[int], topics: list[str], max_gap_s: float = MAX_GAP_S
) -> tuple[list[float], list[Jump]]:
    """When to publish each message (seconds after the first, at rate 1): the bag's own gaps, except that a gap
    longer than max_gap_s or going backwards counts as zero and is returned as a jump."""
    offsets: list[float] = []
    jumps: list[Jump] = []
    t = 0.0
    for i, stamp in enumerate(stamps_ns):
        if i:
            gap = (stamp - stamps_ns[i - 1]) / 1e9
            if 0 <= gap <= max_gap_s:
                t += gap
            else:
                jumps.append(Jump(i, topics[i], gap))
        offsets.append(t)
    return offsets, jumps


def plan(bag: str | Path, max_gap_s: float = MAX_GAP_S) -> Plan:
    """Read the bag's topics and stamps (not its clock in metadata.yaml, which a jump makes meaningless)."""
    bag = Path(bag)
    if not (bag / "metadata.yaml").exists():
        raise EpisodeLogError(f"{bag}: not a finished rosbag2 bag (metadata.yaml missing)")
    try:
        with Reader(bag) as reader:
            counts: dict[str, tuple[str, int]] = {}
            for c in reader.connections:
                counts[c.topic] = (c.msgtype, counts.get(c.topic, ("", 0))[1] + c.msgcount)
            stamps, topics = [], []
            for conn, stamp, _ in reader.messages():
                stamps.append(stamp)
                topics.append(conn.topic)
    except ReaderError as e:
        raise EpisodeLogError(f"{bag}: corrupt or truncated bag ({e})") from None
    offsets, jumps = play_offsets(stamps, topics, max_gap_s)
    return Plan(bag, counts, offsets, jumps)


def message_class(msgtype: str, bag: str | Path = "", topic: str = ""):
    """'pkg/msg/Name' -> the rclpy message class; the error names the bag and topic that need it."""
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError):
        where = f"{bag}: topic {topic} has " if bag else ""
        raise EpisodeLogError(
            f"{where}message type {msgtype}, which is not installed here (source the workspace that builds {pkg})"
        ) from None


def replay(
    bag: str | Path,
    rate: float = 1.0,
    topic_prefix: str = "",
    loop: bool = False,
    max_gap_s: float = MAX_GAP_S,
    say: Callable[[str], None] = print,
) -> int:
    """Publish every message of `bag`; returns how many were published. rate=2 plays twice as fast."""
    import rclpy
    from rclpy.context import Context
    from rclpy.serialization import deserialize_message

    from hiors_core import topics

    bag = Path(bag)
    if rate <= 0:
        raise EpisodeLogError(f"replay rate must be positive, got {rate}")
    p = plan(bag, max_gap_s)
    classes = {topic: message_class(msgtype, bag, topic) for topic, (msgtype, _) in p.topics.items()}
    for line in p.describe(rate):
        say(line)
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("hiors_replay", context=context)
    published = 0
    try:
        pubs = {
            t: node.create_publisher(cls, topic_prefix + t, topics.profile(topics.QOS_REPLAY))
            for t, cls in classes.items()
        }
        while True:
            with Reader(bag) as reader:
                t0 = time.monotonic()
                for offset, (conn, _, raw) in zip(p.offsets_s, reader.messages(), strict=True):
                    delay = offset / rate - (time.monotonic() - t0)
                    if delay > 0:
                        time.sleep(delay)
                    pubs[conn.topic].publish(deserialize_message(raw, classes[conn.topic]))
                    published += 1
            if not loop:
                break
    except ReaderError as e:
        raise EpisodeLogError(f"{bag}: corrupt or truncated bag ({e})") from None
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return published
