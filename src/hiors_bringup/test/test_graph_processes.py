"""The pip-only process runner: nodes never outlive `hiors`, and a stop is not cut short by a second Ctrl-C."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from hiors_testing.ros import wait_for

pytestmark = pytest.mark.node

PARENT = textwrap.dedent(
    """
    import sys, time
    from hiors_bringup.graph import NodeSpec
    from hiors_bringup.processes import GraphProcesses

    procs = GraphProcesses([NodeSpec("reward_oracle", "hiors_sim", "reward_oracle", {})], sys.argv[1])
    procs.start_all()
    print(procs.procs["reward_oracle"].popen.pid, flush=True)
    time.sleep(600)
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_nodes_die_with_a_killed_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)  # no finally, no cleanup: only the kernel can tell the node
        parent.wait()
        wait_for(lambda: not alive(child), 30, "the node to exit after its parent was killed")
    finally:
        if parent.poll() is None:
            parent.kill()
