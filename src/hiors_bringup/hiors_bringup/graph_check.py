"""Check a running graph against its description: every node is up and declares every parameter it was given.

rclpy silently ignores a parameter that a node never declares, so a misspelt key in config/<robot>.yaml would
otherwise run with the default. `hiors up` runs this check once all nodes are started and stops on a mismatch.
"""

from __future__ import annotations

import time

from .graph import IMPLICIT_PARAMS as IMPLICIT
from .graph import NodeSpec


def undeclared(configured: dict, declared: set[str]) -> list[str]:
    """Configured parameter names that the node does not declare, sorted."""
    return sorted(k for k in configured if k not in declared and k not in IMPLICIT)


def check_running_graph(
    node, specs: list[NodeSpec], namespace: str = "", timeout_s: float = 120.0, exited=None, waiting=None
) -> dict:
    """{node name: [undeclared parameter names] or ["not running"]} for every node that does not match.

    `node` is any rclpy node whose executor is spinning in another thread. `exited(name)`, when given, tells
    whether that node's process has ended: such a node is reported at once instead of waited for. `waiting(spec)`,
    when given, is called about twice a second while a node is not up yet (a policy takes a while to load).
    """
    from rcl_interfaces.srv import ListParameters

    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    deadline = time.monotonic() + timeout_s
    problems: dict[str, list[str]] = {}
    for spec in specs:
        client = node.create_client(ListParameters, f"{ns}/{spec.name}/list_parameters")
        try:
            while not client.wait_for_service(timeout_sec=min(0.5, max(0.1, deadline - time.monotonic()))):
                if exited is not None and exited(spec.name):
                    problems[spec.name] = ["not running (its process exited)"]
                    break
                if time.monotonic() >= deadline:
                    problems[spec.name] = ["not running (no parameter services)"]
                    break
                if waiting is not None:
                    waiting(spec)
            if spec.name in problems:
                continue
            future = client.call_async(ListParameters.Request())
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not future.done():
                problems[spec.name] = ["not answering parameter requests"]
                continue
            declared = set(future.result().result.names)
            missing = undeclared(spec.parameters, declared)
            if missing:
                problems[spec.name] = missing
        finally:
            node.destroy_client(client)
    return problems
