"""The recorder's decisions as pure code (no rclpy): the episode state machine its callbacks drive
(`EpisodeMachine`) and the disk side its writer thread feeds one job at a time (`EpisodeSink`). The node
(`recorder.py`) only turns messages into calls, queues the jobs, publishes and logs what comes back.

Episode life: IDLE -start-> RECORDING -end without a label-> AWAITING_LABEL -label-> IDLE; an end with a label (or
a label while recording, with end_on_label) goes straight to IDLE. An episode still open when the next starts or
the run ends is closed as incomplete with the reason (`cut_short_reason`): never handed over, trained on or
exported.

Samples: a command with is_sample records, as that step's frame, the newest observation captured at or before it (of
the last 16 received; else the latest). The frame keeps its own stamp when it lies between the previous command and
this one, otherwise it takes this command's stamp, so reading the bag back assigns it to exactly the sampled step.
For that the recorded command stamps strictly increase: a command stamped at or before the previous one (two sent
at one clock reading) is recorded 1 ns after it.

A full or unwritable disk: no episode starts while the log's filesystem has less than `min_free_bytes` free or its
folder is not writable (`space_problem`). While one is recorded the free space is checked every second; below the
minimum, or at the first write that fails, the episode is stopped and closed as incomplete with that reason, in one
log line (`Event("stopped")`), and nothing more is written for it. A bag that cannot even be closed then (the disk is
full) is marked incomplete by `EpisodeLog.recover()`, with that reason, before the next episode opens.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from hiors_core.convert import frame_from_observation
from hiors_core.episode_log import STATUS_COMPLETE, EpisodeLog
from hiors_core.errors import HiorsError
from hiors_core.schema import EpisodeData, EpisodeMeta, Executed, Label

IDLE, RECORDING, AWAITING_LABEL = "idle", "recording", "awaiting_label"

RECENT_OBSERVATIONS = 16  # observations kept to find the one a sampled command saw
SPACE_CHECK_PERIOD_S = 1.0  # free space is checked this often while an episode is written
MIB = 2**20

# The state of the episode log, for diagnostics: episodes are written, starts are refused (too little free space,
# the folder not writable), or the last episode was stopped by a failed write.
LOG_OK, LOG_REFUSING, LOG_FAILED = "ok", "refusing", "failed"


def log_space(root) -> tuple[int | None, bool, str]:
    """(free bytes, writable, why the free space is unknown) of the episode log's folder."""
    try:
        free, why = shutil.disk_usage(root).free, ""
    except OSError as e:
        free, why = None, str(e)
    return free, os.access(root, os.W_OK), why


def space_problem(root, min_free_bytes: int, space: tuple[int | None, bool, str]) -> str:
    """Why the episode log cannot take an episode now ("" when it can), from `log_space(root)`."""
    free, writable, why = space
    if free is None:
        return f"cannot read the free space under {root} ({why})"
    if not writable:
        return f"{root} is not writable"
    if free < min_free_bytes:
        return f"only {free / MIB:.1f} MiB free under {root} (min_free_bytes {min_free_bytes / MIB:.1f} MiB)"
    return ""


def cut_short_reason(state: str, steps: int, why: str = "the run ended") -> str:
    """Why an open episode is closed without a label ("" when none is open): what the index records."""
    if state == RECORDING:
        return f"{why} while it was being recorded ({steps} steps, no label)"
    if state == AWAITING_LABEL:
        return f"{why} before its label came ({steps} steps)"
    return ""


def complete_meta(meta: EpisodeMeta, frame) -> EpisodeMeta:
    """The episode's meta with what only its first frame could tell: state names, cameras, the instruction."""
    return replace(
        meta,
        instruction=meta.instruction or frame.instruction,
        state_names=tuple(frame.state_names),
        camera_names=tuple(frame.images) or meta.camera_names,
    )


# --- jobs: what the callbacks ask of the disk, in arrival order -------------------------------------------------------


@dataclass(frozen=True)
class Open:
    meta: EpisodeMeta


@dataclass(frozen=True)
class RecordFrame:
    observation: Any  # an Observation message (converted on the writer thread: images are big)
    step: int
    stamp_ns: int


@dataclass(frozen=True)
class RecordExecuted:
    executed: Executed


@dataclass(frozen=True)
class Close:
    label: Label | None


@dataclass(frozen=True)
class Cut:
    """Close the open episode as incomplete, with the reason."""

    reason: str


@dataclass(frozen=True)
class Stop:
    """The end of the run: close what is open as incomplete (with the reason), then the writer stops."""

    reason: str


@dataclass(frozen=True)
class Ack:
    episode_id: str


@dataclass(frozen=True)
class Recover:
    """Mark episodes whose writer died incomplete, then hand over every unacknowledged labelled one."""


@dataclass(frozen=True)
class Resend:
    """Hand over again the labelled episodes not acknowledged for resend_period_s."""


# --- the callbacks' side ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a request to start, end or label came to: the reply, the jobs to queue in order, and the new value of
    the episode status (the id being recorded, "" for none; None when it did not change)."""

    ok: bool
    episode_id: str
    message: str
    jobs: tuple = ()
    status: str | None = None


def rising_buttons(prev: list[int], buttons: list[int]) -> list[int]:
    """Indices of the Joy buttons pressed now and not in the previous message."""
    return [i for i, b in enumerate(buttons) if b and not (i < len(prev) and prev[i])]


class EpisodeMachine:
    """IDLE / RECORDING / AWAITING_LABEL, the step count and stamps of the episode being recorded, and the sample
    frames. Not thread-safe: the node calls it under one lock. Every method returns at once; disk work comes back
    as jobs for the writer."""

    def __init__(self, end_on_label: bool = True):
        self.end_on_label = bool(end_on_label)
        self.state = IDLE
        self.episode_id = ""
        self.step = 0  # commands recorded in this episode
        self.prev_exec_ns = -1  # stamp of the last recorded command
        self.pending_label: Label | None = None  # a label that came while recording, without end_on_label
        self.recent_obs: deque = deque(maxlen=RECENT_OBSERVATIONS)  # (stamp_ns, observation)
        self.issued: set[str] = set()
        self.refused_labels = 0  # labels not taken: non-finite reward, no such episode open
        self.missing_obs = 0  # samples with no observation received yet
        # Commands of a recorded episode that never arrived (gaps in the arbiter's step counter): the stream is
        # reliable but keep-last, and the arbiter never blocks on a slow recorder, so under overload some are lost.
        self.dropped_commands = 0
        self._prev_arbiter_step = -1

    @property
    def latest_obs(self):
        return self.recent_obs[-1][1] if self.recent_obs else None

    def issue_id(self, candidate: str) -> str:
        """The id of a new episode: the log's next free one, or past every id issued in this run when the log has
        not recorded that one (its writer could not open it): never reused, never suffixed."""
        if candidate in self.issued:
            prefix, _, _ = candidate.rpartition("-")
            numbers = [int(i.rpartition("-")[2]) for i in self.issued if i.rpartition("-")[0] == prefix]
            candidate = f"{prefix}-{max(numbers) + 1:06d}"
        self.issued.add(candidate)
        return candidate

    def start(self, candidate_id: str, meta: EpisodeMeta, refuse: str = "") -> Outcome:
        """Start an episode (`meta` without its id). `refuse`: why the log cannot take one now ("" when it can)."""
        if self.state == RECORDING:
            return Outcome(False, self.episode_id, f"already recording {self.episode_id}")
        if refuse:
            return Outcome(False, "", f"not starting an episode: {refuse}")
        jobs = []
        if self.state == AWAITING_LABEL:  # never labelled: kept on disk, not handed over
            jobs.append(Cut(cut_short_reason(self.state, self.step, "the next episode started")))
        eid = self.issue_id(candidate_id)
        jobs.append(Open(replace(meta, episode_id=eid)))
        self.state, self.episode_id, self.step, self.prev_exec_ns = RECORDING, eid, 0, -1
        self.pending_label = None
        return Outcome(True, eid, "recording", tuple(jobs), status=eid)

    def end(self, label: Label | None = None, episode_id: str = "") -> Outcome:
        if label is not None and not math.isfinite(label.reward):
            self.refused_labels += 1
            return Outcome(False, episode_id, f"refused label: reward {label.reward} is not a finite number")
        if self.state == IDLE or (episode_id and episode_id != self.episode_id):
            return Outcome(False, episode_id, f"no episode {episode_id or '(current)'} to end")
        eid = self.episode_id
        label = label or self.pending_label
        if label is None:
            self.state = AWAITING_LABEL
            return Outcome(True, eid, "ended; waiting for a label", status="")
        self.state, self.episode_id, self.pending_label = IDLE, "", None
        return Outcome(True, eid, "ended and labelled", (Close(label),), status="")

    def label(self, label: Label, episode_id: str = "") -> Outcome:
        if not math.isfinite(label.reward):
            self.refused_labels += 1
            return Outcome(False, episode_id, f"refused label: reward {label.reward} is not a finite number")
        if self.state == IDLE or (episode_id and episode_id != self.episode_id):
            self.refused_labels += 1
            return Outcome(False, episode_id, f"episode {episode_id or '(current)'} is not open for labelling")
        if self.state == RECORDING and not self.end_on_label:
            self.pending_label = label
            return Outcome(True, self.episode_id, "label kept until the episode ends")
        return self.end(label)

    def stopped(self, episode_id: str) -> Outcome:
        """The writer stopped this episode (the log could not take it): if it is still the open one, nothing more is
        recorded for it and no label is taken for it."""
        if self.state == IDLE or episode_id != self.episode_id:
            return Outcome(False, episode_id, "not the open episode")
        self.state, self.episode_id, self.pending_label = IDLE, "", None
        return Outcome(True, episode_id, "stopped", status="")

    def observe(self, stamp_ns: int, observation) -> None:
        self.recent_obs.append((int(stamp_ns), observation))

    def obs_for(self, exec_ns: int) -> tuple[int, Any] | None:
        """(stamp, observation): the newest captured at or before the command's time (the latest if none is)."""
        for obs_ns, obs in reversed(self.recent_obs):
            if obs_ns <= exec_ns:
                return obs_ns, obs
        return self.recent_obs[-1] if self.recent_obs else None

    def executed(self, e: Executed) -> list:
        """A command the arbiter executed (`e.step`: the arbiter's step counter). While recording: the jobs that
        record it (and its frame when it is a sample), with its step renumbered within the episode."""
        if self.state != RECORDING:
            return []
        arbiter_step = int(e.step)
        if self.step > 0 and arbiter_step > self._prev_arbiter_step + 1:  # (a smaller step: the arbiter restarted)
            self.dropped_commands += arbiter_step - self._prev_arbiter_step - 1
        self._prev_arbiter_step = arbiter_step
        e = replace(e, step=self.step)
        if e.stamp_ns <= self.prev_exec_ns:
            # Two commands at one clock reading (a control timer catching up on simulated time): keep the stamps
            # strictly increasing, or reading the bag back would give this step's frame to the one before.
            e = replace(e, stamp_ns=self.prev_exec_ns + 1)
        jobs: list = []
        if e.is_sample:
            seen = self.obs_for(e.stamp_ns)
            if seen is None:
                self.missing_obs += 1
            else:
                obs_ns, obs = seen
                frame_ns = obs_ns if self.prev_exec_ns < obs_ns <= e.stamp_ns else e.stamp_ns
                jobs.append(RecordFrame(obs, self.step, frame_ns))
        jobs.append(RecordExecuted(e))
        self.step += 1
        self.prev_exec_ns = e.stamp_ns
        return jobs

    def shutdown(self) -> Stop:
        """The end of the run: the job that closes what is still open."""
        reason = cut_short_reason(self.state, self.step)
        self.state, self.episode_id = IDLE, ""
        return Stop(reason)


# --- the disk side ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """What the writer did that the node must act on: `handover` (publish `episode`), `info`, `warn`, `error` (log
    `text`)."""

    kind: str
    text: str = ""
    episode_id: str = ""
    episode: EpisodeData | None = field(default=None, repr=False)


class EpisodeSink:
    """Runs the jobs on the episode log, in order, on one thread. An episode started before any observation came in
    has no state names or instruction yet: its bag is opened at its first frame, with the meta completed from that
    frame (commands before it are held until then). `space`: measures the log's folder (`log_space`; tests pass
    their own)."""

    def __init__(
        self,
        log: EpisodeLog,
        resend_period_s: float = 5.0,
        clock=time.monotonic,
        min_free_bytes: int = 0,
        space=log_space,
    ):
        self.log = log
        self.resend_period_s = float(resend_period_s)
        self.clock = clock
        self.min_free_bytes = int(min_free_bytes)
        self.space = space
        self.writer = None
        self.pending: EpisodeMeta | None = None
        self.held: list[Executed] = []
        self.refused_frames = 0  # frames that could not be recorded (malformed observations)
        self.last_sent: dict[str, float] = {}
        self.stopped = 0  # episodes stopped (or not opened) because the log could not take them
        self.failure = ""  # why the last one was, until an episode opens again
        # Stopped bags that could not be closed, with why: recover() marks them before the next episode opens.
        self._unmarked: dict[str, str] = {}
        self._next_check = 0.0

    def problem(self) -> str:
        """Why the log cannot take an episode now ("" when it can)."""
        return space_problem(self.log.root, self.min_free_bytes, self.space(self.log.root))

    def handle(self, job) -> list[Event]:
        """Run one job; its failure is reported as an event, never raised. A failed write to the disk stops the
        episode it belongs to (one `stopped` event); other failures are `error` events."""
        try:
            return self._handle(job)
        except OSError as e:
            if isinstance(job, (Open, RecordFrame, RecordExecuted, Close, Cut, Stop)):
                return self._stop(f"writing it failed: {e}", job)
            return [Event("error", f"recorder {_job_name(job)}: {e}")]
        except (HiorsError, ValueError) as e:
            if isinstance(job, RecordFrame):
                self.refused_frames += 1
            return [Event("error", f"recorder {_job_name(job)}: {e}")]

    def _stop(self, why: str, job=None) -> list[Event]:
        """Stop the episode being written (or about to open) because the log cannot take it: close it as
        incomplete with the reason, once; every later job for it finds no writer and writes nothing."""
        writer, pending = self.writer, self.pending
        self.writer, self.pending, self.held = None, None, []
        meta = writer.meta if writer is not None else pending if pending is not None else getattr(job, "meta", None)
        eid = meta.episode_id if meta is not None else ""
        self.stopped += 1
        self.failure = why
        outcome = "not recorded"
        if writer is not None:
            try:
                writer.close_cut_short(f"stopped: {why}")
                outcome = "marked incomplete"
            except (OSError, HiorsError, ValueError) as e:
                self._unmarked[eid] = f"stopped: {why}"
                outcome = f"its bag could not be closed ({e}); marked incomplete before the next episode opens"
        elif eid in self.log.entries():  # opened in the index, its bag never made
            self._unmarked[eid] = f"stopped: {why}"
        return [Event("stopped", f"episode {eid} stopped: {why}; {outcome}", episode_id=eid)]

    def _check_space(self) -> list[Event]:
        """While an episode is written: stop it once free space falls below the minimum (checked every second)."""
        now = self.clock()
        if self.writer is None or now < self._next_check:
            return []
        self._next_check = now + SPACE_CHECK_PERIOD_S
        problem = self.problem()
        return self._stop(problem) if problem else []

    def _open_pending(self, frame=None) -> None:
        meta = self.pending if frame is None else complete_meta(self.pending, frame)
        self.writer, self.pending = self.log.open_writer(meta), None
        held, self.held = self.held, []
        for e in held:
            self.writer.write_executed(e)

    def _handle(self, job) -> list[Event]:
        events: list[Event] = []
        if isinstance(job, (Open, Close, Cut, Stop)) and self.pending is not None:
            self._open_pending()  # (no frame ever came: the meta stays as it was)
        if isinstance(job, (RecordFrame, RecordExecuted)):
            events += self._check_space()
        match job:
            case Cut(reason) | Stop(reason) if self.writer is not None:
                reason = reason or "the run ended before it was closed"
                self.writer.close_cut_short(reason)  # (a failure leaves it to _stop)
                writer, self.writer = self.writer, None
                events.append(Event("warn", f"episode {writer.meta.episode_id} marked incomplete: {reason}"))
            case Open(meta):
                if self.writer is not None:  # (start() cuts an open one first; this is a safety net)
                    writer, self.writer = self.writer, None
                    writer.close_cut_short("the next episode started before it was closed")
                problem = self.problem()
                if problem:
                    return events + self._stop(problem, job)
                if self._unmarked:
                    marked = self.log.recover(self._unmarked)
                    events += [Event("warn", f"episode {e.episode_id}: {e.reason}") for e in marked]
                    self._unmarked = {}
                if meta.state_names:
                    self.writer = self.log.open_writer(meta)
                else:
                    self.pending = meta
                self.failure = ""
                self._next_check = self.clock() + SPACE_CHECK_PERIOD_S
            case RecordFrame(obs, step, stamp_ns) if self.writer is not None or self.pending is not None:
                frame = frame_from_observation(obs, step=step)
                frame.stamp_ns = stamp_ns
                if self.pending is not None:
                    self._open_pending(frame)
                self.writer.write_frame(frame)
            case RecordExecuted(e) if self.pending is not None:
                self.held.append(e)
            case RecordExecuted(e) if self.writer is not None:
                self.writer.write_executed(e)
            case Close(label) if self.writer is not None:
                self.writer.close(label)
                writer, self.writer = self.writer, None
                if label is not None:
                    events.append(self._handover(writer.meta.episode_id))
            case Ack(eid):
                if eid in self.log.entries():
                    self.log.mark_acked(eid)
                    self.last_sent.pop(eid, None)
            case Recover():
                for e in self.log.recover(self._unmarked):
                    events.append(Event("warn", f"episode {e.episode_id} was cut off: {e.reason}"))
                events += self._resend(force=True)
            case Resend():
                events += self._resend()
        return events

    def _handover(self, eid: str) -> Event:
        episode = self.log.read(eid)
        self.last_sent[eid] = self.clock()
        return Event("handover", episode_id=eid, episode=episode)

    def _resend(self, force: bool = False) -> list[Event]:
        now = self.clock()
        events = []
        for eid, entry in self.log.entries().items():
            if entry.status != STATUS_COMPLETE or entry.reward is None:
                continue
            if force or now - self.last_sent.get(eid, 0.0) >= self.resend_period_s:
                events.append(self._handover(eid))
        return events


def _job_name(job) -> str:
    """A job's name in log lines: `frame`, `exec`, `open`, ..."""
    names = {RecordFrame: "frame", RecordExecuted: "exec"}
    return names.get(type(job), type(job).__name__.lower())
