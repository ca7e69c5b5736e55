"""The one `main()` body of every hiors node process: init, spin, and a clean stop on Ctrl-C / SIGINT / SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from hiors_core.executors import make_executor


def run_node(factory: Callable[[], Node], args=None, threads: int = 1) -> int:
    """Build the node with `factory`, spin it (on `threads` executor threads), then stop it in order:
    the node's own `shutdown()` (worker threads, open files) if it has one, then the node, then the context."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        executor = make_executor(threads)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            stop = getattr(node, "shutdown", None)
            if callable(stop):
                stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
