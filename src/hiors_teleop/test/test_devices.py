"""Device adapters: clutch maths, leader-arm mapping, the WebXR server's token check, and the page in real
headless Chromium (skipped with a reason where /usr/bin/chromium is missing)."""

import json
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from hiors_core.rotations import quat_angle, quat_normalize
from hiors_teleop.leader_arm.device import JointStateLeader, LeaderArmMapping
from hiors_teleop.quest3.device import Clutch, Quest3Topics, Quest3WebXR, command_from_packet
from hiors_testing.ros import wait_for

CHROMIUM = "/usr/bin/chromium"


def test_clutch_reanchors_on_engage_and_maps_xr_to_base():
    c = Clutch(scale=1.0)
    assert c.update(False, [0, 1, 0], [0, 0, 0, 1]) is None
    dp, dq = c.update(True, [0.5, 1.0, 0.0], [0, 0, 0, 1])
    assert np.allclose(dp, 0) and quat_angle(dq, [0, 0, 0, 1]) < 1e-9  # engage: zero displacement
    dp, _ = c.update(True, [0.5, 1.1, -0.2], [0, 0, 0, 1])  # XR up 0.1, forward 0.2
    assert np.allclose(dp, [0.2, 0.0, 0.1])  # base: x forward, z up
    yaw = quat_normalize([0, np.sin(0.1), 0, np.cos(0.1)])  # 0.2 rad about XR y (up)
    _, dq = c.update(True, [0.5, 1.1, -0.2], yaw)
    assert np.allclose(dq, quat_normalize([0, 0, np.sin(0.1), np.cos(0.1)]), atol=1e-9)  # = about base z
    c.update(False, [0, 0, 0], [0, 0, 0, 1])
    dp, _ = c.update(True, [3.0, 3.0, 3.0], [0, 0, 0, 1])  # re-engage elsewhere: anchors again, no jump
    assert np.allclose(dp, 0)


def test_packet_buttons_and_quest2ros_topics():
    c = Clutch()
    cmd = command_from_packet(
        {"p": [0, 1, 0], "q": [0, 0, 0, 1], "buttons": [1, 1, 0, 0, 1, 0], "values": [0.7, 1, 0, 0, 1, 0]}, c
    )
    assert cmd.engaged and cmd.trigger == pytest.approx(0.7) and cmd.buttons == (True, False, False)
    dev = Quest3Topics()
    assert dev.read() is None
    dev.feed_pose([0, 0, 0], [0, 0, 0, 1])
    dev.feed_joy([1, 0, 1, 0], [0.3])
    dev.read()
    dev.feed_pose([0.1, 0, 0], [0, 0, 0, 1])
    cmd = dev.read()
    assert cmd.engaged and np.allclose(cmd.ee_delta[0], [0.1, 0, 0]) and cmd.buttons == (False, True, False)


def test_leader_arm_mapping():
    m = LeaderArmMapping(("a", "b"), offsets=(0.1, 0.0), signs=(1.0, -1.0), lower=(-1, -1), upper=(1, 1))
    assert m.map([0.2, 0.5]) == pytest.approx({"a": 0.3, "b": -0.5})
    assert m.map([5.0, -5.0]) == {"a": 1.0, "b": 1.0}
    with pytest.raises(ValueError, match="non-finite"):
        m.map([np.nan, 0])
    with pytest.raises(ValueError, match="3 values for 2"):
        LeaderArmMapping(("a", "b"), offsets=(0, 0, 0))


@pytest.fixture
def server():
    dev = Quest3WebXR(host="127.0.0.1", port=0, token="s3cret")
    dev.connect()
    yield dev
    dev.disconnect()


def test_websocket_needs_the_token(server):
    base = f"ws://127.0.0.1:{server.port}/ws"
    for url in (base, base + "?token=wrong"):
        with pytest.raises(InvalidStatus) as e:
            connect(url, open_timeout=5).close()
        assert e.value.response.status_code == 403
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5)
    page = urllib.request.urlopen(server.url, timeout=5).read().decode()
    assert "navigator.xr" in page and "hiorsSend" in page
    with connect(base + "?token=s3cret", open_timeout=5) as ws:
        ws.send(json.dumps({"hand": "right", "p": [0, 1, 0], "q": [0, 0, 0, 1], "buttons": [0, 1], "values": [0.5]}))
        ws.send(json.dumps({"hand": "right", "p": [float("nan"), 1, 0], "q": [0, 0, 0, 1]}))  # dropped
        wait_for(lambda: server.packets == 1, what="one packet")
    assert server.read().engaged


class Chromium:
    """Headless Chromium driven over the DevTools protocol (plain WebSocket, no extra packages)."""

    def __init__(self, url: str):
        self.profile = tempfile.mkdtemp(prefix="hiors-chromium-")
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        wait_for(lambda: port_file.exists() and port_file.read_text().count("\n") >= 1, 30, "chromium DevTools port")
        port = int(port_file.read_text().split()[0])
        self.ws = None

        def page_target():
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5))
            pages = [t for t in targets if t["type"] == "page"]
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        wait_for(lambda: page_target() is not None, 30, "chromium page target")
        self.ws = connect(page_target(), open_timeout=10, max_size=None).__enter__()
        self._id = 0

    def evaluate(self, expression: str):
        self._id += 1
        self.ws.send(
            json.dumps(
                {
                    "id": self._id,
                    "method": "Runtime.evaluate",
                    "params": {"expression": expression, "returnByValue": True},
                }
            )
        )
        while True:
            reply = json.loads(self.ws.recv(timeout=10))
            if reply.get("id") == self._id:
                return reply.get("result", {}).get("result", {}).get("value")

    def close(self):
        if self.ws is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (tools/setup.sh --with-browser installs it)"
)
@pytest.mark.timeout(120)
def test_webxr_page_in_headless_chromium(server):
    browser = Chromium(server.url)
    try:
        wait_for(lambda: browser.evaluate("window.hiorsStatus") == "open", 30, "page connected with the token")
        packet = {
            "p": [0.0, 1.2, -0.3],
            "q": [0, 0, 0, 1],
            "buttons": [True, True, False, False, True, False],
            "values": [0.9],
        }
        assert browser.evaluate(f"window.hiorsSend({json.dumps(packet)})") is True
        wait_for(lambda: server.packets >= 1, 10, "packet at the adapter")
        got = server.latest_packet()
        assert got["p"] == packet["p"] and got["hand"] == "right"
        cmd = server.read()
        assert cmd.engaged and cmd.trigger == pytest.approx(0.9) and cmd.buttons == (True, False, False)
        # The same page without the token is refused: the page itself (403) and its WebSocket.
        rejected = server.rejected
        browser.evaluate(
            f"(() => {{ const w = new WebSocket('ws://127.0.0.1:{server.port}/ws'); "
            "w.onclose = () => window.noTokenResult = 'closed'; w.onopen = () => window.noTokenResult = 'open'; })()"
        )
        wait_for(lambda: browser.evaluate("window.noTokenResult") is not None, 10, "tokenless socket outcome")
        assert browser.evaluate("window.noTokenResult") == "closed"
        assert server.rejected > rejected and server.clients == 1
    finally:
        browser.close()


def test_leader_arm_mapping_refuses_far_out_of_limits():
    m = LeaderArmMapping(("a", "b"), lower=(-1, 0), upper=(1, 1), max_excess=0.2)
    assert m.map([1.1, -0.2]) == pytest.approx({"a": 1.0, "b": 0.0})  # within max_excess: clipped
    with pytest.raises(ValueError, match="a target 1.500 is 0.500 beyond"):
        m.map([1.5, 0.5])
    dev = JointStateLeader(m, ("ra", "rb"))
    assert dev.feed(["rb", "ra", "other"], [0.5, 0.3, 99.0]) and dev.read().joints == pytest.approx(
        {"a": 0.3, "b": 0.5}
    )
    assert not dev.feed(["ra", "rb"], [float("nan"), 0.5]) and dev.read() is None
    assert not dev.feed(["ra", "rb"], [0.0]) and dev.stats() == {"readings": 1, "refused": 2}
    assert dev.feed(["ra", "rb"], [0.0, 0.2]) and dev.read().joints == pytest.approx({"a": 0.0, "b": 0.2})


def test_devices_go_quiet_when_their_input_is_stale():
    now = [100.0]

    def clock():
        return now[0]

    quest = Quest3Topics(max_age_s=0.5, clock=clock)
    assert not quest.feed_pose([0, 0, float("inf")], [0, 0, 0, 1]) and quest.stats()["malformed"] == 1
    quest.feed_pose([0, 0, 0], [0, 0, 0, 1])
    quest.feed_joy([1], [0.2])
    assert quest.read().engaged
    now[0] += 0.6  # no pose for longer than max_age_s: nothing to publish (the arbiter's watchdog holds)
    assert quest.read() is None
    quest.feed_pose([0, 0, 0], [0, 0, 0, 1])
    assert quest.read() is not None

    leader = JointStateLeader(LeaderArmMapping(("a",)), max_age_s=0.5, clock=clock)
    leader.feed(["a"], [0.1])
    assert leader.read() is not None
    now[0] += 0.6
    assert leader.read() is None

    web = Quest3WebXR(host="127.0.0.1", port=0, token="t", max_age_s=0.5, clock=clock)
    web.connect()
    try:
        with connect(f"ws://127.0.0.1:{web.port}/ws?token=t", open_timeout=5) as ws:
            ws.send(json.dumps({"hand": "right", "p": [0, 1, 0], "q": [0, 0, 0, 1], "buttons": [0, 1]}))
            wait_for(lambda: web.packets == 1, what="one packet")
        assert web.read().engaged
        now[0] += 0.6
        assert web.read() is None and web.latest_packet() is not None
    finally:
        web.disconnect()


def test_refusal_line_names_each_reason_once():
    from hiors_teleop.teleoperator import refusal_line

    reasons = {"missing or wrong token: HTTP 403": 2, "request line too long: HTTP 414": 1}
    assert refusal_line({"rejected": 3}, reasons, "ignored") == (
        "refused teleop input: {'rejected': 3}; 2 x missing or wrong token: HTTP 403; 1 x request line too long: HTTP 414"
    )
    assert refusal_line({"refused": 1}, {}, "leader arm: non-finite reading") == (
        "refused teleop input: {'refused': 1}; last: leader arm: non-finite reading"
    )
    assert refusal_line({"refused": 1}, {}) == "refused teleop input: {'refused': 1}"
