"""The recorder: one rosbag2 (MCAP) bag per episode through hiors_core.episode_log, the episode's label, and the
hand-over of finished episodes (hiors_msgs/Episode) to the learner side until they are acknowledged.

The decisions are in `recording.py` (pure, tested without ROS): the episode state machine (`EpisodeMachine`) that
the callbacks drive under one lock, and the disk side (`EpisodeSink`) that one writer thread runs job by job, in
arrival order. This node turns messages into calls, queues the jobs, publishes and logs what comes back.
Episode control: start (service, Joy button 1, keyboard) -> recording -> end (service; Joy 2/3 = success/failure
label and end; an EpisodeLabel for the current episode ends it too when end_on_label) -> once labelled: bag
closed, Episode published, kept on disk -> acked in the index when its EpisodeVerdict arrives. Unacknowledged
labelled episodes are re-sent every resend_period_s and at start-up. Labels made here (buttons, services, keys) are
stamped with the node's clock, sim time in the twin.

The episode log's disk: no episode starts while its filesystem has less than min_free_bytes free or its folder is not
writable (the start is refused with the reason); one being recorded is stopped, closed as incomplete with the reason
and logged in one line when free space falls below that or a write fails. The state of the log is on /diagnostics
(1 Hz and at every change): status "<node>: episode log", level ERROR with `log_state` "refusing" (starts refused)
or "failed" (an episode was stopped), OK with "ok" once an episode opens again.
"""

from __future__ import annotations

import queue
import sys
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import String

from hiors_core import topics
from hiors_core.convert import executed_from_msg, label_from_msg, stamp_to_ns
from hiors_core.episode_log import EpisodeLog
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
from .recording import (
    LOG_FAILED,
    LOG_OK,
    LOG_REFUSING,
    Ack,
    EpisodeMachine,
    EpisodeSink,
    Event,
    Outcome,
    Recover,
    Resend,
    Stop,
    log_space,
    rising_buttons,
)
from .safety import layout_for


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
        task = task_or_default(self.robot.name, self.task)  # its control mode and arm (hiors_core.tasks)
        self.default_layout = layout_for(
            self.robot, p["control_mode"] or task.control_mode, p["arm"] or task.commanded_arm or "left"
        )

        self.lock = threading.Lock()
        self.core = EpisodeMachine(end_on_label=p["end_on_label"])  # under self.lock
        self.min_free_bytes = p["min_free_bytes"]
        self.sink = EpisodeSink(self.log, self.resend_period, min_free_bytes=self.min_free_bytes)  # writer thread
        self.refused_starts = 0  # starts refused because the log could not take an episode
        self.log_state, self.log_problem = LOG_OK, ""  # for diagnostics
        self.last_exec: ExecutedCommand | None = None
        self._joy_prev: list[int] = []
        self.published: list[str] = []  # ids published (for tests and diagnostics)
        self.jobs_done = 0  # jobs the writer finished (jobs queued - jobs_done = its backlog)

        self.jobs: queue.Queue = queue.Queue()
        self.worker = threading.Thread(target=self._work, name="recorder-writer", daemon=True)
        self.pub_episode = self.create_publisher(Episode, topics.EPISODE, topics.qos(topics.EPISODE))
        # Latched: who labels episodes (the reward oracle, a UI) learns when one starts and stops recording.
        self.pub_status = self.create_publisher(String, topics.EPISODE_STATUS, topics.qos(topics.EPISODE_STATUS))
        self.pub_status.publish(String(data=""))
        self.pub_diag = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, topics.qos(topics.DIAGNOSTICS))
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
            self.create_timer(self.resend_period, lambda: self.jobs.put(Resend()), callback_group=group)
        self.create_timer(1.0, self.publish_diagnostics, callback_group=group)
        self.worker.start()
        self.jobs.put(Recover())
        if p["keyboard"]:
            threading.Thread(target=self._keyboard, name="recorder-keyboard", daemon=True).start()
        self.get_logger().info(f"recorder: log {self.log.root}, horizon {self.horizon}")

    # views of the state machine (tests, diagnostics) ----------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.core.state

    @property
    def episode_id(self) -> str:
        return self.core.episode_id

    @property
    def step(self) -> int:
        return self.core.step

    @property
    def latest_obs(self) -> Observation | None:
        return self.core.latest_obs

    @property
    def dropped_commands(self) -> int:
        return self.core.dropped_commands

    @property
    def missing_obs(self) -> int:
        return self.core.missing_obs

    @property
    def refused(self) -> dict[str, int]:
        """Labels not taken (non-finite reward, no such episode open) and frames that could not be recorded."""
        return {"labels": self.core.refused_labels, "frames": self.sink.refused_frames}

    # episode control (callback thread, under the lock; returns at once) -------------------------------------------
    def _apply(self, out: Outcome) -> Outcome:
        """Queue an outcome's jobs (under the lock, so they keep the order of the decisions)."""
        for job in out.jobs:
            self.jobs.put(job)
        return out

    def _announce(self, out: Outcome) -> None:
        if out.status is not None:
            self.pub_status.publish(String(data=out.status))

    def _meta(self, task: str, instruction: str) -> EpisodeMeta:
        """A new episode's meta (its id comes from the state machine), from the last command and observation."""
        ex, obs = self.last_exec, self.latest_obs
        return EpisodeMeta(
            episode_id="",
            robot=self.robot.name,
            task=task or self.task,
            instruction=instruction or self.instruction or (obs.instruction if obs else ""),
            control_mode=int(ex.control_mode) if ex else self.default_layout.mode,
            action_names=tuple(ex.action_names) if ex else self.default_layout.names,
            state_names=tuple(obs.state_names) if obs else (),
            camera_names=tuple(obs.camera_names) if obs else self.robot.cameras,
            control_rate_hz=self.robot.control_rate_hz,
        )

    def start(self, task: str = "", instruction: str = "") -> tuple[bool, str, str]:
        problem = self.sink.problem()  # the log's disk: free space, writable
        with self.lock:
            out = self._apply(self.core.start(self.log.new_episode_id(), self._meta(task, instruction), problem))
        self._announce(out)
        if out.ok:
            self.get_logger().info(f"episode {out.episode_id} started")
            if self.log_state == LOG_REFUSING:
                self._log_state(LOG_OK, "")
        elif problem and not out.episode_id:  # (refused for the log, not because one is being recorded)
            self.refused_starts += 1
            self._log_state(LOG_REFUSING, problem)
            self.get_logger().error(out.message)
        return out.ok, out.episode_id, out.message

    def end(self, label: Label | None = None, episode_id: str = "") -> tuple[bool, str, str]:
        with self.lock:
            out = self._apply(self.core.end(label, episode_id))
        self._announce(out)
        if out.jobs:
            label = out.jobs[0].label
            self.get_logger().info(f"episode {out.episode_id} ended: reward {label.reward} ({label.source})")
        return out.ok, out.episode_id, out.message

    def label(self, label: Label, episode_id: str = "") -> tuple[bool, str]:
        with self.lock:
            out = self._apply(self.core.label(label, episode_id))
        self._announce(out)
        if out.jobs:
            self.get_logger().info(f"episode {out.episode_id} ended: reward {label.reward} ({label.source})")
        return out.ok, out.message

    # callbacks ------------------------------------------------------------------------------------------------------
    def on_observation(self, msg: Observation) -> None:
        with self.lock:
            self.core.observe(stamp_to_ns(msg.header.stamp), msg)

    def on_executed(self, msg: ExecutedCommand) -> None:
        with self.lock:
            self.last_exec = msg
            dropped = self.core.dropped_commands
            for job in self.core.executed(executed_from_msg(msg)):
                self.jobs.put(job)
            if self.core.dropped_commands > dropped:
                self.get_logger().warn(
                    f"{self.core.dropped_commands} executed commands lost so far (arbiter steps missing)",
                    throttle_duration_sec=5.0,
                )

    def on_joy(self, msg: Joy) -> None:
        pressed = rising_buttons(self._joy_prev, list(msg.buttons))
        self._joy_prev = list(msg.buttons)
        if 1 in pressed:
            self.start()
        if 2 in pressed:
            self.label(Label(reward=1.0, success=True, source="human", stamp_ns=self._now_ns()))
        if 3 in pressed:
            self.label(Label(reward=0.0, success=False, source="human", stamp_ns=self._now_ns()))

    def _now_ns(self) -> int:
        """The node's clock (sim time under use_sim_time): the time base of the commands and frames it records."""
        return self.get_clock().now().nanoseconds

    def on_label(self, msg: EpisodeLabel) -> None:
        ok, why = self.label(label_from_msg(msg), msg.episode_id)
        if not ok:
            self.get_logger().warn(f"label from {msg.source} ignored: {why}")

    def on_verdict(self, msg: EpisodeVerdict) -> None:
        self.jobs.put(Ack(msg.episode_id))

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

    # the writer thread: all disk I/O ---------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                for event in self.sink.handle(job):
                    self._act(event)
            finally:
                self.jobs_done += 1
            if isinstance(job, Stop):
                return

    def _act(self, event: Event) -> None:
        log = self.get_logger()
        if event.kind == "handover":
            try:
                msg = episode_to_msg(
                    event.episode, self.horizon, bag_uri=str(self.log.path_of(event.episode_id).resolve())
                )
            except (HiorsError, ValueError) as e:
                log.error(f"episode {event.episode_id} not handed over: {e}")
                return
            self.pub_episode.publish(msg)
            self.published.append(event.episode_id)
            ep = event.episode
            log.info(
                f"episode {event.episode_id} handed over: {len(ep.frames)} samples, {int(ep.human_mask.sum())} human steps"
            )
        elif event.kind == "stopped":
            log.error(event.text)
            with self.lock:
                out = self.core.stopped(event.episode_id)
            self._announce(out)
            self._log_state(LOG_FAILED, event.text)
        elif event.kind == "error":
            log.error(event.text)
        elif event.kind == "warn":
            log.warn(event.text)
        else:
            log.info(event.text)

    # diagnostics: the state of the episode log -----------------------------------------------------------------------
    def _log_state(self, state: str, problem: str) -> None:
        self.log_state, self.log_problem = state, problem
        self.publish_diagnostics()

    def publish_diagnostics(self) -> None:
        if self.log_state == LOG_FAILED and not self.sink.failure:  # an episode opened since
            self.log_state, self.log_problem = LOG_OK, ""
        free, writable, _ = log_space(self.log.root)
        st = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: episode log", hardware_id=self.get_name())
        st.level = DiagnosticStatus.OK if self.log_state == LOG_OK else DiagnosticStatus.ERROR
        st.message = self.log_problem or f"{self.log.root}: {(free or 0) / 2**20:.0f} MiB free"
        values = {
            "log_state": self.log_state,
            "log_dir": str(self.log.root),
            "free_bytes": free if free is not None else "unknown",
            "writable": writable,
            "min_free_bytes": self.min_free_bytes,
            "episodes_stopped": self.sink.stopped,
            "starts_refused": self.refused_starts,
            "recording": self.core.episode_id,
        }
        st.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)

    def shutdown(self) -> None:
        """Close an episode the end of the run cut short as incomplete, then stop the writer."""
        with self.lock:
            self.jobs.put(self.core.shutdown())
        self.worker.join(timeout=10.0)


def main(args=None):
    # One thread: every callback is in one mutually exclusive group (bag I/O has its own worker thread), so more
    # executor threads could only wait for it.
    return run_node(Recorder, args, threads=1)


if __name__ == "__main__":
    main()
