"""The one `main()` body of every hiors node process: init, spin, and a clean stop on Ctrl-C / SIGINT / SIGTERM.

The stop runs while the ROS context is still up: the spin ends, then the node's own `shutdown()` (worker threads,
open files, their last messages and log lines), then the node, then the context. (rclpy's own signal handlers shut
the context down first, and every stopping node's log ended in "publisher's context is invalid" errors.)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from hiors_core.executors import make_executor

STOP_WAIT_S = 5.0  # for the spin thread and the running callbacks to end
SPIN_POLL_S = 0.2  # the spin thread looks at the stop flag this often when there is nothing to do


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _spin(executor, stopping: threading.Event, failure: list) -> None:
    # Ended by the flag, not by shutting the executor down under it: that destroys its guard condition while the
    # wait still uses it.
    try:
        while not stopping.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=SPIN_POLL_S)
    except ExternalShutdownException:
        pass
    except Exception as e:  # raised by a callback: the node's failure, unless it is being stopped anyway
        if not stopping.is_set():
            failure.append(e)


def run_node(factory: Callable[[], Node], args=None, threads: int = 1) -> int:
    """Build the node with `factory`, spin it (on `threads` executor threads) until SIGINT or SIGTERM, then stop it
    in order: the spin, the node's own `shutdown()` if it has one, the node, the context. A second signal meanwhile
    does not cut the stop short (`hiors up` and the launch files follow up with SIGKILL if it hangs)."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    node = executor = spinner = None
    stopping = threading.Event()
    failure: list[BaseException] = []
    try:
        node = factory()
        executor = make_executor(threads)
        executor.add_node(node)
        # The spin runs in a thread so that the main thread, which gets the signals, can stop it in order.
        spinner = threading.Thread(target=_spin, args=(executor, stopping, failure), name="spin", daemon=True)
        spinner.start()
        while spinner.is_alive():
            spinner.join(0.5)
        if failure:
            raise failure[0]
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopping.set()
        if executor is not None:
            if spinner is not None:
                spinner.join(STOP_WAIT_S)
            wait = getattr(executor, "wait_for_callbacks", None)
            if callable(wait) and (spinner is None or not spinner.is_alive()):
                wait(STOP_WAIT_S)
            executor.shutdown(timeout_sec=STOP_WAIT_S)
        if node is not None:
            stop = getattr(node, "shutdown", None)
            if callable(stop):
                stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
