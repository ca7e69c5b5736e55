"""Access: what only the configured parties can do. Covered elsewhere and not repeated here: the WebSocket and page
refuse a missing or wrong token (hiors_teleop/test/test_devices.py, test_bridge_nodes.py); bad-sha256, wrong-shape
and older-version weight updates are refused (hiors_policy/test/test_policy_nodes.py, hiors_core test_rejection_
filters.py), and thousands more forged ones in test_rel_fuzz_policy.py. Here: the bound address, the token's
corner cases, pickles never loaded (checkpoints, weight blobs, optimizer state), and SROS2 (docs/SECURITY.md)."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import pickle
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
import torch
from rel_support import record
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from hiors_bringup.graph import GraphArgs, robot_graph
from hiors_policy import build_tiny_policy
from hiors_policy.policy import CheckpointError, Pi0Policy
from hiors_teleop.quest3.device import Quest3WebXR


class Evil:
    """Unpickling this runs code (creates a marker directory)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def evil_pickle(marker: Path) -> bytes:
    buf = io.BytesIO()
    pickle.dump({"state": Evil(str(marker))}, buf)
    return buf.getvalue()


def listening(port: int) -> list[str]:
    return sorted(
        c.laddr.ip
        for c in psutil.Process().net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    )


def other_local_address() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


# --- the teleop web endpoint ------------------------------------------------------------------------------------------


def test_web_endpoint_binds_only_where_configured():
    dev = Quest3WebXR(host="127.0.0.1", port=0, token="t")
    dev.connect()
    try:
        bound = listening(dev.port)
        other = other_local_address()
        refused = None
        if other:
            with socket.socket() as s:
                s.settimeout(5)
                refused = s.connect_ex((other, dev.port)) != 0
    finally:
        dev.disconnect()
    record(
        "access", "quest3 endpoint bound addresses (127.0.0.1 configured)", len(bound), expected=1, detail=str(bound)
    )
    assert bound == ["127.0.0.1"], f"listening on {bound}"
    if other:
        record("access", f"quest3 endpoint unreachable from {other}", int(refused), expected=1, ok=refused)
        assert refused
    # The graph never asks for more: the Quest 3 bridge of a real-robot graph keeps the loopback default.
    specs = {s.name: s for s in robot_graph(GraphArgs(robot="tora_one", sim=False, use_sim_time=False))}
    host = specs["quest3"].parameters.get("host", "127.0.0.1")
    record("access", "quest3 host in the shipped graph", host, expected="127.0.0.1", ok=host == "127.0.0.1")
    assert host == "127.0.0.1"


def test_web_endpoint_token_corner_cases():
    dev = Quest3WebXR(host="127.0.0.1", port=0, token="")  # no token configured: a random one, never none
    dev.connect()
    try:
        assert len(dev.token) >= 16
        base = f"127.0.0.1:{dev.port}"
        refused = 0
        for q in ("?token=", f"?token=x{dev.token}", f"?token=wrong&token={dev.token}", f"?Token={dev.token}"):
            with pytest.raises(InvalidStatus) as e:
                connect(f"ws://{base}/ws{q}", open_timeout=5).close()
            assert e.value.response.status_code == 403
            with pytest.raises(urllib.error.HTTPError) as e2:
                urllib.request.urlopen(f"http://{base}/{q}", timeout=5)
            assert e2.value.code == 403
            refused += 2
        with connect(f"ws://{base}/ws?token={dev.token}", open_timeout=5):
            pass
        assert dev.stats()["rejected"] == refused
    finally:
        dev.disconnect()
    record("access", "quest3 requests without the right token refused (403, counted)", refused, expected=refused)


def test_web_endpoint_counts_and_logs_oversized_requests_and_messages(caplog):
    """A 100 kB token (request line over the websockets library's 8 kB: HTTP 414, before any token check), a 100 kB
    header (431), a request that is not HTTP and a message over 1 MiB on an authorised socket (closed with 1009) are
    refusals like a wrong token: each counted, the bridge logs them in one line with their reasons, and nothing
    logs a traceback (not even at debug level)."""
    from rclpy.parameter import Parameter
    from websockets.exceptions import ConnectionClosedError

    from hiors_teleop.quest3.bridge import Quest3Bridge
    from hiors_teleop.quest3.device import MAX_MESSAGE_BYTES
    from hiors_testing.ros import LogLines, ros_context, wait_for

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="websockets.client")  # (the test's own side: headers it sent)
    with ros_context() as ctx:
        params = [Parameter("port", value=0), Parameter("token", value="t"), Parameter("max_age_s", value=0.0)]
        bridge = Quest3Bridge(context=ctx, parameter_overrides=params)
        log = LogLines()
        bridge.get_logger = lambda: log
        dev = bridge.device
        base = f"127.0.0.1:{dev.port}"
        try:
            codes = []
            with pytest.raises(InvalidStatus) as e:
                connect(f"ws://{base}/ws?token={'x' * 100_000}", open_timeout=5).close()
            codes.append(e.value.response.status_code)
            with pytest.raises(urllib.error.HTTPError) as e2:
                urllib.request.urlopen(f"http://{base}/?token={'x' * 100_000}", timeout=5)
            codes.append(e2.value.code)
            with pytest.raises(InvalidStatus) as e:
                connect(f"ws://{base}/ws?token=t", open_timeout=5, additional_headers={"X-Big": "y" * 100_000}).close()
            codes.append(e.value.response.status_code)
            with socket.create_connection(("127.0.0.1", dev.port), timeout=5) as s:
                s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                s.recv(100)  # the server closes it
            assert codes == [414, 414, 431]
            wait_for(lambda: dev.stats()["rejected"] == 4, 10, "every refused request counted")
            with connect(f"ws://{base}/ws?token=t", open_timeout=5, max_size=None) as ws:
                ws.send("x" * (MAX_MESSAGE_BYTES + 1))
                with pytest.raises(ConnectionClosedError) as closed:
                    ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
            wait_for(lambda: dev.stats()["malformed"] == 1, 10, "the oversized message counted")
            with connect(f"ws://{base}/ws?token=t", open_timeout=5) as ws:  # the endpoint still serves
                ws.send(json.dumps({"p": [0, 1, 0], "q": [0, 0, 0, 1], "buttons": [0, 1]}))
                wait_for(lambda: dev.stats()["packets"] == 1, 10, "a good packet after the refusals")
            bridge.publish_diagnostics()
            bridge.publish_diagnostics()  # nothing new: nothing logged
        finally:
            bridge.destroy_node()
    warnings = [m for level, m in log.lines if level in ("warning", "warn", "error")]
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    stats = dev.stats()
    record(
        "access",
        "quest3 oversized requests refused (414/431, counted)",
        stats["rejected"] - 1,
        3,
        codes == [414, 414, 431],
    )
    record("access", "quest3 non-HTTP requests refused (counted)", stats["rejected"] - 3, 1, stats["rejected"] == 4)
    record(
        "access", "quest3 messages over 1 MiB refused (1009, counted)", stats["malformed"], 1, stats["malformed"] == 1
    )
    record("access", "quest3 refusal log lines (one report)", len(warnings), 1, ok=len(warnings) == 1)
    record("access", "quest3 tracebacks logged for refusals", len(tracebacks), 0, ok=not tracebacks)
    assert not tracebacks, tracebacks[0].getMessage()
    assert len(warnings) == 1, warnings
    line = warnings[0]
    for why in ("2 x request line too long: HTTP 414", "1 x request headers too large: HTTP 431",
                "1 x not an HTTP request", f"1 x message over {MAX_MESSAGE_BYTES} bytes: closed with 1009"):  # fmt: skip
        assert why in line, line


# --- weights only from safetensors ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_policy("tora_one", "raise_hand", seed=0)


def test_pickles_are_never_loaded(tiny, tmp_path):
    marker = tmp_path / "code-ran"
    refused = 0
    ckpt = tiny.save(tmp_path / "ckpt")
    # 1. A checkpoint whose model.safetensors is a pickle.
    (ckpt / "model.safetensors").write_bytes(evil_pickle(marker))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        Pi0Policy.load(ckpt)
    refused += 1
    # 2. A checkpoint with only a pickled pytorch_model.bin (lerobot/transformers' old layout).
    (ckpt / "model.safetensors").unlink()
    torch.save({"x": Evil(str(marker))}, ckpt / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        Pi0Policy.load(ckpt)
    refused += 1
    # 3. A weight blob (over the PolicyWeights topic, or a local weights file) that is a pickle.
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        tiny.parse_blob(evil_pickle(marker))
    refused += 1
    # 4. The learner's optimizer state (torch.save of plain tensors) is read with weights_only: a pickle that
    #    would run code is refused.
    from hiors_learner.engine import TorchEngine
    from hiors_learner.optim import OptimConfig

    engine = TorchEngine(tiny, OptimConfig(), "cpu", 0)
    ck = tmp_path / "learner-ckpt"
    ck.mkdir()
    engine.save(ck)
    torch.save({"optimizer": Evil(str(marker)), "scheduler": {}}, ck / "optimizer.pt")
    with pytest.raises(pickle.UnpicklingError):
        engine.load(ck, 3)
    refused += 1
    record("access", "pickled weights / state refused", refused, expected=4)
    record("access", "pickle payloads executed", int(marker.exists()), expected=0, ok=not marker.exists())
    assert not marker.exists()
    # And the real thing still loads.
    good = tiny.save(tmp_path / "good")
    assert Pi0Policy.load(good).to_safetensors_bytes() == tiny.to_safetensors_bytes()
    assert "weights_only=True" in Path(sys.modules["hiors_learner.engine"].__file__).read_text()


# --- SROS2 -----------------------------------------------------------------------------------------------------------

PROBE = """
import rclpy
rclpy.init()
node = rclpy.create_node("hiors_security_probe")
print("NODE_CREATED")
node.destroy_node()
rclpy.shutdown()
"""


def run_probe(env_extra: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)


def test_enforced_security_without_keys_refuses_to_start(tmp_path):
    """With ROS_SECURITY_STRATEGY=Enforce a node never starts unauthenticated: no keystore, no node."""
    p = run_probe(
        {
            "ROS_SECURITY_ENABLE": "true",
            "ROS_SECURITY_STRATEGY": "Enforce",
            "ROS_SECURITY_KEYSTORE": str(tmp_path / "no-keystore"),
        }
    )
    refused = p.returncode != 0 and "NODE_CREATED" not in p.stdout
    record("access", "SROS2 Enforce without a keystore: node refused", int(refused), expected=1, ok=refused)
    assert refused, p.stdout + p.stderr
    assert "SECURITY ERROR" in p.stderr or "security" in p.stderr.lower()


def security_support(tmp_path) -> str:
    """'' when this ROS 2 install can run an SROS2-secured graph, else why not."""
    why = []
    ks = tmp_path / "probe-ks"
    (ks / "enclaves" / "probe").mkdir(parents=True)
    p = run_probe(
        {
            "ROS_SECURITY_ENABLE": "true",
            "ROS_SECURITY_STRATEGY": "Enforce",
            "ROS_SECURITY_KEYSTORE": str(ks),
            "ROS_SECURITY_ENCLAVE_OVERRIDE": "/probe",
        }
    )
    if "doesn't have the security libraries" in p.stderr:
        why.append("this Fast DDS was built without its security plugins (-DSECURITY=OFF)")
    if importlib.util.find_spec("sros2") is None or shutil.which("ros2") is None:
        why.append("the sros2 package and the ros2 CLI (keystore tools) are not installed")
    return "; ".join(why)


TALKER = """
import sys, time, rclpy
from std_msgs.msg import String
rclpy.init()
n = rclpy.create_node("talker")
p = n.create_publisher(String, "secret", 10)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    p.publish(String(data="hello"))
    rclpy.spin_once(n, timeout_sec=0.1)
"""
LISTENER = """
import sys, time, rclpy
from std_msgs.msg import String
rclpy.init()
n = rclpy.create_node("listener")
got = []
n.create_subscription(String, "secret", got.append, 10)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and not got:
    rclpy.spin_once(n, timeout_sec=0.1)
print("GOT" if got else "NOTHING")
"""


def test_sros2_keeps_unauthenticated_nodes_off_the_graph(tmp_path):
    """docs/SECURITY.md, step by step: a keystore, one enclave per node, Enforce. A secured listener hears the
    secured talker; a listener without keys hears nothing."""
    why = security_support(tmp_path)
    record("access", "SROS2 secured graph test", "skipped" if why else "ran", detail=why)
    if why:
        pytest.skip(f"SROS2 cannot run here: {why}; see docs/SECURITY.md")
    ks = tmp_path / "keystore"
    subprocess.run(["ros2", "security", "create_keystore", str(ks)], check=True, timeout=120)
    for enclave in ("/hiors/talker", "/hiors/listener"):
        subprocess.run(["ros2", "security", "create_enclave", str(ks), enclave], check=True, timeout=120)
    secure = {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce", "ROS_SECURITY_KEYSTORE": str(ks)}

    def start(code, seconds, enclave=None, secured=True):
        env = {**os.environ, **(secure if secured else {})}
        args = [sys.executable, "-c", code, str(seconds), "--ros-args"]
        if enclave:
            args += ["--enclave", enclave]
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    talker = start(TALKER, 40, "/hiors/talker")
    try:
        ok = start(LISTENER, 30, "/hiors/listener").communicate(timeout=60)[0]
        intruder = start(LISTENER, 10, secured=False).communicate(timeout=60)[0]
    finally:
        talker.kill()
        talker.wait()
    record("access", "SROS2: secured listener hears the secured talker", int("GOT" in ok), expected=1)
    record("access", "SROS2: listener without keys hears nothing", int("NOTHING" in intruder), expected=1)
    assert "GOT" in ok and "NOTHING" in intruder
