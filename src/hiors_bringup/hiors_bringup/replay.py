"""`hiors replay <bag>`: republish an episode bag on its original topics with its original timing."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from rosbags.rosbag2 import Reader, ReaderError

from hiors_core.errors import EpisodeLogError


def message_class(msgtype: str):
    """'pkg/msg/Name' -> the rclpy message class."""
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError):
        raise EpisodeLogError(f"message type {msgtype} is not installed here") from None


def replay(bag: str | Path, rate: float = 1.0, topic_prefix: str = "", loop: bool = False) -> int:
    """Publish every message of `bag`; returns how many were published. rate=2 plays twice as fast."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message

    bag = Path(bag)
    if rate <= 0:
        raise EpisodeLogError(f"replay rate must be positive, got {rate}")
    if not (bag / "metadata.yaml").exists():
        raise EpisodeLogError(f"{bag}: not a finished rosbag2 bag (metadata.yaml missing)")
    rclpy.init()
    node = rclpy.create_node("hiors_replay")
    published = 0
    try:
        with Reader(bag) as reader:
            pubs, classes = {}, {}
            for c in reader.connections:
                classes[c.id] = message_class(c.msgtype)
                qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
                pubs[c.id] = node.create_publisher(classes[c.id], topic_prefix + c.topic, qos)
            while True:
                t0_bag, t0_wall = None, time.monotonic()
                for conn, stamp, raw in reader.messages():
                    if t0_bag is None:
                        t0_bag = stamp
                    delay = (stamp - t0_bag) / 1e9 / rate - (time.monotonic() - t0_wall)
                    if delay > 0:
                        time.sleep(delay)
                    pubs[conn.id].publish(deserialize_message(raw, classes[conn.id]))
                    published += 1
                if not loop:
                    break
    except ReaderError as e:
        raise EpisodeLogError(f"{bag}: corrupt or truncated bag ({e})") from None
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return published
