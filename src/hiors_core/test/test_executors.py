"""The HandoffExecutor: callbacks still run side by side on its workers, a callback's exception still surfaces, and
while the workers are busy the spin thread waits instead of going round re-queueing callbacks (ros2/rclpy#1452)."""

import threading
import time

import pytest
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from hiors_core import topics
from hiors_core.executors import HandoffExecutor, make_executor
from hiors_testing.ros import ros_context, wait_for

pytestmark = pytest.mark.node


def cpu_work(seconds: float) -> None:
    """Hold the GIL for `seconds`, as a callback that steps physics or converts images does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_busy_workers_do_not_make_the_spin_thread_go_round():
    """Three subscriptions of one node (its default, mutually exclusive group) fed at 200 Hz, each callback 2 ms of
    CPU. rclpy's MultiThreadedExecutor goes round hundreds of times per callback it runs under this load; the
    HandoffExecutor goes round about once per callback (or per 50 ms timeout)."""
    with ros_context() as ctx:
        source, sink = Node("source", context=ctx), Node("sink", context=ctx)
        pub = source.create_publisher(String, "hiors_executor_test", topics.profile(topics.QOS_DEFAULT))
        handled = []

        def on_msg(msg):
            handled.append(1)
            cpu_work(0.002)

        for _ in range(3):
            sink.create_subscription(String, "hiors_executor_test", on_msg, topics.profile(topics.QOS_DEFAULT))
        source.create_timer(0.005, lambda: pub.publish(String(data="x")))
        executor = HandoffExecutor(num_threads=3, context=ctx)
        executor.add_node(source)
        executor.add_node(sink)
        rounds = 0
        try:
            while len(handled) < 300:
                executor.spin_once(timeout_sec=0.05)
                rounds += 1
                assert rounds < 30_000, f"went round {rounds} times for {len(handled)} callbacks"
        finally:
            executor.shutdown(timeout_sec=2.0)
            source.destroy_node()
            sink.destroy_node()
        timer_ticks = 300 / 3  # the publishing timer's callbacks also take a round each
        assert rounds < 3 * (len(handled) + timer_ticks), f"{rounds} rounds for {len(handled)} callbacks"


def test_callbacks_of_a_reentrant_group_run_side_by_side():
    with ros_context() as ctx:
        node = Node("side_by_side", context=ctx)
        lock = threading.Lock()
        state = {"active": 0, "most": 0}

        def work():
            with lock:
                state["active"] += 1
                state["most"] = max(state["most"], state["active"])
            time.sleep(0.2)
            with lock:
                state["active"] -= 1

        group = ReentrantCallbackGroup()
        for _ in range(3):
            node.create_timer(0.02, work, callback_group=group)
        executor = make_executor(2, ctx)
        assert isinstance(executor, HandoffExecutor)
        executor.add_node(node)
        try:
            deadline = time.monotonic() + 10.0
            while state["most"] < 2 and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
        finally:
            executor.shutdown(timeout_sec=2.0)
            node.destroy_node()
        assert state["most"] == 2, "both workers ran a callback at once"


def test_a_callbacks_exception_surfaces_from_spin():
    with ros_context() as ctx:
        node = Node("raiser", context=ctx)
        node.create_timer(0.01, lambda: 1 / 0)
        executor = make_executor(2, ctx)
        executor.add_node(node)
        try:
            with pytest.raises(ZeroDivisionError):
                deadline = time.monotonic() + 5.0
                while time.monotonic() < deadline:
                    executor.spin_once(timeout_sec=0.05)
        finally:
            executor.shutdown(timeout_sec=2.0)
            node.destroy_node()


def test_one_thread_is_a_single_threaded_executor():
    with ros_context() as ctx:
        node = Node("ticker", context=ctx)
        ticks = []
        node.create_timer(0.01, lambda: ticks.append(1))
        executor = make_executor(1, ctx)
        assert not isinstance(executor, MultiThreadedExecutor)
        executor.add_node(node)
        try:
            deadline = time.monotonic() + 5.0
            while len(ticks) < 5 and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            wait_for(lambda: len(ticks) >= 5, 0.1, "five timer callbacks")
        finally:
            executor.shutdown(timeout_sec=2.0)
            node.destroy_node()
