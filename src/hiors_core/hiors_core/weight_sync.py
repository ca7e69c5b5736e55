"""Policy weight sync between learner and actor: versioned, sha256-checked, chunked blobs (no shared disk
needed), and an atomic local-file fast path when both share a disk.

Pure Python; the message helpers import hiors_msgs lazily, so the learner (publishing) and the policy node
(receiving) share this code:

    learner:  update, chunks = weight_messages(blob, version, step, path)  -> publish update (latched), chunks
    policy:   rx = WeightReceiver(); got = rx.on_update(msg) / rx.on_chunk(msg)  -> (version, blob) once complete
              and verified; rx.commit(version) once swapped in, rx.refuse(version, ...) if not usable

Anyone on the graph can publish weight messages, so the receiver assumes they may be forged: a refused version never
raises the version floor, sizes are bounded before anything is read or held, incomplete transfers expire, and every
refused or ignored message is counted and logged once, by reason (REASONS).
"""

from __future__ import annotations

import array
import ctypes
import hashlib
import json
import os
import stat
import struct
import tempfile
import threading
import time
from collections import Counter, OrderedDict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HiorsError

CHUNK_SIZE = 512 * 1024


class WeightSyncError(HiorsError):
    """A refused weight update; `reason` is one of REASONS (the counter and the log name it)."""

    def __init__(self, message: str, reason: str = "bad_chunk"):
        super().__init__(message)
        self.reason = reason


# Why a weight message was refused or ignored: the one home of these names (counters, logs, diagnostics, tests).
REFUSED = {
    "bad_path": "the file an update names is not a regular file of the announced size and sha256",
    "too_large": "an announced size (or a file's size) over the node's weight-size limit",
    "bad_chunk": "a chunk inconsistent with itself or with earlier chunks of its version",
    "bad_digest": "a reassembled blob that fails its size or sha256 check",
    "bad_weights": "a verified blob that is not usable weights for this model (safetensors, keys, shapes, finite)",
    "expired": "an incomplete transfer with no new chunk for the timeout",
    "evicted": "an incomplete transfer dropped to keep the bytes held for incomplete transfers under the budget",
    "superseded": "an incomplete transfer of a version at or below one swapped in",
    "flood": "a chunk dropped because the weight messages waiting to be processed hold the byte budget",
}
IGNORED = {
    "stale": "a version at or below the one running",
    "duplicate": "a version already delivered and waiting to be swapped in, or a chunk already held",
}
REASONS = {**REFUSED, **IGNORED}


HEADER_ALLOWANCE = 1 << 20  # room for a safetensors header (names, dtypes, shapes of every tensor) in a size bound


def weight_bytes_limit(num_params: int) -> int:
    """The largest weight blob a model of `num_params` parameters can arrive as: 4 bytes a parameter (float32, the
    widest dtype a learner sends) plus room for the safetensors header. Anything announced larger is refused unread."""
    return 4 * int(num_params) + HEADER_ALLOWANCE


def sha256_hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def split_chunks(blob: bytes, chunk_size: int = CHUNK_SIZE) -> list[bytes]:
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    return [blob[i : i + chunk_size] for i in range(0, len(blob), chunk_size)] or [b""]


@contextmanager
def _atomic_file(path: Path, durable: bool = True):
    """A binary file open for writing that becomes `path` only when the block ends without an error: a temp file in
    the same directory, renamed over `path` (with `durable`, the file and then its directory fsync'd); removed if the
    block raises, so `path` is always either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_atomic(path: str | Path, blob: bytes) -> Path:
    """Write temp file in the same directory, fsync, rename over `path`, fsync the directory."""
    path = Path(path)
    with _atomic_file(path) as f:
        f.write(blob)
    return path


def _open_regular(path: str | Path, total_bytes: int | None, max_bytes: int | None) -> tuple[int, int]:
    """(fd, size) of a weight file, refused unless it is a regular file of the announced size, at most `max_bytes`,
    checked before a byte is read: a path to a device (/dev/zero), a FIFO or a directory, or a huge (sparse) file, as
    a forged announcement could name, would otherwise block the reader or exhaust its memory. The checks are made on
    the opened file (non-blocking open, then fstat), so a path swapped for a FIFO after the check cannot block the
    reader either."""
    if max_bytes is not None and total_bytes is not None and total_bytes > max_bytes:
        raise WeightSyncError(f"{path}: announced {total_bytes} bytes, over the limit of {max_bytes}", "too_large")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise WeightSyncError(f"{path}: cannot read weights: {e}", "bad_path") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise WeightSyncError(f"{path}: not a regular file; weights are not read from it", "bad_path")
        if max_bytes is not None and st.st_size > max_bytes:
            raise WeightSyncError(f"{path}: {st.st_size} bytes, over the limit of {max_bytes}; not read", "too_large")
        if total_bytes is not None and st.st_size != total_bytes:
            raise WeightSyncError(f"{path}: {st.st_size} bytes, announced {total_bytes}", "bad_path")
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def read_verified(path: str | Path, sha256: str, total_bytes: int | None = None, max_bytes: int | None = None) -> bytes:
    """Read a weight file and check its digest (and size); raises WeightSyncError naming the file otherwise.
    Only a regular file of the announced size, at most `max_bytes`, is read (`_open_regular`)."""
    fd, size = _open_regular(path, total_bytes, max_bytes)
    try:
        with os.fdopen(fd, "rb") as f:
            blob = f.read(size + 1)
    except OSError as e:
        raise WeightSyncError(f"{path}: cannot read weights: {e}", "bad_path") from None
    if (total_bytes is not None and len(blob) != total_bytes) or len(blob) != size:
        raise WeightSyncError(f"{path}: {len(blob)} bytes read, announced {total_bytes} (file changed)", "bad_path")
    if sha256_hex(blob) != sha256:
        raise WeightSyncError(f"{path}: sha256 mismatch (file changed or was truncated)", "bad_path")
    return blob


# --- safetensors files, streamed: one pass over the bytes, hashed as they go ----------------------------------
# A real pi0 is 7 GB in bfloat16: building the file in memory (safetensors.torch.save) holds it twice more, reading it
# whole and then parsing it twice more again. These write and read it tensor by tensor, hashing each piece in a
# second thread while the next one is written or read (sha256 and file I/O both release the GIL).

ST_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
PIECE_BYTES = 16 << 20


class _PipelinedHash:
    """sha256 of the pieces given in order, each hashed in a worker thread while the caller moves the next one. A
    piece's buffer must stay unchanged until the next add() or digest() returns."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self.h = hashlib.sha256()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sha256")
        self.pending = None

    def add(self, piece) -> None:
        if self.pending is not None:
            self.pending.result()
        self.pending = self.pool.submit(self.h.update, piece)

    def hexdigest(self) -> str:
        if self.pending is not None:
            self.pending.result()
        self.pool.shutdown()
        return self.h.hexdigest()


def _byte_view(data) -> memoryview:
    """A flat byte view of a C-contiguous buffer (memoryview.cast refuses empty multi-dimensional ones)."""
    mv = memoryview(data)
    if not mv.c_contiguous:
        raise ValueError("tensor data must be C-contiguous")
    return mv.cast("B") if mv.nbytes else memoryview(b"")


def _pieces(buf: memoryview):
    for i in range(0, buf.nbytes, PIECE_BYTES):
        yield buf[i : i + PIECE_BYTES]


def write_safetensors(path: str | Path, tensors, metadata: dict | None = None, durable: bool = True) -> tuple[str, int]:
    """Write `tensors`, (name, safetensors dtype such as "BF16", shape, buffer of its bytes in C order) in order, as a
    safetensors file at `path`, atomically (a temp file renamed over it; with `durable`, fsync'd, its directory too):
    one pass over the bytes, never a second copy of them in memory. Returns (sha256 of the file, its size)."""
    items = [(name, dtype, tuple(int(d) for d in shape), _byte_view(data)) for name, dtype, shape, data in tensors]
    entries: dict = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, dtype, shape, buf in items:
        entries[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + buf.nbytes]}
        offset += buf.nbytes
    header = json.dumps(entries, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # tensors 8-byte aligned, as safetensors writes them
    head = struct.pack("<Q", len(header)) + header
    digest = _PipelinedHash()
    try:
        with _atomic_file(Path(path), durable) as f:
            f.write(head)
            digest.add(head)
            for _, _, _, buf in items:
                for piece in _pieces(buf):
                    f.write(piece)
                    digest.add(piece)
    finally:
        sha = digest.hexdigest()  # (also stops its thread when the write failed)
    return sha, len(head) + offset


def _safetensors_entries(header: bytes, data_bytes: int, where: str) -> list[tuple[str, str, tuple, int]]:
    """(name, dtype, shape, nbytes) in file order from a safetensors header, checked: known dtypes, sizes that
    match the shapes, data offsets that tile the data exactly."""
    try:
        entries = json.loads(header)
        entries.pop("__metadata__", None)
        rows = sorted(
            (
                int(e["data_offsets"][0]),
                int(e["data_offsets"][1]),
                str(k),
                str(e["dtype"]),
                tuple(int(d) for d in e["shape"]),
            )
            for k, e in entries.items()
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise WeightSyncError(f"{where}: not a safetensors header: {e}", "bad_path") from None
    out, end = [], 0
    for start, stop, name, dtype, shape in rows:
        n = ST_DTYPE_BYTES.get(dtype)
        if n is None or any(d < 0 for d in shape):
            raise WeightSyncError(f"{where}: tensor {name!r}: dtype {dtype!r}, shape {shape}", "bad_path")
        for d in shape:
            n *= d
        if start != end or stop - start != n:
            raise WeightSyncError(
                f"{where}: tensor {name!r} at bytes {start}..{stop}, expected {end}..{end + n}", "bad_path"
            )
        out.append((name, dtype, shape, n))
        end = stop
    if end != data_bytes:
        raise WeightSyncError(f"{where}: tensors hold {end} bytes, the file {data_bytes}", "bad_path")
    return out


def read_safetensors_verified(path: str | Path, sha256: str, total_bytes: int | None, max_bytes: int | None, alloc):
    """Read a safetensors weight file tensor by tensor into buffers from `alloc(name, dtype, shape, nbytes)` ->
    (handle, writable buffer of nbytes), hashing what was read as it goes; returns {name: handle} once the whole
    file's sha256 is `sha256`, else raises WeightSyncError ("bad_path", as read_verified: the file is checked the
    same way before a byte is read). What is handed back is the bytes that were hashed, in this process's memory:
    a file changed after the check cannot change them."""
    fd, size = _open_regular(path, total_bytes, max_bytes)
    digest = _PipelinedHash()
    out = {}
    try:
        with os.fdopen(fd, "rb", buffering=0) as f:
            fd = -1
            try:
                head, entries = _read_header(f, size, path)
            except WeightSyncError as e:  # the announced file, or another one?
                if _file_sha256(f, size) == sha256:
                    raise WeightSyncError(f"{e} (its sha256 is the announced one)", "bad_weights") from None
                raise
            digest.add(head)
            for name, dtype, shape, nbytes in entries:
                handle, buf = alloc(name, dtype, shape, nbytes)
                buf = _byte_view(buf)
                if buf.nbytes != nbytes:
                    raise ValueError(f"alloc gave {buf.nbytes} bytes for {name!r}, expected {nbytes}")
                for piece in _pieces(buf):
                    got = f.readinto(piece)
                    while got < piece.nbytes:  # a short read; 0: the file shrank under us
                        more = f.readinto(piece[got:])
                        if not more:
                            raise WeightSyncError(f"{path}: shorter than its size (file changed)", "bad_path")
                        got += more
                    digest.add(piece)
                out[name] = handle
            if f.read(1):
                raise WeightSyncError(f"{path}: longer than its size (file changed)", "bad_path")
    except OSError as e:
        raise WeightSyncError(f"{path}: cannot read weights: {e}", "bad_path") from None
    finally:
        sha = digest.hexdigest()
        if fd >= 0:
            os.close(fd)
    if sha != sha256:
        raise WeightSyncError(f"{path}: sha256 mismatch (file changed or was truncated)", "bad_path")
    return out


def _read_header(f, size: int, path) -> tuple[bytes, list]:
    """(the bytes up to the tensors, their entries) of an open safetensors file of `size` bytes."""
    if size < 8:
        raise WeightSyncError(f"{path}: {size} bytes, too short for safetensors", "bad_path")
    head = _read_exact(f, 8, path)
    (n,) = struct.unpack("<Q", head)
    if n > min(HEADER_ALLOWANCE, size - 8):
        raise WeightSyncError(f"{path}: not safetensors (a header of {n} bytes in a file of {size})", "bad_path")
    header = _read_exact(f, n, path)
    return head + header, _safetensors_entries(header, size - 8 - n, str(path))


def _file_sha256(f, size: int) -> str:
    f.seek(0)
    h, buf = hashlib.sha256(), bytearray(min(size, PIECE_BYTES))
    view = memoryview(buf)
    while got := f.readinto(view):
        h.update(view[:got])
    return h.hexdigest()


def _read_exact(f, n: int, path) -> bytes:
    data = b""
    while len(data) < n:
        more = f.read(n - len(data))
        if not more:
            raise WeightSyncError(f"{path}: shorter than its header says (file changed)", "bad_path")
        data += more
    return data


def _is_digest(s: str) -> bool:
    return len(s) == 64 and all(c in "0123456789abcdef" for c in s)


# Memory a held chunk or transfer takes beyond its bytes (Python objects, dict entries), counted against the budget:
# otherwise a flood of one-byte chunks would hold a hundred times the bytes it is charged.
OVERHEAD = 256


@dataclass
class Transfer:
    """An incomplete chunked transfer of one version."""

    version: int
    sha256: str
    total_bytes: int
    num_chunks: int
    last: float  # monotonic time of its last new chunk
    chunks: dict[int, bytes] = field(default_factory=dict)
    held: int = 0  # bytes of its chunks
    charged: int = OVERHEAD  # what it counts against the budget: its bytes plus OVERHEAD for it and each chunk


class BlobAssembler:
    """Reassembles chunked blobs, several versions side by side (so that a forged version that never completes
    cannot block the real one), within a byte budget: a transfer may announce at most `max_blob_bytes`, and all
    incomplete transfers together hold at most twice that (one in flight and a newer one starting); room is made by
    dropping the transfer that went longest without a chunk. A transfer with no new chunk for `timeout_s` expires.

    add() returns the blob once complete and verified, or None, and raises WeightSyncError (with its reason) refusing
    the chunk; the transfers it drops unfinished go to `on_drop(reason, transfer)` with their bytes released."""

    def __init__(self, max_blob_bytes: int | None = None, timeout_s: float = 60.0, on_drop=None):
        self.max_blob_bytes = None if max_blob_bytes is None else int(max_blob_bytes)
        self.max_pending_bytes = None if max_blob_bytes is None else 2 * int(max_blob_bytes)
        self.timeout_s = float(timeout_s)
        self.on_drop = on_drop or (lambda reason, transfer: None)
        self.pending: dict[int, Transfer] = {}
        self.held = 0  # what all incomplete transfers are charged (their bytes and OVERHEAD)

    def add(self, version, sha256, index, num_chunks, total_bytes, data: bytes, now: float | None = None):
        version, index, num_chunks, total_bytes = int(version), int(index), int(num_chunks), int(total_bytes)
        now = time.monotonic() if now is None else now
        where = f"chunk {index}"  # the tally's line names the version
        if not 0 <= index < num_chunks:
            raise WeightSyncError(f"{where} outside 0..{num_chunks - 1}", "bad_chunk")
        if self.max_blob_bytes is not None and total_bytes > self.max_blob_bytes:
            raise WeightSyncError(
                f"{where}: announces {total_bytes} bytes, over the limit of {self.max_blob_bytes}", "too_large"
            )
        if not _is_digest(str(sha256)):
            raise WeightSyncError(f"{where}: sha256 {str(sha256)[:80]!r} is not 64 hex digits", "bad_chunk")
        if num_chunks > max(total_bytes, 1):
            raise WeightSyncError(f"{where}: {num_chunks} chunks for {total_bytes} bytes", "bad_chunk")
        t = self.pending.get(version) or Transfer(version, str(sha256), total_bytes, num_chunks, now)
        if (t.sha256, t.num_chunks, t.total_bytes) != (sha256, num_chunks, total_bytes):
            raise WeightSyncError(f"{where} disagrees with earlier chunks of that version", "bad_chunk")
        if index in t.chunks:
            raise WeightSyncError(f"{where} again", "duplicate")
        n = len(data)
        if n == 0 and total_bytes > 0:
            raise WeightSyncError(f"{where} is empty", "bad_chunk")
        if t.held + n > t.total_bytes:
            raise WeightSyncError(f"{where}: {t.held + n} bytes in its chunks, announced {total_bytes}", "bad_chunk")
        cost = n + OVERHEAD + (0 if version in self.pending else t.charged)
        self._make_room(cost, keep=version)
        self.pending[version] = t
        t.chunks[index] = bytes(data)
        t.held += n
        t.charged += n + OVERHEAD
        self.held += cost
        t.last = now
        if len(t.chunks) < t.num_chunks:
            return None
        del self.pending[version]
        self.held -= t.charged
        blob = b"".join(t.chunks[i] for i in range(t.num_chunks))
        t.chunks.clear()
        if len(blob) != t.total_bytes or sha256_hex(blob) != t.sha256:
            raise WeightSyncError(
                f"reassembled blob of {t.num_chunks} chunks fails its size/sha256 check", "bad_digest"
            )
        return blob

    def _make_room(self, n: int, keep: int) -> None:
        while self.max_pending_bytes is not None and self.held + n > self.max_pending_bytes:
            others = [t for v, t in self.pending.items() if v != keep]
            if not others:  # only with a budget too small for one transfer's bookkeeping
                raise WeightSyncError(f"no room within {self.max_pending_bytes} bytes", "too_large")
            self._drop("evicted", min(others, key=lambda t: t.last))

    def _drop(self, reason: str, t: Transfer) -> None:
        del self.pending[t.version]
        self.held -= t.charged
        self.on_drop(reason, t)
        t.chunks.clear()

    def expire(self, now: float | None = None) -> int:
        """Drop the transfers with no new chunk for timeout_s; returns how many."""
        now = time.monotonic() if now is None else now
        old = [t for t in self.pending.values() if now - t.last > self.timeout_s]
        for t in old:
            self._drop("expired", t)
        return len(old)

    def supersede(self, floor: int) -> int:
        """Drop the transfers of versions at or below `floor` (a version swapped in); returns how many."""
        old = [t for v, t in self.pending.items() if v <= floor]
        for t in old:
            self._drop("superseded", t)
        return len(old)

    def next_deadline(self) -> float | None:
        """When the next transfer expires (monotonic time); None with none pending."""
        last = min((t.last for t in self.pending.values()), default=None)
        return None if last is None else last + self.timeout_s


class Tally:
    """Counts every refused or ignored weight message by reason and decides which ones to log: the first of each
    (reason, version), so that a refused transfer of thousands of chunks is one line and as many counts, and at most
    `burst` lines per `window_s`, so that a flood of distinct forged versions cannot flood the log (the next line
    says how many went unlogged). `report(reason, version, line)` gets every event, `line` None when not logged.
    Thread-safe: the node notes from its loader and its inference thread."""

    def __init__(self, report=None, remember: int = 1024, burst: int = 20, window_s: float = 10.0, clock=None):
        self.report = report or (lambda reason, version, line: None)
        self.counts: Counter[str] = Counter()
        self.remember, self.burst, self.window_s = remember, burst, window_s
        self.clock = clock or time.monotonic
        self.unlogged = 0
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._window: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def refused(self) -> int:
        return sum(n for r, n in self.snapshot().items() if r in REFUSED)

    def snapshot(self) -> dict[str, int]:
        """The counts by reason, copied (another thread may be noting)."""
        with self._lock:
            return dict(self.counts)

    def note(self, reason: str, version: int, detail: str) -> str | None:
        if reason not in REASONS:
            raise ValueError(f"unknown weight refusal reason {reason!r}; known: {sorted(REASONS)}")
        with self._lock:
            self.counts[reason] += 1
            key = (reason, int(version))
            first = key not in self._seen
            self._seen[key] = None
            self._seen.move_to_end(key)
            while len(self._seen) > self.remember:
                self._seen.popitem(last=False)
            line = None
            if first:
                now = self.clock()
                while self._window and now - self._window[0] > self.window_s:
                    self._window.popleft()
                if len(self._window) < self.burst:
                    self._window.append(now)
                    verb = "refused" if reason in REFUSED else "ignored"
                    line = f"weights version {version} {verb} ({reason}): {detail}"
                    if self.unlogged:
                        line += f" [and {self.unlogged} more refused or ignored, not logged: too many at once]"
                        self.unlogged = 0
                else:
                    self.unlogged += 1
            self.report(reason, int(version), line)
            return line


def trim_heap() -> None:
    """Hand freed memory back to the OS: glibc keeps freed medium-sized blocks (such as 512 kB chunks) in its heap,
    so without this the RSS stays where a refused transfer took it."""
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


_LIBC = None


# --- hiors_msgs / rclpy helpers (lazy import) ---------------------------------------------------------------------


# Above this, a version with a shared-disk path goes by that path alone (PolicyUpdate.num_chunks = 0): a real pi0
# (7 GB) over the topic would hold three more copies of it in the learner (the blob, its messages and DDS's
# transient-local history), and `hiors bench pi0` measures the disk path within a small factor of serialisation.
MAX_TOPIC_BYTES = 1 << 30


def weight_messages(
    blob: bytes | None,
    version: int,
    learner_step: int,
    path: str = "",
    chunk_size: int = CHUNK_SIZE,
    max_topic_bytes: int = MAX_TOPIC_BYTES,
    digest: str = "",
    total_bytes: int = 0,
):
    """(PolicyUpdate, [PolicyWeights]) for one blob; no chunks when `path` is given and the blob is over
    `max_topic_bytes` (the receivers then need that file: a shared disk). `blob` None: the version is the file at
    `path` alone, with its `digest` and `total_bytes` (a model too large to hold twice)."""
    from hiors_msgs.msg import PolicyUpdate, PolicyWeights

    if blob is None:
        if not path or not _is_digest(digest) or total_bytes <= 0:
            raise ValueError("weights without a blob need the file's path, sha256 and size")
        parts = []
    else:
        digest, total_bytes = sha256_hex(blob), len(blob)
        parts = [] if path and len(blob) > max_topic_bytes else split_chunks(blob, chunk_size)
    update = PolicyUpdate(
        version=int(version),
        learner_step=int(learner_step),
        sha256=digest,
        total_bytes=int(total_bytes),
        num_chunks=len(parts),
        path=str(path),
    )
    chunks = []
    for i, part in enumerate(parts):
        m = PolicyWeights(version=int(version), sha256=digest, chunk_index=i, num_chunks=len(parts))
        m.total_bytes = int(total_bytes)
        m.data = array.array("B", part)
        chunks.append(m)
    return update, chunks


def _msg_bytes(data) -> bytes:
    return data.tobytes() if hasattr(data, "tobytes") else bytes(data)


class WeightReceiver:
    """Actor side: feed PolicyUpdate and PolicyWeights messages; returns (version, blob) when a new verified
    version is available. Uses the local file when the announce names a path on this disk with the right digest
    (delivering what `read_file` makes of it).

    Only the caller's commit(version), once that version is swapped in, raises the floor below which versions are
    stale: a delivered blob that is then refused (not the model's weights) must not use up its version number, or one
    forged announcement of version 2^64-1 would stop learning for good. Every refused or ignored message is noted in
    `tally` by reason (REASONS). Not thread-safe except for note(): one thread feeds it."""

    def __init__(
        self,
        use_local_path: bool = True,
        max_blob_bytes: int | None = None,
        timeout_s: float = 60.0,
        floor: int = -1,
        report=None,
        read_file=None,
    ):
        self.tally = Tally(report)
        # (path, sha256, total_bytes, max_bytes) -> what is delivered for an announced file (read_verified: its
        # bytes; the policy node reads tensors straight from it with read_safetensors_verified)
        self.read_file = read_file or read_verified
        self.assembler = BlobAssembler(max_blob_bytes, timeout_s, on_drop=self._dropped)
        self.use_local_path = use_local_path
        self.floor = int(floor)  # the version running; only commit() raises it
        self.delivered: int | None = None  # the version handed out and not yet committed or refused
        self.latest_version = -1  # the newest version handed out (informational)

    def note(self, reason: str, version: int, detail: str) -> None:
        self.tally.note(reason, version, detail)

    def _dropped(self, reason: str, t: Transfer) -> None:
        self.note(reason, t.version, f"incomplete, {len(t.chunks)} of {t.num_chunks} chunks ({t.held} bytes) dropped")

    def _admit(self, version: int, what: str) -> bool:
        if version <= self.floor:
            self.note("stale", version, f"{what}: not newer than the running version {self.floor}")
            return False
        if version == self.delivered:
            self.note("duplicate", version, f"{what}: this version is already received")
            return False
        return True

    def _done(self, version: int, blob: bytes | None):
        if blob is None:
            return None
        self.delivered = version
        self.latest_version = max(self.latest_version, version)
        return version, blob

    def on_update(self, msg):
        version = int(msg.version)
        if not self._admit(version, "update"):
            return None
        if not (self.use_local_path and msg.path) or not os.path.lexists(msg.path):
            if int(getattr(msg, "num_chunks", 1)) == 0:  # file only: nothing else will bring it
                why = "use_local_weights is off" if msg.path and not self.use_local_path else "no such file here"
                self.note(
                    "bad_path", version, f"announced as the file {msg.path!r} alone ({why}); share the learner's disk"
                )
            return None  # not on this disk: its chunks bring it
        try:
            blob = self.read_file(msg.path, msg.sha256, int(msg.total_bytes), self.assembler.max_blob_bytes)
        except WeightSyncError as e:  # forged, or overwritten by a newer version: the chunks may still bring it
            self.note(e.reason, version, str(e))
            return None
        return self._done(version, blob)

    def on_chunk(self, msg, now: float | None = None):
        version = int(msg.version)
        if not self._admit(version, f"chunk {msg.chunk_index}"):
            return None
        try:
            blob = self.assembler.add(
                version, msg.sha256, msg.chunk_index, msg.num_chunks, msg.total_bytes, _msg_bytes(msg.data), now
            )
        except WeightSyncError as e:
            self.note(e.reason, version, str(e))
            return None
        return self._done(version, blob)

    def commit(self, version: int) -> None:
        """`version` is swapped in: it becomes the floor, and incomplete transfers at or below it are released."""
        self.floor = max(self.floor, int(version))
        if self.delivered is not None and self.delivered <= self.floor:
            self.delivered = None
        self.assembler.supersede(self.floor)

    def refuse(self, version: int, reason: str, detail: str) -> None:
        """The caller refused a delivered version (not usable weights): noted, and its number stays free."""
        self.note(reason, version, detail)
        if self.delivered == int(version):
            self.delivered = None

    def expire(self, now: float | None = None) -> int:
        return self.assembler.expire(now)
