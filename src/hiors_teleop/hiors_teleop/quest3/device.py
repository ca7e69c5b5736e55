"""The Quest 3 adapter (ROS-free): relative EE control with a clutch, from the WebXR page over a WebSocket
(`Quest3WebXR`) or from Quest2ROS-style absolute poses and Joy (`Quest3Topics`).

Input that cannot be a command is refused and counted, never passed on: requests without the token (HTTP 403),
malformed packets and poses (not JSON, NaN, wrong sizes, zero quaternion, bad buttons/values)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import secrets
import threading
import time
from collections import Counter
from http import HTTPStatus
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import numpy as np

from hiors_core.rotations import matrix_to_quat, quat_conj, quat_mul, quat_normalize, quat_to_matrix

from ..teleoperator import Freshness, TeleopCommand, TeleopDevice

# WebXR (y up, -z forward, x right) -> robot base (x forward, y left, z up).
XR_TO_BASE = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

# A controller position further than this from the origin (m) is not a pose (and its clutch delta could overflow).
MAX_POSITION_M = 1000.0

# A controller packet is a few hundred bytes; a message over this is refused (websockets closes the socket, 1009).
MAX_MESSAGE_BYTES = 2**20

# The websockets library's own log: warnings only (its debug log prints a traceback per refused request); the
# refusals themselves are counted here and logged once by the bridge.
SERVER_LOG = logging.getLogger("hiors_teleop.quest3.server")
SERVER_LOG.setLevel(logging.WARNING)

# xr-standard gamepad indices on the Quest 3 Touch Plus controllers.
BTN_TRIGGER, BTN_SQUEEZE, BTN_STICK, BTN_A, BTN_B = 0, 1, 3, 4, 5


class Clutch:
    """Relative control: re-anchors at every engage; the delta is the controller's motion since then, mapped to
    the robot base frame (position scaled, orientation conjugated by the frame change)."""

    def __init__(self, rotation: np.ndarray = XR_TO_BASE, scale: float = 1.0):
        self.R = np.asarray(rotation, dtype=np.float64)
        self.scale = float(scale)
        self.p0: np.ndarray | None = None
        self.q0: np.ndarray | None = None

    def update(self, engaged: bool, pos, quat) -> tuple[np.ndarray, np.ndarray] | None:
        if not engaged:
            self.p0 = self.q0 = None
            return None
        pos, quat = np.asarray(pos, np.float64), quat_normalize(quat)
        if self.p0 is None:
            self.p0, self.q0 = pos, quat
        dp = self.scale * (self.R @ (pos - self.p0))
        dq_xr = quat_mul(quat, quat_conj(self.q0))  # rotation since engage, in the XR frame
        dq = matrix_to_quat(self.R @ quat_to_matrix(dq_xr) @ self.R.T)
        return dp, dq


def command_from_packet(packet: dict, clutch: Clutch) -> TeleopCommand:
    """A controller packet ({"p", "q", "buttons", "values"}) -> TeleopCommand."""
    pressed = [bool(b) for b in packet.get("buttons", [])]
    values = [float(v) for v in packet.get("values", [])]

    def btn(i):
        return len(pressed) > i and pressed[i]

    engaged = btn(BTN_SQUEEZE)
    delta = clutch.update(engaged, packet["p"], packet["q"]) if "p" in packet and "q" in packet else None
    return TeleopCommand(
        engaged=engaged and delta is not None,
        ee_delta=delta,
        trigger=values[BTN_TRIGGER] if len(values) > BTN_TRIGGER else None,
        buttons=(btn(BTN_A), btn(BTN_B), btn(BTN_STICK)),
    )


def valid_pose(p, q) -> bool:
    try:
        p, q = np.asarray(p, float), np.asarray(q, float)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer too big for a float
        return False
    return (
        p.shape == (3,)
        and q.shape == (4,)
        and bool(np.all(np.isfinite(p)) and np.all(np.isfinite(q)))
        and bool(np.all(np.abs(p) <= MAX_POSITION_M))
        and float(np.linalg.norm(q)) > 1e-6
    )


def _finite_number(x) -> bool:
    try:
        return isinstance(x, (bool, int, float)) and math.isfinite(float(x))
    except OverflowError:  # a JSON integer too big for a float
        return False


def _finite_numbers(v, limit: int = 32) -> bool:
    return isinstance(v, list) and len(v) <= limit and all(_finite_number(x) for x in v)


def valid_packet(packet) -> bool:
    """A controller packet the adapter can use: a JSON object with p (3 finite numbers), q (4, not all zero) and,
    when present, buttons and values as short lists of finite numbers."""
    if not isinstance(packet, dict) or "p" not in packet or "q" not in packet:
        return False
    if not valid_pose(packet["p"], packet["q"]):
        return False
    return all(_finite_numbers(packet[k]) for k in ("buttons", "values") if k in packet)


class Quest3Topics(TeleopDevice):
    """Quest2ROS-style input: absolute controller PoseStamped + Joy, fed by a node's callbacks."""

    def __init__(self, scale: float = 1.0, rotation=None, max_age_s: float = 0.0, clock=time.monotonic):
        self.clutch = Clutch(np.eye(3) if rotation is None else rotation, scale)
        self.pose: tuple[list, list] | None = None
        self.joy: tuple[list, list] = ([], [])
        self.poses = 0
        self.malformed = 0
        self._fresh = Freshness(max_age_s, clock)

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def feed_pose(self, pos, quat) -> bool:
        """Take a controller pose; a non-finite one or a zero quaternion is refused (counted in `malformed`)."""
        if not valid_pose(list(pos), list(quat)):
            self.malformed += 1
            return False
        self.pose = (list(pos), list(quat))
        self.poses += 1
        self._fresh.touch()
        return True

    def feed_joy(self, buttons, axes) -> None:
        axes = [float(a) for a in axes]
        self.joy = (list(buttons), [a if math.isfinite(a) else 0.0 for a in axes])

    def stats(self) -> dict[str, int]:
        return {"poses": self.poses, "malformed": self.malformed}

    def read(self) -> TeleopCommand | None:
        if self.pose is None or not self._fresh.fresh():
            return None
        buttons, axes = self.joy
        # Quest2ROS layout as the simulated operator uses it: buttons[0] grip, [1..3] start/success/failure.
        b = [bool(x) for x in buttons] + [False] * 4
        delta = self.clutch.update(b[0], *self.pose)
        return TeleopCommand(b[0], delta, trigger=axes[0] if axes else None, buttons=(b[1], b[2], b[3]))


def webxr_page() -> str:
    return resources.files(__package__).joinpath("web/quest3.html").read_text(encoding="utf-8")


class Quest3WebXR(TeleopDevice):
    """Serves the WebXR page and receives controller packets over a WebSocket, both on host:port.

    GET /?token=T -> the page; /ws?token=T -> the WebSocket. A wrong or missing token gets HTTP 403 on both.
    For a headset on the LAN use TLS (certfile/keyfile; WebXR needs a secure context) or `adb reverse`.

    Every refusal is counted once, with its reason (`drain_refusals`, logged by the bridge), never a traceback:
    `rejected` requests (no or a wrong token: 403; a request line or headers too long: 414 / 431, answered by the
    websockets library before the token is read; not an HTTP request at all) and `malformed` messages on an
    authorised socket (not a controller packet; over MAX_MESSAGE_BYTES: the socket is closed with 1009).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8443,
        token: str = "",
        hand: str = "right",
        scale: float = 1.0,
        certfile: str = "",
        keyfile: str = "",
        max_age_s: float = 0.0,
        clock=time.monotonic,
    ):
        self.host, self.port = host, int(port)
        self.token = token or secrets.token_urlsafe(16)
        self.hand = hand
        self.clutch = Clutch(XR_TO_BASE, scale)
        self.certfile, self.keyfile = certfile, keyfile
        self.packets = 0
        self.rejected = 0  # requests (page or WebSocket) refused: no or a wrong token, too long, not HTTP
        self.malformed = 0  # messages on an authorised socket that cannot be a command (too big included)
        self._reasons: Counter = Counter()  # why, since the last drain_refusals()
        self.clients = 0
        self._fresh = Freshness(max_age_s, clock)
        self._latest: dict | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._page = webxr_page()

    @property
    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{self.host}:{self.port}/?token={self.token}"

    def _authorized(self, path: str) -> bool:
        given = parse_qs(urlsplit(path).query).get("token", [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _refuse(self, counter: str, reason: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)
            self._reasons[reason] += 1

    def drain_refusals(self) -> dict[str, int]:
        with self._lock:
            reasons, self._reasons = dict(self._reasons), Counter()
        return reasons

    def _refused_handshake(self, exc: BaseException | None) -> None:
        """A request the websockets library refused before `_process_request` saw it (no response to count
        there): count it, by why. A client that closed before sending anything is no request."""
        from websockets.exceptions import HeaderLineTooLong, InvalidMessage, RequestLineTooLong, TooManyHeaders

        if isinstance(exc, RequestLineTooLong):
            self._refuse("rejected", "request line too long: HTTP 414")
        elif isinstance(exc, (HeaderLineTooLong, TooManyHeaders)):
            self._refuse("rejected", "request headers too large: HTTP 431")
        elif isinstance(exc, InvalidMessage) and not isinstance(exc.__cause__, EOFError):
            self._refuse("rejected", "not an HTTP request")

    def _process_request(self, connection, request):
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        path = urlsplit(request.path).path
        if not self._authorized(request.path):
            self._refuse("rejected", "missing or wrong token: HTTP 403")
            return connection.respond(HTTPStatus.FORBIDDEN, "missing or wrong token\n")
        if path == "/ws":
            return None  # go on with the WebSocket handshake
        if path in ("/", "/index.html"):
            body = self._page.encode()
            headers = Headers(
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                ]
            )
            return Response(200, "OK", headers, body)
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")

    async def _handler(self, ws) -> None:
        from websockets.exceptions import ConnectionClosedError
        from websockets.frames import CloseCode

        self.clients += 1
        try:
            async for raw in ws:
                try:
                    packet = json.loads(raw)
                except (ValueError, TypeError, RecursionError):  # not JSON, too many digits, nested too deep
                    packet = None
                if not valid_packet(packet):
                    self._refuse("malformed", "not a controller packet")
                    continue
                if packet.get("hand", self.hand) != self.hand:
                    continue  # the other controller
                with self._lock:
                    self._latest = packet
                    self.packets += 1
                    self._fresh.touch()
        except ConnectionClosedError as e:
            # Closed by us for a message over the limit (1009), or the client went away without a closing
            # handshake (a headset losing its Wi-Fi): only the first is a refusal.
            if e.sent is not None and e.sent.code == CloseCode.MESSAGE_TOO_BIG:
                self._refuse("malformed", f"message over {MAX_MESSAGE_BYTES} bytes: closed with 1009")
        finally:
            self.clients -= 1

    async def _serve(self) -> None:
        import ssl

        from websockets.asyncio.server import ServerConnection, serve

        device = self

        class Connection(ServerConnection):
            """Counts a request the library refuses while parsing it, as the refusal is sent (the handshake
            itself only ends when the client closes or open_timeout passes)."""

            refusal_counted = False

            def data_received(self, data: bytes) -> None:
                super().data_received(data)
                exc = self.protocol.handshake_exc
                if exc is not None and self.request is None and not self.refusal_counted:
                    self.refusal_counted = True
                    device._refused_handshake(exc)

        ctx = None
        if self.certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certfile, self.keyfile or None)
        self._stop = asyncio.Event()
        async with serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            ssl=ctx,
            max_size=MAX_MESSAGE_BYTES,
            create_connection=Connection,
            logger=SERVER_LOG,
        ) as srv:
            self.port = srv.sockets[0].getsockname()[1]  # port 0 = any free port
            self._ready.set()
            await self._stop.wait()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as e:  # reported to connect()
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()

    def connect(self) -> None:
        self._thread = threading.Thread(target=self._run, name="quest3-webxr", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self._error is not None:
            raise OSError(f"quest3 web server on {self.host}:{self.port}: {self._error}") from self._error

    def disconnect(self) -> None:
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def latest_packet(self) -> dict | None:
        with self._lock:
            return None if self._latest is None else dict(self._latest)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"packets": self.packets, "rejected": self.rejected, "malformed": self.malformed}

    def read(self) -> TeleopCommand | None:
        with self._lock:
            packet = None if self._latest is None or not self._fresh.fresh() else dict(self._latest)
        return None if packet is None else command_from_packet(packet, self.clutch)
