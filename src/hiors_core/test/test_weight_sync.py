"""Weight sync, pure: chunking, verified reads, reassembly within a byte budget, and the receiver's version floor under
forged messages (every refusal counted by reason and logged once). Messages are plain namespaces: no rclpy."""

import os
from types import SimpleNamespace

import numpy as np
import pytest

from hiors_core.weight_sync import (
    OVERHEAD,
    REASONS,
    REFUSED,
    BlobAssembler,
    Tally,
    WeightReceiver,
    WeightSyncError,
    read_safetensors_verified,
    read_verified,
    sha256_hex,
    split_chunks,
    weight_bytes_limit,
    write_atomic,
    write_safetensors,
)

BLOB = np.random.default_rng(0).bytes(10_000)
DIGEST = sha256_hex(BLOB)


def chunks(blob, version, size=3000, sha=None):
    parts = split_chunks(blob, size)
    return [
        SimpleNamespace(
            version=version,
            sha256=sha or sha256_hex(blob),
            chunk_index=i,
            num_chunks=len(parts),
            total_bytes=len(blob),
            data=p,
        )
        for i, p in enumerate(parts)
    ]


def update(version, path="", sha=DIGEST, total=None):
    total = len(BLOB) if total is None else total
    return SimpleNamespace(version=version, sha256=sha, total_bytes=total, path=str(path))


class Log:
    """A receiver's report sink: every event, and the lines it would log."""

    def __init__(self):
        self.events, self.lines = [], []

    def __call__(self, reason, version, line):
        self.events.append((reason, version))
        if line is not None:
            self.lines.append(line)


def receiver(limit=50_000, floor=0, **kw):
    log = Log()
    return WeightReceiver(max_blob_bytes=limit, floor=floor, report=log, **kw), log


def feed(rx, msgs, now=None):
    out = [rx.on_chunk(m, now) for m in msgs]
    return [o for o in out if o is not None]


def test_chunking_roundtrip_and_verification(tmp_path):
    parts = split_chunks(BLOB, 3000)
    assert len(parts) == 4 and b"".join(parts) == BLOB
    asm = BlobAssembler()
    out = None
    for i in [3, 1, 0, 2]:  # any order
        out = asm.add(5, DIGEST, i, 4, len(BLOB), parts[i])
    assert out == BLOB and not asm.pending and asm.held == 0
    bad = BlobAssembler()
    for i in range(3):
        bad.add(6, DIGEST, i, 4, len(BLOB), parts[i])
    with pytest.raises(WeightSyncError, match="sha256") as e:
        bad.add(6, DIGEST, 3, 4, len(BLOB), b"x" * len(parts[3]))
    assert e.value.reason == "bad_digest" and not bad.pending and bad.held == 0
    p = write_atomic(tmp_path / "w" / "v1.safetensors", BLOB)
    assert read_verified(p, DIGEST, len(BLOB)) == BLOB
    assert not list(p.parent.glob("*.tmp"))
    with pytest.raises(WeightSyncError):
        read_verified(p, sha256_hex(b"other"))


def test_weight_messages_roundtrip(tmp_path):
    from hiors_core.weight_sync import weight_messages

    blob = np.random.default_rng(1).bytes(2_500)
    upd, msgs = weight_messages(blob, 3, 100, chunk_size=1000)
    assert upd.num_chunks == 3 and upd.total_bytes == 2500 and len(msgs) == 3
    rx, log = receiver()
    assert rx.on_update(upd) is None  # no path: wait for chunks
    got = [rx.on_chunk(c) for c in msgs]
    assert got[:2] == [None, None] and got[2] == (3, blob)
    rx.commit(3)
    path = write_atomic(tmp_path / "v4.safetensors", blob)
    update4, chunks4 = weight_messages(blob, 4, 200, path=str(path))
    assert rx.on_update(update4) == (4, blob)  # local fast path
    assert rx.on_update(update4) is None and feed(rx, chunks4) == []  # not twice, nor its chunks
    assert log.events == [("duplicate", 4)] * 2 and not rx.assembler.pending


def test_over_the_topic_limit_a_version_with_a_path_goes_by_the_file_alone(tmp_path):
    """Above max_topic_bytes a version with a shared-disk path is announced with no chunks (a real pi0 over the
    topic would hold three more copies in the learner); a receiver that cannot read that file says so."""
    from hiors_core.weight_sync import weight_messages

    blob = np.random.default_rng(2).bytes(5_000)
    path = write_atomic(tmp_path / "v2.safetensors", blob)
    upd, msgs = weight_messages(blob, 2, 20, path=str(path), chunk_size=1000, max_topic_bytes=4_999)
    assert upd.num_chunks == 0 and msgs == []
    assert len(weight_messages(blob, 2, 20, chunk_size=1000, max_topic_bytes=4_999)[1]) == 5  # no path: chunks
    assert len(weight_messages(blob, 2, 20, path=str(path), chunk_size=1000, max_topic_bytes=5_000)[1]) == 5
    rx, _ = receiver()
    assert rx.on_update(upd) == (2, blob)
    for kw, why in (({}, "no such file"), ({"use_local_path": False}, "use_local_weights is off")):
        rx, log = receiver(**kw)
        upd.path = str(tmp_path / "elsewhere") if why == "no such file" else str(path)
        assert rx.on_update(upd) is None
        assert rx.tally.counts == {"bad_path": 1} and why in log.lines[0]


def test_weight_file_refused_by_stat_before_reading(tmp_path):
    """A file an update names is refused by its size and kind before a byte is read: a 1 GiB sparse file, /dev/zero,
    a FIFO, a directory."""
    sparse = tmp_path / "sparse.safetensors"
    with open(sparse, "wb") as f:
        f.truncate(1 << 30)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = [
        (sparse, 1 << 30, "too_large"),  # the announced size matches the file, but is over the limit
        (sparse, 100, "too_large"),
        ("/dev/zero", 100, "bad_path"),  # not a regular file
        (fifo, 100, "bad_path"),  # a FIFO: opened without blocking, then refused
        (tmp_path, 100, "bad_path"),
        ("/etc/passwd", 2**64 - 1, "too_large"),
        (tmp_path / "missing", 100, "bad_path"),
    ]
    for path, total, reason in cases:
        with pytest.raises(WeightSyncError) as e:
            read_verified(path, DIGEST, total, max_bytes=1 << 20)
        assert e.value.reason == reason, (path, e.value)
    good = write_atomic(tmp_path / "good", BLOB)
    with pytest.raises(WeightSyncError, match="sha256") as e:
        read_verified(good, "0" * 64, len(BLOB), max_bytes=1 << 20)
    assert e.value.reason == "bad_path"
    assert read_verified(good, DIGEST, len(BLOB), max_bytes=len(BLOB)) == BLOB


def _tensors(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "a": rng.normal(size=(3, 5)).astype(np.float32),
        "b": rng.integers(0, 9, size=(7,)).astype(np.int64),
        "c": np.zeros((0, 4), np.float32),
        "d": rng.integers(0, 255, size=(33,)).astype(np.uint8),
    }


ST = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.uint8): "U8"}
NP = {v: k for k, v in ST.items()}


def _write(path, tensors, **kw):
    return write_safetensors(path, ((k, ST[v.dtype], v.shape, v) for k, v in tensors.items()), **kw)


def _read(path, sha, total, max_bytes=None):
    def alloc(name, dtype, shape, nbytes):
        a = np.empty(shape, NP[dtype])
        return a, a.reshape(-1).view(np.uint8)

    return read_safetensors_verified(path, sha, total, max_bytes, alloc)


@pytest.mark.parametrize("durable", [True, False])
def test_streamed_safetensors_files_round_trip_with_their_digest(tmp_path, durable, monkeypatch):
    """write_safetensors makes a file safetensors itself reads, returns its sha256 and size; the streamed reader gives
    the same tensors back, hashing pieces as it reads (pieces smaller than the tensors here)."""
    from safetensors.numpy import load_file

    import hiors_core.weight_sync as ws

    monkeypatch.setattr(ws, "PIECE_BYTES", 16)
    tensors = _tensors()
    sha, size = _write(tmp_path / "w.safetensors", tensors, metadata={"format": "pt"}, durable=durable)
    data = (tmp_path / "w.safetensors").read_bytes()
    assert (sha, size) == (sha256_hex(data), len(data)) and not list(tmp_path.glob("*.tmp"))
    theirs = load_file(str(tmp_path / "w.safetensors"))
    ours = _read(tmp_path / "w.safetensors", sha, size, max_bytes=size)
    for got in (theirs, ours):
        assert got.keys() == tensors.keys()
        assert all(got[k].dtype == v.dtype and np.array_equal(got[k], v) for k, v in tensors.items())


def test_streamed_read_refuses_what_is_not_the_announced_file(tmp_path):
    """The streamed reader checks the file as read_verified does (kind, size, limit) and its sha256 over every byte
    it hands back; a file with the announced digest that is not safetensors is refused as not weights."""
    p = tmp_path / "w.safetensors"
    sha, size = _write(p, _tensors())
    cases = [
        (p, "0" * 64, size, None, "bad_path", "sha256"),  # another version's digest
        (p, sha, size + 1, None, "bad_path", "announced"),
        (p, sha, size, size - 1, "too_large", "limit"),
        ("/dev/zero", sha, 100, None, "bad_path", "regular"),
    ]
    data = bytearray(p.read_bytes())
    data[-1] ^= 1  # one bit of the last tensor
    flipped = write_atomic(tmp_path / "flipped", bytes(data))
    cases.append((flipped, sha, size, None, "bad_path", "sha256"))
    passwd = write_atomic(tmp_path / "passwd", b"root:x:0:0:root:/root:/bin/bash\n" * 4)
    blob = passwd.read_bytes()
    cases.append((passwd, sha256_hex(blob), len(blob), None, "bad_weights", "not safetensors"))
    lying = bytearray(data)
    lying[8:10] = b"[]"  # a header that is not a table of tensors, same size
    lying = write_atomic(tmp_path / "lying", bytes(lying))
    cases.append((lying, sha256_hex(lying.read_bytes()), size, None, "bad_weights", "header"))
    for path, digest, total, limit, reason, words in cases:
        with pytest.raises(WeightSyncError, match=words) as e:
            _read(path, digest, total, limit)
        assert e.value.reason == reason, (path, e.value)


def test_receiver_delivers_what_read_file_makes_of_an_announced_file(tmp_path):
    p = tmp_path / "w.safetensors"
    sha, size = _write(p, _tensors())
    rx, log = receiver()
    rx.read_file = _read
    version, got = rx.on_update(SimpleNamespace(version=2, sha256=sha, total_bytes=size, path=str(p)))
    assert version == 2 and np.array_equal(got["a"], _tensors()["a"])
    rx.refuse(2, "bad_weights", "pretend")
    assert rx.on_update(SimpleNamespace(version=3, sha256="1" * 64, total_bytes=size, path=str(p))) is None
    assert log.events == [("bad_weights", 2), ("bad_path", 3)]


def test_a_refused_version_does_not_use_up_its_number(tmp_path):
    """A PolicyUpdate naming /etc/passwd (its real sha256 and size) as version 2^64-1 is read and refused as not
    weights without raising the floor: the learner's real version 5 is still taken, by path and by chunks."""
    passwd = tmp_path / "passwd"
    passwd.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    forged = update(2**64 - 1, passwd, sha256_hex(passwd.read_bytes()), passwd.stat().st_size)
    rx, log = receiver()
    got = rx.on_update(forged)
    assert got is not None and got[0] == 2**64 - 1  # it is a readable file with the announced digest...
    rx.refuse(got[0], "bad_weights", "not a safetensors blob")  # ...the node refuses it as weights
    assert rx.floor == 0 and rx.delivered is None
    real = write_atomic(tmp_path / "v5", BLOB)
    assert rx.on_update(update(5, real)) == (5, BLOB)  # by path
    rx.refuse(5, "bad_weights", "pretend")  # and by chunks
    assert feed(rx, chunks(BLOB, 5)) == [(5, BLOB)]
    rx.commit(5)
    assert rx.floor == 5
    assert feed(rx, chunks(BLOB, 4)) == [] and rx.on_update(update(5, real)) is None  # stale now
    assert rx.tally.counts == {"bad_weights": 2, "stale": 5}
    assert log.lines[0].startswith(f"weights version {2**64 - 1} refused (bad_weights)")


def test_a_forged_chunk_that_never_completes_does_not_block_later_versions():
    """One chunk of a version 1e9 that never completes leaves later chunk-only updates taken, and expires."""
    rx, log = receiver(timeout_s=10.0)
    forged = chunks(np.random.default_rng(2).bytes(5000), 10**9, size=1000)[0]
    assert rx.on_chunk(forged, now=0.0) is None and 10**9 in rx.assembler.pending
    assert feed(rx, chunks(BLOB, 5), now=1.0) == [(5, BLOB)]
    rx.commit(5)
    assert 10**9 in rx.assembler.pending  # newer than 5: it stays until it expires
    assert rx.expire(now=5.0) == 0 and rx.expire(now=11.5) == 1
    assert not rx.assembler.pending and rx.assembler.held == 0
    assert rx.tally.counts == {"expired": 1} and "expired" in log.lines[-1]


def test_a_swapped_in_version_supersedes_older_incomplete_transfers():
    rx, _ = receiver()
    feed(rx, chunks(BLOB, 6)[:2])  # version 6 incomplete
    feed(rx, chunks(BLOB, 7)[:1])
    assert feed(rx, chunks(BLOB, 8)) == [(8, BLOB)]
    rx.commit(8)
    assert not rx.assembler.pending and rx.assembler.held == 0
    assert rx.tally.counts == {"superseded": 2}


def test_incomplete_transfers_stay_within_the_byte_budget():
    """Floods of chunks of never-completed versions hold no more than the byte budget, and the real version still
    gets through."""
    limit = 20_000
    rx, log = receiver(limit=limit)
    rng = np.random.default_rng(3)
    # One forged version announcing the limit, then flooded with its chunks again and out-of-range ones.
    big = chunks(rng.bytes(limit), 100, size=1000)
    feed(rx, big[:-1])
    held_one = rx.assembler.held
    assert held_one <= limit + OVERHEAD * len(big)
    again = [SimpleNamespace(**{**vars(m), "data": rng.bytes(1000)}) for m in big[:-1]]
    outside = [SimpleNamespace(**{**vars(big[0]), "chunk_index": len(big) + i}) for i in range(50)]
    feed(rx, again + outside)
    assert rx.assembler.held == held_one  # nothing more held
    # A chunk that would hold more bytes than its version announced.
    over = chunks(rng.bytes(1500), 101, size=1000)
    over[1].data = rng.bytes(501)
    feed(rx, over)
    assert 101 in rx.assembler.pending and rx.assembler.pending[101].held == 1000
    # Many forged versions: the oldest incomplete ones are evicted, the budget holds.
    for v in range(200, 260):
        feed(rx, chunks(rng.bytes(limit), v, size=4000)[:3])
        assert rx.assembler.held <= 2 * limit
    # Announced sizes over the limit, and counts over the size, are refused before anything is held.
    held = rx.assembler.held
    for total, count in ((limit + 1, 1), (2**64 - 1, 2), (10, 11)):
        m = SimpleNamespace(version=999, sha256="0" * 64, chunk_index=0, num_chunks=count, total_bytes=total, data=b"x")
        assert rx.on_chunk(m) is None
    assert rx.assembler.held == held and 999 not in rx.assembler.pending
    # The real version still gets through, and its arrival does not depend on the flood going away.
    assert feed(rx, chunks(BLOB, 300)) == [(300, BLOB)]
    c = rx.tally.counts
    assert c["evicted"] > 0 and c["too_large"] == 2 and c["bad_chunk"] >= 51 and c["duplicate"] == len(big) - 1
    # Logged once per (reason, version): a flood of one version's chunks is one line a reason.
    lines = [ln for ln in log.lines if "version 100 " in ln]
    assert [ln.split("(")[1].split(")")[0] for ln in lines] == ["duplicate", "bad_chunk", "evicted"]
    assert "19 of 20 chunks" in lines[-1]


def test_chunk_refusals_name_their_reason():
    rx, _ = receiver()
    good = chunks(BLOB, 9)
    cases = {
        "index": dict(chunk_index=7),
        "sha": dict(sha256="abc"),
        "empty": dict(data=b""),
        "count": dict(num_chunks=5),  # disagrees with chunk 0
    }
    assert rx.on_chunk(good[0]) is None
    for what, change in cases.items():
        assert rx.on_chunk(SimpleNamespace(**{**vars(good[1]), **change})) is None, what
    assert rx.tally.counts == {"bad_chunk": 4}
    assert feed(rx, good[1:]) == [(9, BLOB)]  # a refused chunk does not drop the transfer it claimed to belong to
    flipped = chunks(BLOB, 10)
    flipped[2].data = bytes(len(flipped[2].data))
    assert feed(rx, flipped) == [] and rx.tally.counts["bad_digest"] == 1


def test_tally_logs_each_reason_and_version_once_and_limits_a_flood_of_lines():
    now = [0.0]
    lines = []
    t = Tally(lambda r, v, line: lines.append(line), burst=3, window_s=10.0, clock=lambda: now[0])
    for _ in range(100):
        t.note("bad_chunk", 1, "x")
    assert t.counts["bad_chunk"] == 100 and len([ln for ln in lines if ln]) == 1
    for v in range(2, 10):
        t.note("bad_path", v, "y")
    assert len([ln for ln in lines if ln]) == 3 and t.unlogged == 6
    now[0] = 11.0
    t.note("stale", 50, "z")
    assert "and 6 more refused or ignored, not logged" in lines[-1] and "ignored (stale)" in lines[-1]
    assert t.refused == 108
    with pytest.raises(ValueError, match="unknown"):
        t.note("whatever", 1, "")
    assert set(REFUSED) < set(REASONS)


def test_weight_bytes_limit_allows_a_float32_blob_of_the_model():
    from safetensors.numpy import save

    params = {f"layer{i}.weight": np.zeros((64, 32 + i), np.float32) for i in range(40)}
    blob = save(params)
    n = sum(a.size for a in params.values())
    assert len(blob) <= weight_bytes_limit(n) < 2 * len(blob) + (1 << 20)


def test_a_version_without_a_blob_is_announced_by_its_file_alone():
    from hiors_core.weight_sync import weight_messages

    digest = "ab" * 32
    update, chunks = weight_messages(None, 3, 40, "/w/policy-v3.safetensors", digest=digest, total_bytes=7 << 30)
    assert chunks == [] and (update.num_chunks, update.sha256, update.total_bytes) == (0, digest, 7 << 30)
    for bad in ({"path": ""}, {"digest": "nope"}, {"total_bytes": 0}):
        args = {"path": "/w/p", "digest": digest, "total_bytes": 10} | bad
        with pytest.raises(ValueError, match="path, sha256 and size"):
            weight_messages(None, 3, 40, args["path"], digest=args["digest"], total_bytes=args["total_bytes"])
