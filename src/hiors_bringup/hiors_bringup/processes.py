"""Start a node graph as separate processes on a pip-only install (what `ros2 launch` does on a full one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .graph import NodeSpec, entry_point


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@dataclass
class NodeProcess:
    spec: NodeSpec
    popen: subprocess.Popen
    log_path: Path
    restarts: int = 0


def _die_with_parent() -> None:
    """In the child before exec: get SIGINT (a clean rclpy shutdown) if `hiors` itself dies, even by SIGKILL,
    so that no node outlives the command that started it. SIGINT is reset to its default first: a shell starts
    background jobs with SIGINT ignored, the exec'd node would inherit that and ignore the signal meant to stop it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def node_command(spec: NodeSpec, params_file: Path, namespace: str = "") -> list[str]:
    module, func = entry_point(spec).split(":")
    code = f"import sys; from {module} import {func} as main; sys.exit(main())"
    cmd = [sys.executable, "-c", code, "--ros-args", "-r", f"__node:={spec.name}", "--params-file", str(params_file)]
    if namespace:
        cmd += ["-r", f"__ns:=/{namespace.strip('/')}"]
    return cmd


def node_env_defaults() -> dict[str, str]:
    """Environment every node process starts with unless the caller's environment sets it (`hiors up` and the
    launch files alike).

    Passive OpenMP waits: with the default spin-wait, torch's idle worker threads in one node (the policy between
    chunks) burn the cores another node (the learner, the sim) needs; measured 15 ms vs 0.7 s per tiny-pi0
    inference on a 2-core machine with the policy node idle beside it. Likewise a few torch threads per node: ten
    processes share the machine's cores (2 on a CI machine, where one thread per node trains the tiny pi0 2-3x
    faster than two)."""
    return {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // 4))}


class GraphProcesses:
    """One OS process per node, logs under <run_dir>/logs, parameters as ROS 2 YAML under <run_dir>/params."""

    def __init__(self, specs: list[NodeSpec], run_dir: Path, namespace: str = "", env: dict | None = None):
        self.specs = specs
        self.run_dir = Path(run_dir)
        self.namespace = namespace
        self.env = {**node_env_defaults(), **os.environ, **(env or {})}
        self.procs: dict[str, NodeProcess] = {}

    def _params_file(self, spec: NodeSpec) -> Path:
        d = self.run_dir / "params"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{spec.name}.yaml"
        path.write_text(yaml.safe_dump({spec.name: {"ros__parameters": spec.parameters}}, sort_keys=True))
        return path

    def start(self, spec: NodeSpec) -> NodeProcess:
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{spec.name}.log"
        log = open(log_path, "ab")
        popen = subprocess.Popen(
            node_command(spec, self._params_file(spec), self.namespace),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,  # Ctrl-C in the terminal reaches `hiors`, which stops the nodes in order
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        log.close()
        prev = self.procs.get(spec.name)
        proc = NodeProcess(spec, popen, log_path, restarts=(prev.restarts + 1) if prev else 0)
        self.procs[spec.name] = proc
        self._write_pids()
        return proc

    def _write_pids(self) -> None:
        """The node processes' ids (run_folder.PIDS_FILE): a later `hiors up` on this folder waits for the nodes of
        one that was killed before it starts its own."""
        from .run_folder import PIDS_FILE

        try:
            (self.run_dir / PIDS_FILE).write_text("".join(f"{n} {p.popen.pid}\n" for n, p in self.procs.items()))
        except OSError:
            pass  # a full disk: the run stops on it elsewhere; this file only helps a later resume

    def start_all(self) -> None:
        for spec in self.specs:
            self.start(spec)

    def dead(self) -> list[NodeProcess]:
        return [p for p in self.procs.values() if p.popen.poll() is not None]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.procs[name].popen.send_signal(sig)
        self.procs[name].popen.wait()

    def restart(self, name: str) -> NodeProcess:
        return self.start(self.procs[name].spec)

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGINT every node, wait, SIGKILL what is left. A second Ctrl-C meanwhile cannot cut this short."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        try:
            self._stop_all(timeout)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _stop_all(self, timeout: float) -> None:
        for p in self.procs.values():
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()

    def tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join(self.procs[name].log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
