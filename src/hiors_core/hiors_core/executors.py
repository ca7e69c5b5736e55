"""The multi-threaded executor every hiors node and test spins on.

rclpy's MultiThreadedExecutor (Jazzy, rclpy 7.1.x as wheeled) yields again, and submits again, a callback that is
still waiting in its thread pool's queue, and while any does it returns from the wait at once (ros2/rclpy#1452,
fixed upstream by ros2/rclpy#1547 but not in these wheels). The spin thread then loops without sleeping, holds the GIL
and starves the very workers it waits for: a busy node's spin thread takes most of its core, and nodes sharing one
such executor run their loops far below real time. This one hands a callback to the pool and waits until a worker has
taken it, so the spin thread sleeps in the wait set whenever there is nothing new to do.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable

from rclpy.context import Context
from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    SingleThreadedExecutor,
    TimeoutException,
)

_NOTHING_TO_RUN = (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException)


class HandoffExecutor(MultiThreadedExecutor):
    """A MultiThreadedExecutor whose spin thread never queues a callback twice (see the module docstring)."""

    def __init__(self, num_threads: int, *, context: Context | None = None) -> None:
        super().__init__(num_threads=num_threads, context=context)
        self._handed: dict = {}  # rclpy task -> the pool future that runs it

    def _spin_once_impl(self, timeout_sec=None, wait_condition: Callable[[], bool] = lambda: False) -> None:
        self._reap()
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except _NOTHING_TO_RUN:
            return
        running = self._handed.get(handler)
        if running is not None and not running.done():
            return  # a worker has it and is about to start it (a window of microseconds)
        started = threading.Event()

        def run() -> None:
            started.set()
            handler()

        try:
            self._handed[handler] = self._executor.submit(run)
        except RuntimeError:  # the pool was shut down under us: the executor is stopping
            return
        # Back-pressure: look for more work only once a worker has this one.
        while not started.wait(0.05):
            if self._is_shutdown or not self._context.ok():
                return

    def wait_for_callbacks(self, timeout_sec: float) -> bool:
        """After the spin has ended: wait for the callbacks the workers still run (rclpy's shutdown does not), so that
        a node is destroyed only once none of its callbacks is running. True when none is left."""
        pending = [f for f in self._handed.values() if not f.done()]
        return not concurrent.futures.wait(pending, timeout=timeout_sec).not_done

    def _reap(self) -> None:
        """Forget finished callbacks, and raise what one of them raised (as rclpy's executor does)."""
        done = [task for task, future in self._handed.items() if future.done()]
        for task in done:
            del self._handed[task]
            if task.done():  # (not done: a coroutine callback waiting on a future; it is yielded again later)
                task.result()


def make_executor(threads: int = 1, context: Context | None = None):
    """A SingleThreadedExecutor for one thread, a HandoffExecutor with that many workers otherwise."""
    if threads <= 1:
        return SingleThreadedExecutor(context=context)
    return HandoffExecutor(num_threads=threads, context=context)
