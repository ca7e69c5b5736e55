"""Node test: the recorder writes an episode bag, hands the Episode over, and records the acknowledgement."""

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from hiors_core import topics
from hiors_core.convert_ros import observation_msg, time_msg
from hiors_core.episode_log import STATUS_ACKED, EpisodeLog
from hiors_core.schema import AUTHORITY_HUMAN, AUTHORITY_POLICY, Frame, Label
from hiors_msgs.msg import Episode, EpisodeLabel, EpisodeVerdict, ExecutedCommand, Observation
from hiors_msgs.srv import StartEpisode
from hiors_teleop.recorder import Recorder
from hiors_testing.recorder_feed import record_commands
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

pytestmark = pytest.mark.node
HUMAN = range(6, 11)


def test_recorder_episode_bag_handover_and_ack(tmp_path):
    with ros_context() as ctx:
        rec = Recorder(
            context=ctx,
            parameter_overrides=[
                Parameter("log_dir", value=str(tmp_path)),
                Parameter("horizon", value=4),
                Parameter("resend_period_s", value=0.5),
            ],
        )
        rig = Node("recorder_rig", context=ctx)
        episodes = []
        rig.create_subscription(Episode, topics.EPISODE, episodes.append, topics.qos(topics.EPISODE))
        obs_pub = rig.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, "recorder"))
        exec_pub = rig.create_publisher(ExecutedCommand, topics.EXECUTED, topics.qos(topics.EXECUTED, "recorder"))
        label_pub = rig.create_publisher(
            EpisodeLabel, topics.EPISODE_LABEL, topics.qos(topics.EPISODE_LABEL, "recorder")
        )
        verdict_pub = rig.create_publisher(
            EpisodeVerdict, topics.EPISODE_VERDICT, topics.qos(topics.EPISODE_VERDICT, "recorder")
        )
        start = rig.create_client(StartEpisode, topics.START_EPISODE)
        try:
            with spinning([rec, rig], context=ctx):
                for pub in (obs_pub, exec_pub, label_pub, verdict_pub):
                    wait_for_subscribers(pub)
                    wait_for(lambda p=pub: rec.count_publishers(p.topic_name) >= 1, what="recorder sees publishers")
                wait_for(start.service_is_ready, what="start_episode service")
                fut = start.call_async(StartEpisode.Request(task="raise_hand"))
                wait_for(fut.done, what="start_episode response")
                assert fut.result().success
                eid = fut.result().episode_id
                rng = np.random.default_rng(0)
                for t in range(20):
                    stamp = 1_000_000_000 + t * 40_000_000
                    frame = Frame(
                        step=t,
                        stamp_ns=stamp - 5_000_000,
                        images={"top": rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)},
                        state=np.full(3, t, np.float32),
                        state_names=("a", "b", "c"),
                        sequence=t,
                    )
                    obs_pub.publish(observation_msg(frame, "tora_one", "raise_hand"))
                    wait_for(lambda s=t: rec.latest_obs is not None and rec.latest_obs.sequence == s, what="obs")
                    human = t in HUMAN
                    msg = ExecutedCommand(
                        step=1000 + t,
                        authority=AUTHORITY_HUMAN if human else AUTHORITY_POLICY,
                        source="quest3" if human else "policy",
                        action_names=[f"a{i}" for i in range(8)],
                        action=[float(t)] * 8,
                        is_sample=human or t % 5 == 0,
                    )
                    msg.header.stamp = time_msg(stamp)
                    exec_pub.publish(msg)
                wait_for(lambda: rec.step == 20, what="20 executed commands")
                label = EpisodeLabel(episode_id=eid, reward=1.0, success=True, source="oracle")
                label_pub.publish(label)
                wait_for(lambda: episodes, what="Episode message")
                ep = episodes[0]
                assert ep.episode_id == eid and ep.success and ep.label_source == "oracle"
                assert ep.human_steps == len(HUMAN) and ep.interventions == 1 and ep.control_steps == 20
                sample_steps = [s.step for s in ep.samples]
                assert sample_steps == sorted({0, 5, 10, 15, *HUMAN})
                assert [s.is_human for s in ep.samples] == [s in HUMAN for s in sample_steps]
                assert ep.samples[0].horizon == 4 and len(ep.samples[0].action_label) == 4 * 8
                # Read back from disk.
                data = EpisodeLog(tmp_path).read(eid)
                assert data.human_mask.tolist() == [t in HUMAN for t in range(20)]
                assert [f.step for f in data.frames] == sample_steps
                assert [int(f.state[0]) for f in data.frames] == sample_steps  # the observation seen at that step
                # Started before any observation came in: the meta was completed from the first frame.
                assert data.meta.state_names == ("a", "b", "c") and data.meta.camera_names == ("top",)
                # Not acknowledged: re-sent.
                wait_for(lambda: len(episodes) >= 2, what="re-send of the unacknowledged episode")
                verdict_pub.publish(EpisodeVerdict(episode_id=eid, accepted=True, reason="accepted"))
                wait_for(lambda: EpisodeLog(tmp_path).entries()[eid].status == STATUS_ACKED, what="acked")
        finally:
            rec.shutdown()
            rec.destroy_node()
            rig.destroy_node()


def test_recorder_commands_at_one_clock_reading_keep_their_frames(tmp_path):
    """On simulated time the arbiter's control timer can catch up and send two commands at one clock reading; the
    recorded stamps still increase strictly, so each sample's frame is read back at its own step."""
    stamps = [1_000_000_000, 1_040_000_000, 1_120_000_000, 1_120_000_000, 1_160_000_000]  # a late tick, then two
    with ros_context() as ctx:
        rec = Recorder(context=ctx, parameter_overrides=[Parameter("log_dir", value=str(tmp_path))])
        rig = Node("recorder_rig_ties", context=ctx)
        obs_pub = rig.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, "recorder"))
        exec_pub = rig.create_publisher(ExecutedCommand, topics.EXECUTED, topics.qos(topics.EXECUTED, "recorder"))
        start = rig.create_client(StartEpisode, topics.START_EPISODE)
        try:
            with spinning([rec, rig], context=ctx):
                for pub in (obs_pub, exec_pub):
                    wait_for_subscribers(pub)
                    wait_for(lambda p=pub: rec.count_publishers(p.topic_name) >= 1, what="recorder sees publishers")
                wait_for(start.service_is_ready, what="start_episode service")
                fut = start.call_async(StartEpisode.Request(task="raise_hand"))
                wait_for(fut.done, what="start_episode response")
                eid = fut.result().episode_id
                for t, stamp in enumerate(stamps):
                    frame = Frame(
                        step=t,
                        stamp_ns=stamp - 1_000_000,
                        images={"top": np.full((8, 8, 3), t, np.uint8)},
                        state=np.full(3, t, np.float32),
                        state_names=("a", "b", "c"),
                        sequence=t,
                    )
                    obs_pub.publish(observation_msg(frame, "tora_one", "raise_hand"))
                    wait_for(lambda s=t: rec.latest_obs is not None and rec.latest_obs.sequence == s, what="obs")
                    msg = ExecutedCommand(
                        authority=AUTHORITY_HUMAN, source="quest3", action_names=["a"], action=[0.0], is_sample=True
                    )
                    msg.header.stamp = time_msg(stamp)
                    exec_pub.publish(msg)
                    wait_for(lambda s=t: rec.step == s + 1, what=f"command {t}")
                ok, _, _ = rec.end(Label(1.0, True, "test", 1))
                assert ok
                wait_for(lambda: eid in rec.published, what="episode closed")
        finally:
            rec.shutdown()
            rec.destroy_node()
            rig.destroy_node()
    data = EpisodeLog(tmp_path).read(eid)
    recorded = [e.stamp_ns for e in data.executed]
    assert all(b > a for a, b in zip(recorded, recorded[1:], strict=False))
    assert recorded[3] == stamps[3] + 1
    assert [f.step for f in data.frames] == [0, 1, 2, 3, 4]
    assert [int(f.state[0]) for f in data.frames] == [0, 1, 2, 3, 4]


def test_commands_before_the_first_observation_are_kept_and_the_meta_completed(tmp_path):
    """An episode started before the recorder saw any observation, whose first commands come before the first
    observation: the bag opens at the first frame, with the state names and cameras from it, and holds every
    command, the early ones included."""
    with ros_context() as ctx:
        rec = Recorder(context=ctx, parameter_overrides=[Parameter("log_dir", value=str(tmp_path))])
        try:
            ok, eid, _ = rec.start(task="raise_hand", instruction="raise the left hand")
            assert ok
            for t in range(6):
                stamp = 1_000_000_000 + t * 40_000_000
                if t == 3:
                    frame = Frame(
                        3, stamp - 1, {"top": np.zeros((4, 4, 3), np.uint8)}, np.ones(2, np.float32), ("x", "y")
                    )
                    rec.on_observation(observation_msg(frame, "tora_one", "raise_hand"))
                msg = ExecutedCommand(step=t, action_names=[f"a{i}" for i in range(8)], action=[float(t)] * 8)
                msg.is_sample = t >= 3
                msg.header.stamp = time_msg(stamp)
                rec.on_executed(msg)
            assert rec.end(Label(reward=1.0, success=True, source="test", stamp_ns=2_000_000_000))[0]
            wait_for(lambda: eid in rec.published, what="episode closed and handed over")
            data = EpisodeLog(tmp_path).read(eid)
            assert data.meta.state_names == ("x", "y") and data.meta.camera_names == ("top",)
            assert data.meta.instruction == "raise the left hand"
            assert [float(e.action[0]) for e in data.executed] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
            assert [f.step for f in data.frames] == [3, 4, 5]
        finally:
            rec.shutdown()
            rec.destroy_node()


def test_episodes_cut_short_by_the_end_of_the_run_are_incomplete_and_never_handed_over(tmp_path):
    """An episode still open when the next one starts, or when the run ends (even one of length 0), is closed as
    incomplete with its reason: never marked complete without a label, never handed over."""
    from hiors_core.episode_log import STATUS_INCOMPLETE

    with ros_context() as ctx:
        rec = Recorder(context=ctx, parameter_overrides=[Parameter("log_dir", value=str(tmp_path))])
        try:
            _, labelled, _ = rec.start(task="raise_hand")
            record_commands(rec, 4)
            assert rec.end(Label(reward=1.0, success=True, source="test", stamp_ns=2_000_000_000))[0]
            _, unlabelled, _ = rec.start(task="raise_hand")  # ended, never labelled, then the next one starts
            record_commands(rec, 3, 3_000_000_000)
            assert rec.end()[2] == "ended; waiting for a label"
            _, empty, _ = rec.start(task="raise_hand")  # the run ends at once: length 0
        finally:
            rec.shutdown()
            rec.destroy_node()
    log = EpisodeLog(tmp_path)
    entries = log.entries()
    assert entries[labelled].status == "complete" and entries[labelled].reward == 1.0
    assert entries[unlabelled].status == STATUS_INCOMPLETE and entries[unlabelled].steps == 3
    assert "next episode started before its label came" in entries[unlabelled].reason
    assert entries[empty].status == STATUS_INCOMPLETE and entries[empty].steps == 0
    assert "run ended while it was being recorded" in entries[empty].reason
    assert rec.published == [labelled] and log.trainable_ids() == [labelled]


def test_an_episode_awaiting_its_label_at_the_end_of_the_run_is_incomplete(tmp_path):
    from hiors_core.episode_log import STATUS_INCOMPLETE

    with ros_context() as ctx:
        rec = Recorder(context=ctx, parameter_overrides=[Parameter("log_dir", value=str(tmp_path))])
        try:
            _, eid, _ = rec.start(task="raise_hand")
            record_commands(rec, 5)
            rec.end()
        finally:
            rec.shutdown()
            rec.destroy_node()
    entry = EpisodeLog(tmp_path).entries()[eid]
    assert entry.status == STATUS_INCOMPLETE and entry.reason == "the run ended before its label came (5 steps)"
    assert len(EpisodeLog(tmp_path).read(eid, allow_incomplete=True).executed) == 5


def test_a_button_label_on_sim_time_keeps_the_bag_in_sim_time(tmp_path):
    """Commands and frames carry sim time; the meta message and a label from a Joy button must not bring in the
    wall clock, or the bag lasts decades and `hiors replay` never finishes."""
    import yaml
    from sensor_msgs.msg import Joy

    with ros_context() as ctx:
        rec = Recorder(
            context=ctx,
            parameter_overrides=[Parameter("log_dir", value=str(tmp_path)), Parameter("use_sim_time", value=True)],
        )
        try:
            _, eid, _ = rec.start(task="raise_hand")
            record_commands(rec, 6)
            rec.on_joy(Joy(buttons=[0, 0, 0, 0]))
            rec.on_joy(Joy(buttons=[0, 0, 1, 0]))  # success: label and end
            wait_for(lambda: eid in rec.published, what="episode closed and handed over")
        finally:
            rec.shutdown()
            rec.destroy_node()
    info = yaml.safe_load((tmp_path / eid / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["starting_time"]["nanoseconds_since_epoch"] == 1_000_000_000 - 1
    assert info["duration"]["nanoseconds"] == 5 * 40_000_000 + 1
    assert EpisodeLog(tmp_path).read(eid).label.success
