"""Helpers for node tests: run nodes in a background executor and wait on conditions instead of sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import rclpy
from rclpy.context import Context
from rclpy.node import Node

from hiors_core.executors import make_executor


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` until it is true; raise a TimeoutError that names `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")


def wait_for_subscribers(publisher, count: int = 1, timeout: float = 10.0) -> None:
    wait_for(
        lambda: publisher.get_subscription_count() >= count, timeout, f"{count} subscriber(s) on {publisher.topic_name}"
    )


def wait_for_publishers(subscription, count: int = 1, timeout: float = 10.0) -> None:
    wait_for(
        lambda: subscription.get_publisher_count() >= count,
        timeout,
        f"{count} publisher(s) on {subscription.topic_name}",
    )


@contextmanager
def spinning(nodes: Iterable[Node] | Node, context: Context | None = None, threads: int = 4):
    """Spin the given nodes in a background thread for the duration of the block, on the executor run_node gives a
    node process with that many threads."""
    nodes = [nodes] if isinstance(nodes, Node) else list(nodes)
    executor = make_executor(threads, context)
    for n in nodes:
        executor.add_node(n)
    stop = threading.Event()

    def spin():
        while not stop.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=0.05)

    # Stop the spinning thread before shutting the executor down: shutting it down under a running spin()
    # destroys its guard condition while spin_once still uses it.
    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield executor
    finally:
        stop.set()
        thread.join(timeout=5.0)
        executor.shutdown(timeout_sec=2.0)


@contextmanager
def ros_context():
    """An rclpy context of its own for one test; shut down afterwards even if the test fails."""
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


class LogLines:
    """Stands in for a node's logger (`node.get_logger = lambda: log`): keeps (level, message) of what it is asked
    to log, so a test can count the lines a refusal or a failure produced."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level):
        return lambda msg, **_: self.lines.append((level, msg))
