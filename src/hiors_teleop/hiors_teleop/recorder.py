"""The recorder: one rosbag2 (MCAP) bag per episode through hiors_core.episode_log, the episode's label, and the
hand-over of finished episodes (hiors_msgs/Episode) to the learner side until they are acknowledged.

Callbacks only move data: every bag operation runs in one worker thread fed by a queue, in arrival order.
Episode life: start (service, Joy button 1, keyboard) -> recording -> end (service; Joy 2/3 = success/failure
label and end; an EpisodeLabel for the current episode ends it too when end_on_label) -> once labelled: bag
closed, Episode published, kept on disk -> acked in the index when its EpisodeVerdict arrives. Unacknowledged
labelled episodes are re-sent every resend_period_s and at start-up.
Samples: whenever an ExecutedCommand with is_sample arrives during an episode, the newest Observation captured
at or before that command (of the last 16 received; else the latest) is recorded as that step's frame. Its stamp is kept when it lies between the previous and this command, otherwise
it is set to this command's stamp, so reading the bag back assigns the frame to exactly the sampled step. For that
the recorded command stamps strictly increase: a command stamped at or before the previous one (two sent at one
clock reading) is recorded 1 ns after it.
End of the run: an episode still recording or waiting for its label when the recorder shuts down is closed as
incomplete with the reason (as is one left unlabelled when the next starts): never handed over, trained on or
exported. Labels made here (buttons, services, keys) are stamped with the node's clock, sim time in the twin.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections import deque
from dataclasses import replace

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import String

from hiors_core import topics
from hiors_core.convert import executed_from_msg, frame_from_observation, label_from_msg, stamp_to_ns
from hiors_core.episode_log import STATUS_COMPLETE, EpisodeLog
from hiors_core.episode_msg import episode_to_msg
from hiors_core.errors import HiorsError
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.robots import get_robot
from hiors_core.schema import EpisodeMeta, Label
from hiors_core.tasks import task_or_default
from hiors_msgs.msg import Episode, EpisodeLabel, EpisodeVerdict, ExecutedCommand, Observation
from hiors_msgs.srv import EndEpisode, LabelEpisode, StartEpisode

from .params import RECORDER
from .safety import layout_for

IDLE, RECORDING, AWAITING_LABEL = "idle", "recording", "awaiting_label"


def cut_short_reason(state: str, steps: int, why: str = "the run ended") -> str:
    """Why an open episode is closed without a label ("" when none is open): what the index records."""
    if state == RECORDING:
        return f"{why} while it was being recorded ({steps} steps, no label)"
    if state == AWAITING_LABEL:
        return f"{why} before its label came ({steps} steps)"
    return ""


def _complete_meta(meta: EpisodeMeta, frame) -> EpisodeMeta:
    """The episode's meta with what only its first frame could tell: state names, cameras, the instruction."""
    return replace(
        meta,
        instruction=meta.instruction or frame.instruction,
        state_names=tuple(frame.state_names),
        camera_names=tuple(frame.images) or meta.camera_names,
    )


class Recorder(Node):
    def __init__(self, **kwargs):
        super().__init__("recorder", **kwargs)
        p = declare(self, RECORDER)  # types and ranges: hiors_teleop.params
        self.robot = get_robot(p["robot"])
        self.task = p["task"]
        self.instruction = p["instruction"]
        self.log = EpisodeLog(p["log_dir"])
        self.horizon = p["horizon"]
        self.resend_period = p["resend_period_s"]
        self.end_on_label = p["end_on_label"]
        task = task_or_default(self.robot.name, self.task)  # its control mode and arm (hiors_core.tasks)
        self.default_layout = layout_for(
            self.robot, p["control_mode"] or task.control_mode, p["arm"] or task.commanded_arm or "left"
        )

        self.lock = threading.Lock()
        self.state = IDLE
        self.episode_id = ""
        self.step = 0
        self.prev_exec_ns = -1
        self.pending_label: Label | None = None
        self.latest_obs: Observation | None = None
        self.recent_obs: deque = deque(maxlen=16)
        self.last_exec: ExecutedCommand | None = None
        self.issued: set[str] = set()
        self.missing_obs = 0
        self._joy_prev: list[int] = []
        self.last_sent: dict[str, float] = {}
        self.published: list[str] = []  # ids published (for tests and diagnostics)
        self.refused = {"labels": 0, "frames": 0}  # labels not taken (non-finite reward, no such episode), bad frames
        self.jobs_done = 0  # jobs the writer finished (jobs queued - jobs_done = its backlog)
        # Commands of a recorded episode that never arrived (gaps in the arbiter's step counter): the stream is
        # reliable but keep-last, and the arbiter never blocks on a slow recorder, so under overload some are lost.
        self.dropped_commands = 0
        self._prev_step = -1  # the arbiter's step of the last recorded command

        self.jobs: queue.Queue = queue.Queue()
        self.worker = threading.Thread(target=self._work, name="recorder-writer", daemon=True)
        self.pub_episode = self.create_publisher(Episode, topics.EPISODE, topics.qos(topics.EPISODE))
        # Latched: who labels episodes (the reward oracle, a UI) learns when one starts and stops recording.
        self.pub_status = self.create_publisher(String, topics.EPISODE_STATUS, topics.qos(topics.EPISODE_STATUS))
        self.pub_status.publish(String(data=""))
        group = MutuallyExclusiveCallbackGroup()
        sub = self.create_subscription
        sub(
            Observation,
            topics.OBSERVATION,
            self.on_observation,
            topics.qos(topics.OBSERVATION, "recorder"),
            callback_group=group,
        )
        sub(
            ExecutedCommand,
            topics.EXECUTED,
            self.on_executed,
            topics.qos(topics.EXECUTED, "recorder"),
            callback_group=group,
        )
        sub(Joy, topics.TELEOP_JOY, self.on_joy, topics.qos(topics.TELEOP_JOY), callback_group=group)
        sub(
            EpisodeLabel,
            topics.EPISODE_LABEL,
            self.on_label,
            topics.qos(topics.EPISODE_LABEL, "recorder"),
            callback_group=group,
        )
        sub(
            EpisodeVerdict,
            topics.EPISODE_VERDICT,
            self.on_verdict,
            topics.qos(topics.EPISODE_VERDICT, "recorder"),
            callback_group=group,
        )
        self.create_service(StartEpisode, topics.START_EPISODE, self.srv_start, callback_group=group)
        self.create_service(EndEpisode, topics.END_EPISODE, self.srv_end, callback_group=group)
        self.create_service(LabelEpisode, topics.LABEL_EPISODE, self.srv_label, callback_group=group)
        if self.resend_period > 0:
            self.create_timer(self.resend_period, lambda: self.jobs.put(("resend",)), callback_group=group)
        self.worker.start()
        self.jobs.put(("recover",))
        if p["keyboard"]:
            threading.Thread(target=self._keyboard, name="recorder-keyboard", daemon=True).start()
        self.get_logger().info(f"recorder: log {self.log.root}, horizon {self.horizon}")

    # episode control (callback thread, under the lock; returns at once) -------------------------------------------
    def start(self, task: str = "", instruction: str = "") -> tuple[bool, str, str]:
        with self.lock:
            if self.state == RECORDING:
                return False, self.episode_id, f"already recording {self.episode_id}"
            if self.state == AWAITING_LABEL:  # never labelled: kept on disk, not handed over
                self.jobs.put(("cut", cut_short_reason(self.state, self.step, "the next episode started")))
            eid = self.log.new_episode_id()
            while eid in self.issued:
                eid = f"{eid}-{len(self.issued)}"
            self.issued.add(eid)
            ex, obs = self.last_exec, self.latest_obs
            meta = EpisodeMeta(
                episode_id=eid,
                robot=self.robot.name,
                task=task or self.task,
                instruction=instruction or self.instruction or (obs.instruction if obs else ""),
                control_mode=int(ex.control_mode) if ex else self.default_layout.mode,
                action_names=tuple(ex.action_names) if ex else self.default_layout.names,
                state_names=tuple(obs.state_names) if obs else (),
                camera_names=tuple(obs.camera_names) if obs else self.robot.cameras,
                control_rate_hz=self.robot.control_rate_hz,
            )
            self.jobs.put(("open", meta))
            self.state, self.episode_id, self.step, self.prev_exec_ns = RECORDING, eid, 0, -1
            self.pending_label = None
        self.pub_status.publish(String(data=eid))
        self.get_logger().info(f"episode {eid} started")
        return True, eid, "recording"

    def end(self, label: Label | None = None, episode_id: str = "") -> tuple[bool, str, str]:
        if label is not None and not math.isfinite(label.reward):
            self.refused["labels"] += 1
            return False, episode_id, f"refused label: reward {label.reward} is not a finite number"
        with self.lock:
            if self.state == IDLE or (episode_id and episode_id != self.episode_id):
                return False, episode_id, f"no episode {episode_id or '(current)'} to end"
            eid = self.episode_id
            label = label or self.pending_label
            if label is None:
                self.state = AWAITING_LABEL
                self.pub_status.publish(String(data=""))
                return True, eid, "ended; waiting for a label"
            self.jobs.put(("close", label))
            self.state, self.episode_id, self.pending_label = IDLE, "", None
        self.pub_status.publish(String(data=""))
        self.get_logger().info(f"episode {eid} ended: reward {label.reward} ({label.source})")
        return True, eid, "ended and labelled"

    def label(self, label: Label, episode_id: str = "") -> tuple[bool, str]:
        if not math.isfinite(label.reward):
            self.refused["labels"] += 1
            return False, f"refused label: reward {label.reward} is not a finite number"
        with self.lock:
            if self.state == IDLE or (episode_id and episode_id != self.episode_id):
                self.refused["labels"] += 1
                return False, f"episode {episode_id or '(current)'} is not open for labelling"
            state = self.state
            if state == RECORDING and not self.end_on_label:
                self.pending_label = label
                return True, "label kept until the episode ends"
        ok, _, msg = self.end(label)
        return ok, msg

    # callbacks ------------------------------------------------------------------------------------------------------
    def on_observation(self, msg: Observation) -> None:
        self.latest_obs = msg
        self.recent_obs.append((stamp_to_ns(msg.header.stamp), msg))

    def _obs_for(self, exec_ns: int) -> Observation | None:
        """The newest observation captured at or before the command's time (the latest one if none is)."""
        for obs_ns, obs in reversed(self.recent_obs):
            if obs_ns <= exec_ns:
                return obs
        return self.latest_obs

    def on_executed(self, msg: ExecutedCommand) -> None:
        with self.lock:
            self.last_exec = msg
            if self.state != RECORDING:
                return
            step = int(msg.step)
            if self.step > 0 and step > self._prev_step + 1:  # (a smaller step: the arbiter restarted)
                self.dropped_commands += step - self._prev_step - 1
                self.get_logger().warn(
                    f"{self.dropped_commands} executed commands lost so far (arbiter steps missing)",
                    throttle_duration_sec=5.0,
                )
            self._prev_step = step
            e = executed_from_msg(msg)
            e.step = self.step
            if e.stamp_ns <= self.prev_exec_ns:
                # Two commands at one clock reading (a control timer catching up on simulated time): keep the
                # stamps strictly increasing, or reading the bag back would give this step's frame to the one before.
                e.stamp_ns = self.prev_exec_ns + 1
            if e.is_sample:
                obs = self._obs_for(e.stamp_ns)
                if obs is None:
                    self.missing_obs += 1
                else:
                    obs_ns = stamp_to_ns(obs.header.stamp)
                    frame_ns = obs_ns if self.prev_exec_ns < obs_ns <= e.stamp_ns else e.stamp_ns
                    self.jobs.put(("frame", obs, self.step, frame_ns))
            self.jobs.put(("exec", e))
            self.step += 1
            self.prev_exec_ns = e.stamp_ns

    def on_joy(self, msg: Joy) -> None:
        b = list(msg.buttons)
        prev, self._joy_prev = self._joy_prev, b

        def rising(i):
            return len(b) > i and b[i] and not (len(prev) > i and prev[i])

        if rising(1):
            self.start()
        if rising(2):
            self.label(Label(reward=1.0, success=True, source="human", stamp_ns=self._now_ns()))
        if rising(3):
            self.label(Label(reward=0.0, success=False, source="human", stamp_ns=self._now_ns()))

    def _now_ns(self) -> int:
        """The node's clock (sim time under use_sim_time): the time base of the commands and frames it records."""
        return self.get_clock().now().nanoseconds

    def on_label(self, msg: EpisodeLabel) -> None:
        ok, why = self.label(label_from_msg(msg), msg.episode_id)
        if not ok:
            self.get_logger().warn(f"label from {msg.source} ignored: {why}")

    def on_verdict(self, msg: EpisodeVerdict) -> None:
        self.jobs.put(("ack", msg.episode_id))

    def srv_start(self, req, resp):
        resp.success, resp.episode_id, resp.message = self.start(req.task, req.instruction)
        return resp

    def srv_end(self, req, resp):
        label = None
        if req.has_label:
            label = Label(float(req.reward), bool(req.success), req.label_source or "human", self._now_ns())
        resp.success, resp.episode_id, resp.message = self.end(label, req.episode_id)
        return resp

    def srv_label(self, req, resp):
        label = Label(float(req.reward), bool(req.success), req.source or "human", self._now_ns())
        resp.success, resp.message = self.label(label, req.episode_id)
        return resp

    def _keyboard(self) -> None:
        keys = {"s": "start", "y": "success", "n": "failure", "e": "end"}
        print("recorder keys: s=start, y=success, n=failure, e=end (then Enter)", file=sys.stderr)
        for line in sys.stdin:
            k = keys.get(line.strip().lower()[:1])
            if k == "start":
                self.start()
            elif k in ("success", "failure"):
                self.label(Label(float(k == "success"), k == "success", "human", self._now_ns()))
            elif k == "end":
                self.end()

    # the worker: all disk I/O ---------------------------------------------------------------------------------------
    def _work(self) -> None:
        writer = None
        # An episode started before any observation came in has no state names or instruction yet: its bag is
        # opened at its first frame, with the meta completed from that frame (commands before it wait in `held`).
        pending, held = None, []

        def open_pending(frame=None):
            nonlocal writer, pending, held
            meta = pending if frame is None else _complete_meta(pending, frame)
            writer, pending = self.log.open_writer(meta), None
            for e in held:
                writer.write_executed(e)
            held = []

        while True:
            job = self.jobs.get()
            kind = job[0]
            try:
                if kind in ("open", "close", "cut", "stop") and pending is not None:
                    open_pending()  # (no frame ever came: the meta stays as it was)
                if kind in ("cut", "stop") and writer is not None:
                    eid, reason = writer.meta.episode_id, job[1] or "the run ended before it was closed"
                    writer, cut = None, writer
                    cut.close_cut_short(reason)
                    self.get_logger().warn(f"episode {eid} marked incomplete: {reason}")
                if kind == "open":
                    if writer is not None:  # (start() cuts an open one first; this is a safety net)
                        writer.close_cut_short("the next episode started before it was closed")
                        writer = None
                    if job[1].state_names:
                        writer = self.log.open_writer(job[1])
                    else:
                        pending = job[1]
                elif kind == "frame" and (writer is not None or pending is not None):
                    _, obs, step, frame_ns = job
                    frame = frame_from_observation(obs, step=step)
                    frame.stamp_ns = frame_ns
                    if pending is not None:
                        open_pending(frame)
                    writer.write_frame(frame)
                elif kind == "exec" and pending is not None:
                    held.append(job[1])
                elif kind == "exec" and writer is not None:
                    writer.write_executed(job[1])
                elif kind == "close" and writer is not None:
                    eid = writer.meta.episode_id
                    writer.close(job[1])
                    writer = None
                    if job[1] is not None:
                        self._publish(eid)
                elif kind == "ack":
                    if job[1] in self.log.entries():
                        self.log.mark_acked(job[1])
                        self.last_sent.pop(job[1], None)
                elif kind == "recover":
                    for e in self.log.recover():
                        self.get_logger().warn(f"episode {e.episode_id} was cut off: {e.reason}")
                    self._resend(force=True)
                elif kind == "resend":
                    self._resend()
            except (HiorsError, OSError, ValueError) as e:
                if kind == "frame":
                    self.refused["frames"] += 1
                self.get_logger().error(f"recorder {kind}: {e}")
            finally:
                self.jobs_done += 1
            if kind == "stop":
                return

    def _publish(self, eid: str) -> None:
        episode = self.log.read(eid)
        self.pub_episode.publish(episode_to_msg(episode, self.horizon, bag_uri=str(self.log.path_of(eid).resolve())))
        self.last_sent[eid] = time.monotonic()
        self.published.append(eid)
        self.get_logger().info(
            f"episode {eid} handed over: {len(episode.frames)} samples, {int(episode.human_mask.sum())} human steps"
        )

    def _resend(self, force: bool = False) -> None:
        now = time.monotonic()
        for eid, entry in self.log.entries().items():
            if entry.status != STATUS_COMPLETE or entry.reward is None:
                continue
            if force or now - self.last_sent.get(eid, 0.0) >= self.resend_period:
                self._publish(eid)

    def shutdown(self) -> None:
        """Close an episode the end of the run cut short as incomplete, then stop the writer."""
        with self.lock:
            reason = cut_short_reason(self.state, self.step)
            self.state, self.episode_id = IDLE, ""
        self.jobs.put(("stop", reason))
        self.worker.join(timeout=10.0)


def main(args=None):
    # One thread: every callback is in one mutually exclusive group (bag I/O has its own worker thread), so more
    # executor threads could only wait for it.
    return run_node(Recorder, args, threads=1)


if __name__ == "__main__":
    main()
