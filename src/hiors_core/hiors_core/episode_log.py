"""The episode log of record: one rosbag2 (MCAP) directory per episode plus an append-only index.

Layout under the log root:
    index.jsonl            one JSON record per event (recording, complete, incomplete, acked); the last one wins
    <episode_id>/          a rosbag2 bag: metadata.yaml + <episode_id>.mcap, readable by any rosbag2 reader
    <episode_id>.recovered/  what could be salvaged from a bag whose writer died (never trained on)

Time base: every message of a bag carries the episode's own clock (sim time in the twin, wall time on a robot),
the one its frames and commands were stamped with. The meta message is written at the first frame or command's
stamp and the label at the last one, whatever clock their writers used, so a bag's duration is its episode's.

Status: `complete` means the bag was closed at the episode's end (trained on and exported only with a label);
an episode cut short (the run ended while it was recorded or before its label came, the next one started before
it was labelled) is closed as `incomplete` with the reason, its bag still readable with
`read(..., allow_incomplete=True)`, and is never trained on or exported.

Crash safety: metadata.yaml is written only when a bag is closed, and the writer flushes whole MCAP chunks to
disk as it goes. A bag directory without metadata.yaml whose writer process is gone was killed mid-episode;
`recover()` salvages its complete chunks into `<id>.recovered/` and marks the episode incomplete in the index.
Nothing is ever overwritten: writers refuse existing paths and recovery writes beside the original.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from mcap.exceptions import McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import get_types_from_msg

from . import topics
from .convert import executed_from_msg, frame_from_observation, label_from_msg, ns_to_sec_nanosec
from .errors import BadInputError, EpisodeLogError
from .msg_types import typestore
from .schema import EpisodeData, EpisodeMeta, Executed, Frame, Label

BAG_TOPIC_META = "/episode/meta"  # std_msgs/String, JSON EpisodeMeta, first message of every bag (by time)
BAG_TOPIC_OBSERVATION = "/" + topics.OBSERVATION
BAG_TOPIC_EXECUTED = "/" + topics.EXECUTED
BAG_TOPIC_LABEL = "/" + topics.EPISODE_LABEL

BAG_TOPICS = {
    BAG_TOPIC_META: "std_msgs/msg/String",
    BAG_TOPIC_OBSERVATION: "hiors_msgs/msg/Observation",
    BAG_TOPIC_EXECUTED: "hiors_msgs/msg/ExecutedCommand",
    BAG_TOPIC_LABEL: "hiors_msgs/msg/EpisodeLabel",
}

STATUS_RECORDING = "recording"
STATUS_COMPLETE = "complete"
STATUS_INCOMPLETE = "incomplete"
STATUS_ACKED = "acked"  # the learner side has received it


@dataclass
class IndexEntry:
    episode_id: str
    status: str
    robot: str = ""
    task: str = ""
    reward: float | None = None
    success: bool | None = None
    frames: int = 0
    steps: int = 0
    human_steps: int = 0
    pid: int = 0
    reason: str = ""
    time: float = 0.0


# --- building rosbags messages from the numpy schema ----------------------------------------------------------


def _ts():
    return typestore().types


def _header(stamp_ns: int, frame_id: str = ""):
    t = _ts()
    sec, nanosec = ns_to_sec_nanosec(stamp_ns)
    return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id)


def _image(img: np.ndarray, stamp_ns: int, frame_id: str):
    img = np.ascontiguousarray(img, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise BadInputError(f"camera {frame_id!r}: image shape {img.shape}, expected HxWx3 uint8")
    h, w = img.shape[:2]
    return _ts()["sensor_msgs/msg/Image"](
        header=_header(stamp_ns, frame_id),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=w * 3,
        data=img.reshape(-1),
    )


def _observation(frame: Frame, meta: EpisodeMeta):
    return _ts()["hiors_msgs/msg/Observation"](
        header=_header(frame.stamp_ns, "base_link"),
        robot=meta.robot,
        task=meta.task,
        instruction=frame.instruction or meta.instruction,
        camera_names=list(frame.images),
        images=[_image(im, frame.stamp_ns, name) for name, im in frame.images.items()],
        state_names=list(frame.state_names or meta.state_names),
        state=np.asarray(frame.state, dtype=np.float32),
        sequence=frame.sequence,
        dropped_stale=0,
    )


def _executed(e: Executed, meta: EpisodeMeta):
    return _ts()["hiors_msgs/msg/ExecutedCommand"](
        header=_header(e.stamp_ns),
        episode_id=meta.episode_id,
        step=e.step,
        authority=e.authority,
        source=e.source,
        control_mode=meta.control_mode,
        action_names=list(meta.action_names),
        action=np.asarray(e.action, dtype=np.float32),
        policy_version=e.policy_version,
        clamped=e.clamped,
        is_sample=e.is_sample,
    )


def _label(label: Label, meta: EpisodeMeta):
    return _ts()["hiors_msgs/msg/EpisodeLabel"](
        header=_header(label.stamp_ns),
        episode_id=meta.episode_id,
        reward=float(label.reward),
        success=bool(label.success),
        source=label.source,
    )


def _meta_to_json(meta: EpisodeMeta) -> str:
    return json.dumps(asdict(meta))


def _meta_from_json(text: str) -> EpisodeMeta:
    d = json.loads(text)
    for k in ("action_names", "state_names", "camera_names"):
        d[k] = tuple(d.get(k, ()))
    return EpisodeMeta(**d)


# --- writing ----------------------------------------------------------------------------------------------------


class EpisodeWriter:
    """Writes one episode bag. Use through `EpisodeLog.open_writer`; `close` it with its label, or
    `close_cut_short` with the reason it never got one."""

    FLUSH_EVERY_S = 1.0  # complete MCAP chunks reach the disk at least this often

    def __init__(self, log: EpisodeLog, meta: EpisodeMeta):
        self.log = log
        self.meta = meta
        self.path = log.root / meta.episode_id
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.set_custom_data("hiors.episode_meta", _meta_to_json(meta))
        self._writer.open()
        store = typestore()
        self._conns = {t: self._writer.add_connection(t, mt, typestore=store) for t, mt in BAG_TOPICS.items()}
        self._last_flush = time.monotonic()
        self.frames = 0
        self.steps = 0
        self.human_steps = 0
        self.label: Label | None = None
        self._closed = False
        # The episode's time base is its data's: the meta message waits for the first frame or command's stamp
        # (a stamp from this process's wall clock would make a sim-time bag last decades).
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def _write_meta(self, stamp_ns: int) -> None:
        self._write(BAG_TOPIC_META, stamp_ns, _ts()["std_msgs/msg/String"](data=_meta_to_json(self.meta)))
        self.first_ns = self.last_ns = int(stamp_ns)

    def _write_data(self, topic: str, stamp_ns: int, msg) -> None:
        if self.first_ns is None:
            self._write_meta(stamp_ns)
        self._write(topic, stamp_ns, msg)
        self.last_ns = max(self.last_ns, int(stamp_ns))

    def _write(self, topic: str, stamp_ns: int, msg) -> None:
        if self._closed:
            raise EpisodeLogError(f"{self.path}: episode already closed")
        data = typestore().serialize_cdr(msg, BAG_TOPICS[topic])
        self._writer.write(self._conns[topic], int(stamp_ns), data)
        if time.monotonic() - self._last_flush > self.FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Close the pending MCAP chunk and push it to disk, so a kill loses at most the last second."""
        storage = self._writer.storage  # rosbags' MCAP storage writer
        if storage is not None and hasattr(storage, "close_chunk") and storage.chunk.bio.tell():
            storage.close_chunk()
            storage.bio.flush()
            os.fsync(storage.bio.fileno())
        self._last_flush = time.monotonic()

    def write_frame(self, frame: Frame) -> None:
        self._write_data(BAG_TOPIC_OBSERVATION, frame.stamp_ns, _observation(frame, self.meta))
        self.frames += 1

    def write_executed(self, e: Executed) -> None:
        self._write_data(BAG_TOPIC_EXECUTED, e.stamp_ns, _executed(e, self.meta))
        self.steps += 1
        self.human_steps += int(e.is_human)

    def write_label(self, label: Label) -> None:
        """The label ends the episode: it is logged at the episode's last stamp, in the bag's time base, whatever
        clock its labeller used (a wall-clock button press, an oracle that leaves the stamp 0). Its header keeps
        the labeller's stamp when it has one."""
        if self.first_ns is None:  # nothing recorded: the label is the time base
            self._write_meta(label.stamp_ns)
        at = self.last_ns
        self._write(BAG_TOPIC_LABEL, at, _label(label if label.stamp_ns else replace(label, stamp_ns=at), self.meta))
        self.label = label

    def close(self, label: Label | None = None) -> Path:
        """Finish the bag (writes metadata.yaml) and mark it complete in the index."""
        if label is not None:
            self.write_label(label)
        return self._finish(STATUS_COMPLETE)

    def close_cut_short(self, reason: str) -> Path:
        """Finish the bag but mark the episode incomplete, with the reason (e.g. the run ended while recording):
        it stays readable for inspection and is never trained on or exported as a complete episode."""
        return self._finish(STATUS_INCOMPLETE, reason)

    def _finish(self, status: str, reason: str = "") -> Path:
        if self._closed:
            raise EpisodeLogError(f"{self.path}: episode already closed")
        if self.first_ns is None:  # no frame, command or label: the meta message still makes it a hiors bag
            self._write_meta(0)
        self._writer.close()
        self._closed = True
        self.log._append(
            IndexEntry(
                episode_id=self.meta.episode_id,
                status=status,
                robot=self.meta.robot,
                task=self.meta.task,
                reward=None if self.label is None else float(self.label.reward),
                success=None if self.label is None else bool(self.label.success),
                frames=self.frames,
                steps=self.steps,
                human_steps=self.human_steps,
                reason=reason,
            )
        )
        return self.path

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._closed:
            if exc is not None:
                self.close_cut_short(f"writing stopped by {exc_type.__name__}: {exc}")
            else:
                self.close()


# --- the log ----------------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_index(index_path: Path) -> dict[str, IndexEntry]:
    """Latest record per episode in an episode log's index.jsonl (none when it does not exist), without making
    the log's folder as `EpisodeLog` does. A torn last line (a crash mid-append) is skipped."""
    out: dict[str, IndexEntry] = {}
    if not index_path.exists():
        return out
    with open(index_path, encoding="utf-8") as f:
        for line in f:
            try:
                e = IndexEntry(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue  # torn or foreign line; the bags themselves remain the record
            prev = out.get(e.episode_id)
            if prev is not None and e.status == STATUS_ACKED:
                # An acknowledgement keeps everything the completion record knew.
                e = IndexEntry(**{**asdict(prev), "status": STATUS_ACKED, "time": e.time})
            out[e.episode_id] = e
    return out


class EpisodeLog:
    """All episodes under one root directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.index_path = self.root / "index.jsonl"

    # index ---------------------------------------------------------------------------------------------------
    def _append(self, entry: IndexEntry) -> None:
        entry.time = entry.time or time.time()
        line = json.dumps(asdict(entry)) + "\n"
        with open(self.index_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def entries(self) -> dict[str, IndexEntry]:
        """Latest index record per episode. A torn last line (a crash mid-append) is skipped."""
        return read_index(self.index_path)

    def ids(self, status: str | None = None) -> list[str]:
        return sorted(i for i, e in self.entries().items() if status is None or e.status == status)

    def trainable_ids(self) -> list[str]:
        """Episodes that finished cleanly (complete or acknowledged) with a label. (An unlabelled `complete` entry,
        as older logs hold, has no known return: it is out.)"""
        return sorted(
            i for i, e in self.entries().items() if e.status in (STATUS_COMPLETE, STATUS_ACKED) and e.reward is not None
        )

    def mark_acked(self, episode_id: str) -> None:
        if episode_id not in self.entries():
            raise EpisodeLogError(f"{self.index_path}: no episode {episode_id!r} to acknowledge")
        self._append(IndexEntry(episode_id=episode_id, status=STATUS_ACKED))

    def new_episode_id(self, prefix: str = "ep") -> str:
        """A fresh id that no bag, recovered bag or index record uses."""
        taken = set(self.entries()) | {p.name.split(".")[0] for p in self.root.iterdir()}
        numbers = [int(t[len(prefix) + 1 :]) for t in taken if re.fullmatch(rf"{re.escape(prefix)}-\d+", t)]
        n = max(numbers, default=-1) + 1
        while True:
            candidate = f"{prefix}-{n:06d}"
            if candidate not in taken:
                return candidate
            n += 1

    # writing ---------------------------------------------------------------------------------------------------
    def open_writer(self, meta: EpisodeMeta) -> EpisodeWriter:
        if not meta.episode_id or "/" in meta.episode_id or meta.episode_id.startswith("."):
            raise EpisodeLogError(f"invalid episode id {meta.episode_id!r}")
        if meta.episode_id in self.entries():
            raise EpisodeLogError(f"{self.root}: episode {meta.episode_id!r} exists already, not overwriting")
        self._append(
            IndexEntry(
                episode_id=meta.episode_id, status=STATUS_RECORDING, robot=meta.robot, task=meta.task, pid=os.getpid()
            )
        )
        try:
            return EpisodeWriter(self, meta)
        except WriterError as e:
            raise EpisodeLogError(f"{self.root / meta.episode_id}: {e}") from None

    def write_episode(self, episode: EpisodeData) -> Path:
        """Write a whole in-memory episode as one bag (frames and commands interleaved by time)."""
        w = self.open_writer(episode.meta)
        events = [(f.stamp_ns, 0, f) for f in episode.frames] + [(e.stamp_ns, 1, e) for e in episode.executed]
        for _, kind, item in sorted(events, key=lambda x: (x[0], x[1])):
            w.write_frame(item) if kind == 0 else w.write_executed(item)
        return w.close(episode.label)

    # crash recovery --------------------------------------------------------------------------------------------
    def recover(self, reasons: dict[str, str] | None = None) -> list[IndexEntry]:
        """Find bags whose writer died, salvage what is readable, mark them incomplete. Returns what it marked.
        `reasons`: why the writer stopped, by episode id, when it is known (e.g. the disk filled up), put before
        what the salvage found."""
        marked = []
        for eid, entry in self.entries().items():
            if entry.status != STATUS_RECORDING or _pid_alive(entry.pid) and entry.pid != os.getpid():
                continue
            bag = self.root / eid
            if (bag / "metadata.yaml").exists():
                continue  # closed, but the index line was lost: complete it below
            salvaged, reason = self._salvage(bag)
            if reasons and eid in reasons:
                reason = f"{reasons[eid]} ({reason})"
            marked_entry = IndexEntry(
                episode_id=eid,
                status=STATUS_INCOMPLETE,
                robot=entry.robot,
                task=entry.task,
                frames=salvaged.get(BAG_TOPIC_OBSERVATION, 0),
                steps=salvaged.get(BAG_TOPIC_EXECUTED, 0),
                reason=reason,
            )
            self._append(marked_entry)
            marked.append(marked_entry)
        return marked

    def _salvage(self, bag: Path) -> tuple[dict[str, int], str]:
        mcap_files = sorted(bag.glob("*.mcap")) if bag.is_dir() else []
        if not mcap_files:
            return {}, "writer died before any data reached the disk"
        dest = bag.with_name(bag.name + ".recovered")
        counts: dict[str, int] = {}
        schemas: dict[int, Schema] = {}
        channels: dict[int, Channel] = {}
        messages: list[tuple[Channel, Message]] = []
        error = ""
        with open(mcap_files[0], "rb") as f:
            try:
                for record in StreamReader(f).records:
                    if isinstance(record, Schema):
                        schemas[record.id] = record
                    elif isinstance(record, Channel):
                        channels[record.id] = record
                    elif isinstance(record, Message) and record.channel_id in channels:
                        messages.append((channels[record.channel_id], record))
            except (McapError, EOFError, ValueError, OSError) as e:
                error = f"truncated after {len(messages)} messages ({type(e).__name__})"
        if dest.exists():
            return counts, f"writer died; salvage exists already at {dest.name}"
        store = typestore()
        with Writer(dest, version=9, storage_plugin=StoragePlugin.MCAP) as w:
            conns = {}
            for ch, msg in messages:
                if ch.topic not in conns:
                    conns[ch.topic] = w.add_connection(ch.topic, schemas[ch.schema_id].name, typestore=store)
                w.write(conns[ch.topic], msg.log_time, msg.data)
                counts[ch.topic] = counts.get(ch.topic, 0) + 1
        return (
            counts,
            f"writer died mid-episode; {error or 'footer missing'}; salvaged {sum(counts.values())} messages to {dest.name}",
        )

    # reading ---------------------------------------------------------------------------------------------------
    def path_of(self, episode_id: str) -> Path:
        return self.root / episode_id

    def read(self, episode_id: str, allow_incomplete: bool = False) -> EpisodeData:
        entry = self.entries().get(episode_id)
        if entry is None:
            raise EpisodeLogError(f"{self.index_path}: no episode {episode_id!r}")
        if entry.status == STATUS_INCOMPLETE:
            if not allow_incomplete:
                raise EpisodeLogError(f"{self.root / episode_id}: episode is incomplete ({entry.reason})")
            recovered = self.root / (episode_id + ".recovered")  # a killed writer's salvage; else a bag cut short
            return read_episode_bag(recovered if recovered.exists() else self.root / episode_id)
        if entry.status == STATUS_RECORDING:
            raise EpisodeLogError(
                f"{self.root / episode_id}: episode is still being recorded (or its writer died; run recover())"
            )
        return read_episode_bag(self.root / episode_id)

    def iter_episodes(self) -> Iterator[EpisodeData]:
        for eid in self.trainable_ids():
            yield self.read(eid)


def _decoder(conn, bag: Path):
    store = typestore()
    if conn.msgtype not in store.types:
        msgdef = getattr(conn, "msgdef", None)
        text = getattr(msgdef, "data", "") if msgdef is not None else ""
        if not text:
            raise EpisodeLogError(
                f"{bag}: topic {conn.topic} has unknown type {conn.msgtype} and no definition in the bag"
            )
        try:
            store.register(get_types_from_msg(text, conn.msgtype))
        except Exception as e:  # rosbags raises several parser errors; any of them means the same to the user
            raise EpisodeLogError(
                f"{bag}: topic {conn.topic} has unknown type {conn.msgtype} whose definition does not parse: {e}"
            ) from None
    return lambda raw: store.deserialize_cdr(raw, conn.msgtype)


def assign_frame_steps(frames: list[Frame], executed: list[Executed]) -> None:
    """A frame belongs to the first command executed at or after its capture time: that command and the
    H - 1 after it are its training label (what was done after seeing it, not what was predicted)."""
    stamps = np.array([e.stamp_ns for e in executed], dtype=np.int64)
    steps = np.array([e.step for e in executed], dtype=np.int64)
    for f in frames:
        i = int(np.searchsorted(stamps, f.stamp_ns, side="left"))
        f.step = int(steps[i]) if i < len(steps) else (int(steps[-1]) + 1 if len(steps) else 0)


def read_episode_bag(path: str | Path) -> EpisodeData:
    """Read one episode bag into the numpy schema. Errors name the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise EpisodeLogError(f"{path}: no such bag")
    if not (path / "metadata.yaml").exists():
        raise EpisodeLogError(f"{path}: not a finished rosbag2 bag (metadata.yaml missing: writer died or not a bag)")
    meta: EpisodeMeta | None = None
    frames: list[Frame] = []
    executed: list[Executed] = []
    label: Label | None = None
    try:
        with Reader(path) as reader:
            decoders = {c.id: _decoder(c, path) for c in reader.connections}
            for conn, _ts_ns, raw in reader.messages():
                msg = decoders[conn.id](raw)
                if conn.topic == BAG_TOPIC_META:
                    meta = _meta_from_json(msg.data)
                elif conn.topic == BAG_TOPIC_EXECUTED:
                    executed.append(executed_from_msg(msg))
                elif conn.topic == BAG_TOPIC_OBSERVATION:
                    frames.append(frame_from_observation(msg))
                elif conn.topic == BAG_TOPIC_LABEL:
                    label = label_from_msg(msg)
    except EpisodeLogError:
        raise
    except BadInputError as e:
        raise EpisodeLogError(f"{path}: bad message in bag: {e}") from None
    except (ReaderError, Exception) as e:
        # A corrupted file can make the third-party reader fail in many ways (bad lengths -> MemoryError,
        # struct/unicode/yaml errors): all of them mean the same thing to the user.
        raise EpisodeLogError(f"{path}: corrupt or truncated bag ({type(e).__name__}: {str(e)[:200]})") from None
    if meta is None:
        raise EpisodeLogError(f"{path}: not a hiors episode bag (no {BAG_TOPIC_META} message)")
    executed.sort(key=lambda e: e.step)
    assign_frame_steps(frames, executed)
    return EpisodeData(meta=meta, frames=frames, executed=executed, label=label)
