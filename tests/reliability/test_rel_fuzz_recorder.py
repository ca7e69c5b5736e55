"""Bad input, recorder: hypothesis-generated EpisodeLabels (wrong ids, NaN/inf rewards, odd sources), Joy buttons
(start / success / failure in any order), EpisodeVerdicts for unknown episodes and malformed Observations recorded as
frames, interleaved with a valid command stream. No callback raises, the writer thread never dies (every queued job
is done), every refusal is counted, and every episode on disk afterwards is readable with a finite reward."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import strategies as st
from rclpy.node import Node
from rclpy.parameter import Parameter
from rel_support import SCALES, f32_floats, fuzz, instrumented, pick, record
from sensor_msgs.msg import Joy

from hiors_core import topics
from hiors_core.convert_ros import image_msg, time_msg
from hiors_core.episode_log import STATUS_COMPLETE, EpisodeLog
from hiors_core.schema import AUTHORITY_HUMAN, AUTHORITY_POLICY
from hiors_msgs.msg import Episode, EpisodeLabel, EpisodeVerdict, ExecutedCommand, Observation
from hiors_teleop.recorder import Recorder
from hiors_teleop.recording import IDLE
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

pytestmark = pytest.mark.node
WAIT = 30.0
CALLBACKS = ["on_observation", "on_executed", "on_joy", "on_label", "on_verdict"]
FuzzRecorder = instrumented(Recorder, CALLBACKS)
NAMES = ("s0", "s1", "s2")

step_spec = st.fixed_dictionaries(
    {
        "obs": st.sampled_from(["good"] * 4 + ["nan_state", "names", "cameras", "image", "encoding", "empty"]),
        "value": f32_floats(),
        "is_sample": st.booleans(),
        "human": st.booleans(),
        "stamp_back": st.sampled_from([0, 0, 0, 1, 10**9]),
    }
)
label_spec = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["current", "current", "empty", "other", "random"]),
        "random": st.text(max_size=20),
        "reward": st.one_of(st.sampled_from([0.0, 1.0, 0.5]), f32_floats(-10, 10)),
        "success": st.booleans(),
        "source": st.one_of(st.sampled_from(["human", "oracle", "classifier"]), st.text(max_size=10)),
    }
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("step"), step_spec),
        st.tuples(st.just("step"), step_spec),
        st.tuples(st.just("step"), step_spec),
        st.tuples(st.just("joy"), st.lists(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 1), max_size=5)),
        st.tuples(st.just("label"), label_spec),
        st.tuples(st.just("verdict"), st.sampled_from(["published", "random", ""])),
    ),
    min_size=1,
    max_size=10,
)


class Stream:
    """A valid observation + command stream, made malformed where a spec says so."""

    def __init__(self):
        self.t = 10**9
        self.step = 0
        self.rng = np.random.default_rng(0)

    def observation(self, spec) -> Observation:
        img = self.rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        msg = Observation(robot="tora_one", task="raise_hand", instruction="raise your hand", sequence=self.step)
        msg.header.stamp = time_msg(self.t)
        msg.camera_names = ["top"]
        msg.images = [image_msg(img, self.t, "top")]
        msg.state_names = list(NAMES)
        msg.state = [0.1, 0.2, 0.3]
        kind = spec["obs"]
        if kind == "nan_state":
            msg.state = [0.1, float(spec["value"]) if not math.isfinite(spec["value"]) else math.nan, 0.3]
        elif kind == "names":
            msg.state_names = ["s0"]
        elif kind == "cameras":
            msg.camera_names = ["top", "left_wrist"]
        elif kind == "image":
            msg.images[0].data = bytes(7)
        elif kind == "encoding":
            msg.images[0].encoding = "16UC1"
        elif kind == "empty":
            im = msg.images[0]
            im.width, im.height, im.step, im.encoding, im.data = 0, 0, 0, "bgr8", b""
        return msg

    def command(self, spec) -> ExecutedCommand:
        self.t += 40_000_000
        msg = ExecutedCommand(
            step=self.step,
            authority=AUTHORITY_HUMAN if spec["human"] else AUTHORITY_POLICY,
            source="quest3" if spec["human"] else "policy",
            control_mode=1,
            action_names=[f"a{i}" for i in range(8)],
            is_sample=spec["is_sample"],
        )
        msg.action = [0.3, 0.2, 1.1, 0.0, 0.0, 0.0, 1.0, 0.5]
        msg.header.stamp = time_msg(self.t - spec["stamp_back"])
        self.step += 1
        return msg


@pytest.mark.parametrize("scale", SCALES)
def test_recorder_refuses_malformed_labels_buttons_and_frames(tmp_path, scale):
    examples = pick(scale, 40, 400)
    log = EpisodeLog(tmp_path / "episodes")
    with ros_context() as ctx:
        rec = FuzzRecorder(
            context=ctx,
            parameter_overrides=[
                Parameter("log_dir", value=str(log.root)),
                Parameter("horizon", value=4),
                Parameter("resend_period_s", value=0.0),
            ],
        )
        rig = Node("recorder_fuzz_rig", context=ctx)
        episodes: list[Episode] = []
        rig.create_subscription(Episode, topics.EPISODE, episodes.append, topics.qos(topics.EPISODE))
        pubs = {
            "on_observation": rig.create_publisher(
                Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, "recorder")
            ),
            "on_executed": rig.create_publisher(
                ExecutedCommand, topics.EXECUTED, topics.qos(topics.EXECUTED, "recorder")
            ),
            "on_joy": rig.create_publisher(Joy, topics.TELEOP_JOY, topics.qos(topics.TELEOP_JOY)),
            "on_label": rig.create_publisher(
                EpisodeLabel, topics.EPISODE_LABEL, topics.qos(topics.EPISODE_LABEL, "recorder")
            ),
            "on_verdict": rig.create_publisher(
                EpisodeVerdict, topics.EPISODE_VERDICT, topics.qos(topics.EPISODE_VERDICT, "recorder")
            ),
        }
        sent = dict.fromkeys(CALLBACKS, 0)
        expected = {"labels": 0, "frames": 0}
        stream = Stream()
        bad_obs: set[int] = set()
        rng = np.random.default_rng(1)

        def send(cb, msg):
            pubs[cb].publish(msg)
            sent[cb] += 1
            wait_for(lambda: rec.calls[cb] >= sent[cb], WAIT, f"{cb} #{sent[cb]}")

        def body(items):
            for kind, spec in items:
                if kind == "step":
                    obs = stream.observation(spec)
                    if spec["obs"] != "good":
                        bad_obs.add(obs.sequence)
                    send("on_observation", obs)
                    cmd = stream.command(spec)
                    recording = rec.state == "recording"
                    if recording and spec["is_sample"]:
                        # The frame the recorder will take: the newest observation at or before the command.
                        stamp = max(cmd.header.stamp.sec * 10**9 + cmd.header.stamp.nanosec, rec.core.prev_exec_ns + 1)
                        older = [o for ns, o in rec.core.recent_obs if ns <= stamp]
                        chosen = older[-1] if older else rec.latest_obs
                        expected["frames"] += int(chosen is not None and chosen.sequence in bad_obs)
                    send("on_executed", cmd)
                elif kind == "joy":
                    prev, b = list(rec._joy_prev), list(spec)

                    def rising(i, b=b, prev=prev):
                        return len(b) > i and b[i] and not (len(prev) > i and prev[i])

                    # Button 1 starts an episode; 2 and 3 label (and end) the current one, refused when none is open.
                    state = "recording" if rising(1) else rec.state
                    for i in (2, 3):
                        if rising(i):
                            expected["labels"] += int(state == IDLE)
                            state = IDLE
                    send("on_joy", Joy(buttons=b, axes=[]))
                elif kind == "label":
                    eid = {"current": rec.episode_id, "empty": "", "other": "ep-999999", "random": spec["random"]}[
                        spec["id"]
                    ]
                    open_for_it = rec.state != IDLE and (eid in ("", rec.episode_id))
                    expected["labels"] += int(not math.isfinite(spec["reward"]) or not open_for_it)
                    msg = EpisodeLabel(
                        episode_id=eid, reward=float(spec["reward"]), success=spec["success"], source=spec["source"]
                    )
                    send("on_label", msg)
                else:
                    eid = {"published": rec.published[-1] if rec.published else "", "random": str(rng.integers(1e9))}
                    send("on_verdict", EpisodeVerdict(episode_id=eid.get(spec, ""), accepted=True))
            wait_for(lambda: rec.jobs_done >= rec.jobs.unfinished_tasks, WAIT, "the writer to finish every job")
            assert not rec.crashes, rec.crashes[0]
            assert rec.worker.is_alive(), "the recorder's writer thread died"

        try:
            with spinning([rec, rig], context=ctx, threads=1):  # as its process
                for p in pubs.values():
                    wait_for_subscribers(p, timeout=WAIT)
                fuzz(ops, body, examples)
                wait_for(lambda: len(episodes) >= len(rec.published), WAIT, "every Episode message")
        finally:
            rec.shutdown()
            rec.destroy_node()
            rig.destroy_node()
    recovered = log.recover()
    entries = log.entries()
    complete = [e for e in entries.values() if e.status == STATUS_COMPLETE or e.status == "acked"]
    unreadable, bad_reward = [], []
    for e in complete:
        try:
            ep = log.read(e.episode_id)
        except Exception as err:  # any failure to read back is what this counts
            unreadable.append(f"{e.episode_id}: {err}")
            continue
        if ep.label is not None and not math.isfinite(ep.label.reward):
            bad_reward.append(e.episode_id)
    bad_reward += [m.episode_id for m in episodes if not math.isfinite(m.episode_return)]
    record("fuzz", "recorder messages sent", sum(sent.values()), detail=str(sent))
    record("fuzz", "recorder callback crashes", len(rec.crashes), expected=0, ok=not rec.crashes)
    record("fuzz", "recorder episodes written", len(complete), detail=f"{len(rec.published)} labelled and handed over")
    record("fuzz", "recorder episodes unreadable", len(unreadable), expected=0, ok=not unreadable)
    record("fuzz", "recorder non-finite rewards kept", len(bad_reward), expected=0, ok=not bad_reward)
    record("fuzz", "recorder episodes left open after shutdown", len(recovered), expected=0, ok=not recovered)
    record(
        "fuzz",
        "recorder labels refused (counted)",
        rec.refused["labels"],
        expected=expected["labels"],
        ok=rec.refused["labels"] == expected["labels"],
    )
    record(
        "fuzz",
        "recorder frames refused (counted)",
        rec.refused["frames"],
        expected=expected["frames"],
        ok=rec.refused["frames"] == expected["frames"],
    )
    assert not rec.crashes and not unreadable and not bad_reward and not recovered
    assert rec.refused == expected
    assert complete
