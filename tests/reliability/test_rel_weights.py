"""Forged weight updates on a live policy node, one case each: a refused forgery does not use up its version number (a
PolicyUpdate naming /etc/passwd as version 2^64-1; one chunk of a never-completed version 1e9), a file an update names
is refused by its size before it is read (a 1 GiB sparse file, /dev/zero), a flood of chunks of a never-completed
version holds bounded memory that is given back when it expires, and every refusal and ignored message is counted and
logged once with its reason. After each, the learner's real next version is swapped in, over the shared-disk path and
over chunks alike."""

from __future__ import annotations

import os
import resource
from collections import Counter
from pathlib import Path

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rel_support import record

from hiors_core import topics
from hiors_core.weight_sync import sha256_hex, weight_messages, write_atomic
from hiors_msgs.msg import PolicyUpdate, PolicyWeights
from hiors_policy import build_tiny_policy
from hiors_policy.policy_node import PolicyNode
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

pytestmark = pytest.mark.node
WAIT = 30.0
TIMEOUT_S = 1.0  # the node's weight_transfer_timeout_s here: incomplete transfers expire within the test


class WatchedPolicy(PolicyNode):
    """Keeps every weight event (reason, version, logged line or None) and the most bytes held for weights at once
    (waiting in the queue plus held by incomplete transfers)."""

    def __init__(self, *args, **kwargs):
        self.events: list[tuple[str, int, str | None]] = []
        self.high_water = 0
        self.chunks_in = 0
        super().__init__(*args, **kwargs)

    def _on_weights(self, msg):
        super()._on_weights(msg)
        self.chunks_in += 1

    def _weight_event(self, reason, version, line):
        self.events.append((reason, version, line))
        super()._weight_event(reason, version, line)

    def _take(self, msg):
        super()._take(msg)
        self.high_water = max(self.high_water, self._queued_bytes + self.receiver.assembler.held)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.fixture(scope="module")
def policy():
    return build_tiny_policy("tora_one", "raise_hand", seed=0)


def test_forged_weight_updates_never_block_learning_and_hold_bounded_memory(policy, tmp_path):
    blobs = {v: build_tiny_policy("tora_one", "raise_hand", seed=v).to_safetensors_bytes() for v in (5, 6)}
    passwd = Path("/etc/passwd")
    if not passwd.is_file():
        passwd = tmp_path / "passwd"
        passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    sparse = tmp_path / "sparse.safetensors"
    with open(sparse, "wb") as f:
        f.truncate(1 << 30)
    with ros_context() as ctx:
        node = WatchedPolicy(
            policy=policy,
            context=ctx,
            parameter_overrides=[Parameter("weight_transfer_timeout_s", value=TIMEOUT_S)],
        )
        limit = node.max_weight_bytes
        probe = Node("weights_forger", context=ctx)
        pub_w = probe.create_publisher(
            PolicyWeights, topics.POLICY_WEIGHTS, topics.qos(topics.POLICY_WEIGHTS, depth=64)
        )
        pub_u = probe.create_publisher(PolicyUpdate, topics.POLICY_UPDATE, topics.qos(topics.POLICY_UPDATE))
        counts = node.receiver.tally.counts
        seen = {"updates": 0, "weights": 0}

        def send(update=None, chunks=()):
            if update is not None:
                pub_u.publish(update)
                seen["updates"] += 1
            for m in chunks:
                pub_w.publish(m)
                seen["weights"] += 1

        def real(version, by):
            """The learner's version `version` (alternating two weight sets), over the path or over chunks only."""
            blob = blobs[5 if version % 2 else 6]
            path = write_atomic(tmp_path / f"policy-v{version}.safetensors", blob) if by == "path" else ""
            update, chunks = weight_messages(blob, version, 10 * version, path=str(path), chunk_size=256 * 1024)
            send(update, [] if by == "path" else chunks)
            wait_for(lambda: node.version == version, WAIT, f"the real version {version} by {by} swapped in")
            return policy.to_safetensors_bytes() == blob

        def case(reason, n, what, **msgs):
            """Send a forgery; `n` more of `reason` are counted, and the running version stays."""
            before = counts[reason]
            send(**msgs)
            wait_for(lambda: counts[reason] >= before + n, WAIT, f"{what}: {n} {reason} counted")
            assert node.version == last[0], f"{what} changed the running version"

        last = [0]
        rows = []
        try:
            with spinning([node, probe], context=ctx):
                wait_for_subscribers(pub_w, timeout=WAIT)
                wait_for_subscribers(pub_u, timeout=WAIT)

                # 1. /etc/passwd as version 2^64-1, its true sha256 and size: read, refused as not weights, and the
                #    real version 5 (path) and 6 (chunks) are still taken.
                data = passwd.read_bytes()
                forged = PolicyUpdate(version=2**64 - 1, sha256=sha256_hex(data), total_bytes=len(data), num_chunks=1)
                forged.path = str(passwd)
                case("bad_weights", 1, "/etc/passwd as version 2^64-1", update=forged)
                ok = real(5, "path") and real(6, "chunks")
                last[0] = 6
                rows.append(("/etc/passwd as version 2^64-1 refused; the real next versions swapped in", ok))

                # 2. One chunk of a version 1e9 that never completes: the real version 7 by chunks is still taken,
                #    and the forged transfer expires (released) after the timeout.
                _, parts = weight_messages(blobs[5], 10**9, 0, chunk_size=64 * 1024)
                send(chunks=parts[:1])
                ok = real(7, "chunks")
                last[0] = 7
                wait_for(lambda: counts["expired"] >= 1, WAIT, "the forged version 1e9 expired")
                ok = ok and 10**9 not in node.receiver.assembler.pending
                rows.append(("a never-completed chunk as version 1e9: later versions swapped in, it expires", ok))

                # 3. Files an update names: refused by stat before a byte is read, whatever the size announced.
                rss0 = rss_bytes()
                upd = PolicyUpdate(version=8, sha256="0" * 64, total_bytes=1 << 30, num_chunks=1, path=str(sparse))
                case("too_large", 1, "a 1 GiB sparse file", update=upd)
                grew = rss_bytes() - rss0
                rows.append((f"a 1 GiB sparse file refused unread (RSS +{grew >> 20} MiB)", grew < 256 << 20))
                upd = PolicyUpdate(version=8, sha256="0" * 64, total_bytes=100, num_chunks=1, path="/dev/zero")
                case("bad_path", 1, "/dev/zero", update=upd)
                node_path = write_atomic(tmp_path / "wrong-sha.safetensors", blobs[5])
                upd = PolicyUpdate(version=8, sha256="0" * 64, total_bytes=len(blobs[5]), path=str(node_path))
                case("bad_path", 1, "a path with the wrong sha256", update=upd)
                upd = PolicyUpdate(version=8, sha256=sha256_hex(blobs[5]), total_bytes=2**64 - 1, path=str(node_path))
                case("too_large", 1, "a path announced as 2^64-1 bytes", update=upd)
                m = PolicyWeights(version=8, sha256="0" * 64, chunk_index=0, num_chunks=2, total_bytes=2**64 - 1)
                m.data = b"x" * 100
                case("too_large", 1, "a chunk announcing 2^64-1 bytes", chunks=[m])
                rows.append(("/dev/zero, a wrong sha256, 2^64-1 sizes: refused and counted", True))

                # 4. Stale versions (an old, complete, valid version by path and by chunks): ignored and counted.
                path = write_atomic(tmp_path / "old.safetensors", blobs[5])
                update, chunks = weight_messages(blobs[5], 3, 30, path=str(path), chunk_size=256 * 1024)
                case("stale", 1 + len(chunks), "an older version", update=update, chunks=chunks)

                # 5. A flood of chunks of a never-completed version, three times the limit in all: what is held for
                #    it stays under the budget, is released when it expires, and the real version 9 still comes.
                n = 3 * limit // (64 * 1024)
                flood = []
                for i in range(n):
                    c = PolicyWeights(version=2 * 10**9, sha256="1" * 64, chunk_index=i, num_chunks=n + 1)
                    c.total_bytes = limit
                    c.data = os.urandom(64 * 1024)
                    flood.append(c)
                node.high_water = 0
                send(chunks=flood)
                wait_for(lambda: node.chunks_in >= seen["weights"] and not node._weight_msgs, WAIT, "the flood taken")
                flood_high = node.high_water
                wait_for(lambda: node.receiver.assembler.held == 0, WAIT, "the flood's transfer released")
                refused_flood = counts["bad_chunk"] + counts["flood"]
                ok = flood_high <= 4 * limit and refused_flood > 0 and real(9, "chunks")
                last[0] = 9
                rows.append(
                    (
                        f"a flood of {n} chunks ({n * 64} KiB) of a never-completed version: at most "
                        f"{flood_high >> 10} KiB held (budget {4 * limit >> 10} KiB), released on expiry",
                        ok,
                    )
                )
        finally:
            node.destroy_node()
            probe.destroy_node()

    # Every refusal and ignored message counted once, each (reason, version) logged once, with its reason.
    logged = Counter((r, v) for r, v, line in node.events if line is not None)
    keys = {(r, v) for r, v, _ in node.events}
    once = all(logged[k] == 1 for k in keys) and all(f"({r})" in ln for r, _, ln in node.events if ln)
    tally = dict(node.receiver.tally.counts)
    counted = sum(tally.values()) == len(node.events) and node.stats["weight_refusals"] == node.receiver.tally.refused
    for check, ok in rows:
        record("access", f"forged weights: {check}", int(ok), expected=1, ok=ok)
    record("access", "forged weights: refusals counted by reason", sum(tally.values()), ok=counted, detail=str(tally))
    record("access", "forged weights: each (reason, version) logged once", len(logged), expected=len(keys), ok=once)
    assert all(ok for _, ok in rows), rows
    assert counted and once, (tally, node.events)
    for reason in ("bad_weights", "bad_path", "too_large", "stale", "expired"):
        assert tally.get(reason), f"no {reason} counted: {tally}"


def test_weight_messages_waiting_for_a_busy_loader_are_bounded(policy):
    """While the loader is busy (a real pi0 blob takes seconds to verify), weight messages wait in a queue: a flood
    beyond twice max_weight_bytes is dropped there, counted and logged once as `flood`, and the queue drains after."""
    import threading

    gate = threading.Event()

    class BusyLoader(WatchedPolicy):
        def _take(self, msg):
            gate.wait(WAIT)
            super()._take(msg)

    with ros_context() as ctx:
        node = BusyLoader(policy=policy, context=ctx)
        try:
            limit = node.max_weight_bytes
            n = 3 * limit // (64 * 1024)
            for i in range(n):
                c = PolicyWeights(version=3 * 10**9, sha256="2" * 64, chunk_index=i, num_chunks=n + 1)
                c.total_bytes, c.data = limit, os.urandom(64 * 1024)
                node._on_weights(c)  # as the executor would
            queued, dropped = node._queued_bytes, node.receiver.tally.counts["flood"]
            gate.set()
            wait_for(lambda: not node._weight_msgs and node._queued_bytes == 0, WAIT, "the queue drained")
        finally:
            gate.set()
            node.destroy_node()
    lines = [ln for r, _, ln in node.events if r == "flood" and ln]
    ok = queued <= 2 * limit and dropped >= n // 3 and len(lines) == 1
    record(
        "access",
        f"forged weights: a flood while the loader is busy: {queued >> 10} KiB queued (budget {2 * limit >> 10} KiB)",
        dropped,
        expected=f">= {n // 3} dropped",
        ok=ok,
    )
    assert ok, (queued, dropped, lines)
