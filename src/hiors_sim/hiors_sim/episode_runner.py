"""`episode_runner` node (simulation only): resets the twin and starts episodes one after another.

On a real robot the person does this with the Quest 3 / keyboard buttons. In simulation this node stands in:
reset the twin (new seed, a train cell), start an episode on the recorder, end it when the twin reports success
(held `settle_s`), a terminal failure or its time limit (`hiors_sim.oracle.EpisodeWatch`, fed every task state in
its callback, so a short success is never missed between two looks), and wait for the reward oracle's label (the
recorder finishes the episode on it); if none comes, it labels the episode a failure itself. All waiting happens
in a worker thread, never in a callback.

As a person would, it starts the first episode only once the actor is up (its first ActionChunk: loading a policy
takes a while on a busy machine). Collection never waits for learning unless `await_trained_policy_s` says so.

An episode counts as failed (not run) when the twin refuses its reset, the recorder refuses its start (e.g. its disk
is full) or stops it while it runs (a failed write: `episode_status` cleared before the runner ended it), or a call
goes unanswered.
"""

from __future__ import annotations

import json
import threading
import time

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String

from hiors_core import topics
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_msgs.msg import ActionChunk, EpisodeLabel, PolicyUpdate
from hiors_msgs.srv import EndEpisode, ResetSim, StartEpisode
from hiors_sim.oracle import EpisodeWatch

from .params import EPISODE_RUNNER


class EpisodeRunner(Node):
    def __init__(self, **kwargs):
        super().__init__("episode_runner", **kwargs)
        p = declare(self, EPISODE_RUNNER)  # types and ranges: hiors_sim.params
        self.robot, self.task = p["robot"], p["task"]
        self.episodes, self.seed = p["episodes"], p["seed"]
        self.time_limit_s = p["episode_time_s"]
        self.label_grace_s = p["label_grace_s"]
        self.pause_s = p["pause_s"]
        self.policy_wait_s = p["policy_wait_s"]
        self.await_trained_s = p["await_trained_policy_s"]
        group = ReentrantCallbackGroup()
        self.reset_client = self.create_client(ResetSim, topics.RESET, callback_group=group)
        self.start_client = self.create_client(StartEpisode, topics.START_EPISODE, callback_group=group)
        self.end_client = self.create_client(EndEpisode, topics.END_EPISODE, callback_group=group)
        self.labels: dict[str, EpisodeLabel] = {}
        self.lock = threading.Lock()
        self.create_subscription(
            EpisodeLabel, topics.EPISODE_LABEL, self.on_label, topics.qos(topics.EPISODE_LABEL), callback_group=group
        )
        self.expect_seed: int | None = None  # task states from before the last reset are ignored
        self.watch = EpisodeWatch(settle_s=p["settle_s"])
        self.create_subscription(
            String, topics.SIM_TASK_STATE, self.on_task_state, topics.qos(topics.SIM_TASK_STATE), callback_group=group
        )
        self.actor_version: int | None = None  # policy version of the actor's latest chunk (None: none seen yet)
        self.trained_versions: set[int] = set()  # versions the learner published after training steps
        self.create_subscription(
            ActionChunk, topics.ACTION_CHUNK, self.on_chunk, topics.qos(topics.ACTION_CHUNK), callback_group=group
        )
        self.create_subscription(
            PolicyUpdate, topics.POLICY_UPDATE, self.on_update, topics.qos(topics.POLICY_UPDATE), callback_group=group
        )
        self.recording = ""  # the recorder's episode_status: the id it is recording, "" for none
        self.running = ""  # the episode this runner started and has not ended yet
        self.stopped_by_recorder: set[str] = set()
        self.create_subscription(
            String, topics.EPISODE_STATUS, self.on_status, topics.qos(topics.EPISODE_STATUS), callback_group=group
        )
        self.done = 0
        self.failed = 0
        self.stop = threading.Event()
        self.worker = threading.Thread(target=self.run, name="episode-runner", daemon=True)
        self.worker.start()

    def shutdown(self) -> None:
        self.stop.set()
        self.worker.join(timeout=5.0)

    def on_label(self, msg: EpisodeLabel) -> None:
        with self.lock:
            self.labels[msg.episode_id] = msg

    def on_status(self, msg: String) -> None:
        with self.lock:
            if self.running and self.recording == self.running and msg.data != self.running:
                self.stopped_by_recorder.add(self.running)  # it stopped recording an episode nobody ended
            self.recording = msg.data

    def on_chunk(self, msg: ActionChunk) -> None:
        with self.lock:
            self.actor_version = int(msg.policy_version)

    def on_update(self, msg: PolicyUpdate) -> None:
        if msg.learner_step > 0:
            with self.lock:
                self.trained_versions.add(int(msg.version))

    def _wait(self, predicate, seconds: float, what: str) -> None:
        """Wait (wall clock) until `predicate()` holds; after `seconds` go on anyway, saying so."""
        deadline = time.monotonic() + seconds
        if seconds > 0:
            self.get_logger().info(f"waiting for a {what}")
        while not self.stop.is_set() and time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return
            time.sleep(0.05)
        if not self.stop.is_set() and seconds > 0:
            self.get_logger().warn(f"no {what} after {seconds:.0f} s; going on")

    def on_task_state(self, msg: String) -> None:
        try:
            state = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        with self.lock:
            if state.get("seed") == self.expect_seed:
                self.watch.observe(state)

    def _call(self, client, request, what: str, timeout: float = 30.0):
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"{what}: service {client.srv_name} not available after {timeout:.0f} s")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if self.stop.is_set() or time.monotonic() > deadline:
                raise TimeoutError(f"{what}: no response from {client.srv_name}")
            time.sleep(0.01)
        return future.result()

    def _sim_sleep(self, seconds: float) -> None:
        start = self.get_clock().now().nanoseconds
        end = start + int(seconds * 1e9)
        while not self.stop.is_set() and start <= self.get_clock().now().nanoseconds < end:
            time.sleep(0.01)  # (a clock that went back, a restarted twin, ends the wait)

    def run(self) -> None:
        self._wait(lambda: self.actor_version is not None, self.policy_wait_s, "chunk from the actor")
        started_on = None
        for k in range(self.episodes):
            if self.stop.is_set():
                return
            if k and self.await_trained_s > 0:
                self._wait(
                    lambda v=started_on: self.actor_version in self.trained_versions and self.actor_version > (v or 0),
                    self.await_trained_s,
                    "newly trained policy at the actor",
                )
            with self.lock:
                started_on = self.actor_version
            try:
                if self.run_episode(k):
                    self.done += 1
                else:
                    self.failed += 1
            except TimeoutError as e:
                # A node restarting (the recorder, the sim) can leave one call unanswered: this episode is lost to
                # the runner (the recorder salvages or keeps its bag), the next one starts afresh.
                self.failed += 1
                self.get_logger().error(f"episode {k}: {e}; going on with the next one")
            self._sim_sleep(self.pause_s)
        self.get_logger().info(f"ran {self.done} episodes ({self.failed} failed); idle")

    def run_episode(self, k: int) -> bool:
        """One episode; False when it was not recorded (reset or start refused, stopped by the recorder)."""
        with self.lock:
            # The last state before the reset says failed/succeeded: it must not end the new episode.
            self.expect_seed = self.seed + k
            self.watch.reset()
        reset = self._call(self.reset_client, ResetSim.Request(seed=self.seed + k, task=self.task, cell=-1), "reset")
        if not reset.success:
            self.get_logger().error(f"reset refused: {reset.message}")
            return False
        with self.lock:
            self.watch.reset()  # the sim's first scene may share the seed: its states from before the reset go too
        start = self._call(self.start_client, StartEpisode.Request(task=self.task), "start episode")
        if not start.success:
            self.get_logger().error(f"start refused: {start.message}")
            return False
        eid = start.episode_id
        with self.lock:
            self.running = eid
        try:
            return self._follow(eid)
        finally:
            with self.lock:
                self.running = ""

    def _follow(self, eid: str) -> bool:
        """Watch the started episode `eid` to its end, end it and see it labelled."""
        clock = self.get_clock()
        t0 = clock.now().nanoseconds
        why = ""
        while not self.stop.is_set():
            with self.lock:
                why = self.watch.why
                if eid in self.stopped_by_recorder:
                    self.get_logger().error(f"{eid}: the recorder stopped it (see its log); not counted as run")
                    return False
            if why:
                break
            now = clock.now().nanoseconds
            if now - t0 > self.time_limit_s * 1e9:
                why = "time limit"
                break
            if now < t0:  # the sim clock went back: the twin restarted and the scene of this episode is gone
                self.get_logger().warn(f"{eid}: the sim clock went back (the twin restarted); ending the episode")
                break
            time.sleep(0.02)
        if why:
            self.get_logger().info(f"{eid}: ending it: {why}")
        if self.stop.is_set():
            return False
        with self.lock:
            self.running = ""  # ended by this runner from here on
        self._call(self.end_client, EndEpisode.Request(episode_id=eid), "end episode")
        t1 = time.monotonic()
        while not self.stop.is_set() and time.monotonic() - t1 < self.label_grace_s:
            with self.lock:
                if eid in self.labels:
                    return True  # labelled by the oracle; the recorder has finished the episode
            time.sleep(0.02)
        if self.stop.is_set():
            return False
        self.get_logger().warn(f"{eid}: no label within {self.label_grace_s:.0f} s of its end; labelling it a failure")
        req = EndEpisode.Request(episode_id=eid, has_label=True, reward=0.0, success=False, label_source="timeout")
        self._call(self.end_client, req, "end episode")
        return True


def main(args=None):
    return run_node(EpisodeRunner, args, threads=2)
