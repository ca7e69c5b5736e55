"""Policy weight sync between learner and actor: versioned, sha256-checked, chunked blobs (no shared disk
needed), and an atomic local-file fast path when both share a disk.

Pure Python; the message helpers import hiors_msgs lazily, so the learner (publishing) and the policy node
(receiving) share this code:

    learner:  update, chunks = weight_messages(blob, version, step, path)  -> publish update (latched), chunks
    policy:   rx = WeightReceiver(); blob = rx.on_update(msg) / rx.on_chunk(msg)  -> bytes once complete+verified
"""

from __future__ import annotations

import array
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HiorsError

CHUNK_SIZE = 512 * 1024


class WeightSyncError(HiorsError):
    pass


def sha256_hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def split_chunks(blob: bytes, chunk_size: int = CHUNK_SIZE) -> list[bytes]:
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    return [blob[i : i + chunk_size] for i in range(0, len(blob), chunk_size)] or [b""]


def write_atomic(path: str | Path, blob: bytes) -> Path:
    """Write temp file in the same directory, fsync, rename over `path`, fsync the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


def read_verified(path: str | Path, sha256: str, total_bytes: int | None = None) -> bytes:
    """Read a weight file and check its digest (and size); raises WeightSyncError naming the file otherwise.
    Only a regular file of the announced size is read: a path to a device (/dev/zero), a FIFO or a directory, as a
    forged announcement could name, would otherwise block the reader or exhaust its memory."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise WeightSyncError(f"{path}: not a regular file; weights are not read from it")
        if total_bytes is not None and st.st_size != total_bytes:
            raise WeightSyncError(f"{path}: {st.st_size} bytes, announced {total_bytes}")
        with open(path, "rb") as f:
            blob = f.read(st.st_size + 1)
    except OSError as e:
        raise WeightSyncError(f"{path}: cannot read weights: {e}") from None
    if total_bytes is not None and len(blob) != total_bytes:
        raise WeightSyncError(f"{path}: {len(blob)} bytes, announced {total_bytes}")
    if sha256_hex(blob) != sha256:
        raise WeightSyncError(f"{path}: sha256 mismatch (file changed or was truncated)")
    return blob


@dataclass
class _Pending:
    version: int
    sha256: str
    total_bytes: int
    num_chunks: int
    chunks: dict[int, bytes] = field(default_factory=dict)


class BlobAssembler:
    """Reassembles chunked blobs. Keeps one version in flight; a newer version replaces an older partial one;
    chunks of versions at or below the last completed one are ignored. Returns the blob once complete and verified."""

    def __init__(self):
        self.pending: _Pending | None = None
        self.completed_version = -1

    def add(self, version: int, sha256: str, index: int, num_chunks: int, total_bytes: int, data: bytes):
        version, index, num_chunks, total_bytes = int(version), int(index), int(num_chunks), int(total_bytes)
        if version <= self.completed_version:
            return None
        if not 0 <= index < num_chunks:
            raise WeightSyncError(f"version {version}: chunk {index} outside 0..{num_chunks - 1}")
        p = self.pending
        if p is None or version > p.version:
            p = self.pending = _Pending(version, sha256, total_bytes, num_chunks)
        elif version < p.version:
            return None  # a stale chunk of an older version
        if (p.sha256, p.num_chunks, p.total_bytes) != (sha256, num_chunks, total_bytes):
            self.pending = None
            raise WeightSyncError(f"version {version}: chunk {index} disagrees with earlier chunks of that version")
        p.chunks[index] = bytes(data)
        if len(p.chunks) < p.num_chunks:
            return None
        blob = b"".join(p.chunks[i] for i in range(p.num_chunks))
        self.pending = None
        if len(blob) != p.total_bytes or sha256_hex(blob) != p.sha256:
            raise WeightSyncError(f"version {version}: reassembled blob fails its size/sha256 check; dropped")
        self.completed_version = version
        return blob


# --- hiors_msgs / rclpy helpers (lazy import) ---------------------------------------------------------------------


def weights_qos(depth: int = 0):
    """QoS of the PolicyWeights topic: reliable and transient-local, so an actor that starts (or restarts) after the
    learner published still receives the current version from the publisher's history instead of waiting for the next.

    Publisher: `depth` = the chunk count of one version (KEEP_LAST): the history holds exactly the latest version,
    older ones drop out as a new one is published. Subscriber (depth 0): KEEP_ALL, so a burst of chunks is never
    overwritten before the node has taken it. The latched PolicyUpdate announces what the history holds."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    history = HistoryPolicy.KEEP_LAST if depth > 0 else HistoryPolicy.KEEP_ALL
    return QoSProfile(
        history=history,
        depth=max(int(depth), 1),
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


def weight_messages(blob: bytes, version: int, learner_step: int, path: str = "", chunk_size: int = CHUNK_SIZE):
    """(PolicyUpdate, [PolicyWeights]) for one blob."""
    from hiors_msgs.msg import PolicyUpdate, PolicyWeights

    digest = sha256_hex(blob)
    parts = split_chunks(blob, chunk_size)
    update = PolicyUpdate(
        version=int(version),
        learner_step=int(learner_step),
        sha256=digest,
        total_bytes=len(blob),
        num_chunks=len(parts),
        path=str(path),
    )
    chunks = []
    for i, part in enumerate(parts):
        m = PolicyWeights(version=int(version), sha256=digest, chunk_index=i, num_chunks=len(parts))
        m.total_bytes = len(blob)
        m.data = array.array("B", part)
        chunks.append(m)
    return update, chunks


def _msg_bytes(data) -> bytes:
    return data.tobytes() if hasattr(data, "tobytes") else bytes(data)


class WeightReceiver:
    """Actor side: feed PolicyUpdate and PolicyWeights messages; returns (version, blob) when a new verified
    version is available. Uses the local file when the announce names a readable path with the right digest."""

    def __init__(self, use_local_path: bool = True):
        self.assembler = BlobAssembler()
        self.use_local_path = use_local_path
        self.latest_version = -1

    def _done(self, version: int, blob: bytes | None):
        if blob is None or version <= self.latest_version:
            return None
        self.latest_version = version
        self.assembler.completed_version = max(self.assembler.completed_version, version)
        return version, blob

    def on_update(self, msg):
        version = int(msg.version)
        if version <= self.latest_version or not (self.use_local_path and msg.path and os.path.exists(msg.path)):
            return None
        try:
            blob = read_verified(msg.path, msg.sha256, int(msg.total_bytes))
        except WeightSyncError:
            return None  # overwritten by a newer version, or not our disk: the chunks will carry it
        return self._done(version, blob)

    def on_chunk(self, msg):
        blob = self.assembler.add(
            msg.version, msg.sha256, msg.chunk_index, msg.num_chunks, msg.total_bytes, _msg_bytes(msg.data)
        )
        return self._done(int(msg.version), blob)
