"""The rosbag2 episode log: round trip, independent decoding, crash recovery, bad input."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hiors_core.episode_log import STATUS_INCOMPLETE, EpisodeLog, read_episode_bag
from hiors_core.errors import EpisodeLogError
from hiors_testing.episodes import make_episode


def test_round_trip_keeps_every_frame_command_and_label(tmp_path):
    log = EpisodeLog(tmp_path)
    ep = make_episode()
    log.write_episode(ep)
    back = log.read(ep.meta.episode_id)
    assert back.meta == ep.meta
    assert len(back.frames) == len(ep.frames) and len(back.executed) == len(ep.executed)
    for a, b in zip(ep.frames, back.frames, strict=True):
        assert a.step == b.step  # frame -> step association survives the bag
        np.testing.assert_array_equal(a.state, b.state)
        for cam in a.images:
            np.testing.assert_array_equal(a.images[cam], b.images[cam])
    np.testing.assert_array_equal(back.actions, ep.actions)
    np.testing.assert_array_equal(back.human_mask, ep.human_mask)
    assert back.human_mask.sum() == 4 and back.interventions == 1
    assert back.label.reward == 1.0 and back.label.success
    assert log.entries()[ep.meta.episode_id].status == "complete"


def test_bag_decodes_with_independent_mcap_reader(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    log = EpisodeLog(tmp_path)
    ep = make_episode()
    path = log.write_episode(ep)
    (mcap_file,) = path.glob("*.mcap")
    counts = {}
    with open(mcap_file, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _schema, channel, _message, decoded in reader.iter_decoded_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            if channel.topic == "/executed":
                assert decoded.episode_id == ep.meta.episode_id
            if channel.topic == "/observation":
                assert decoded.images[0].width == 16 and len(decoded.images[0].data) == 16 * 16 * 3
    assert counts == {
        "/episode/meta": 1,
        "/observation": len(ep.frames),
        "/executed": len(ep.executed),
        "/episode_label": 1,
    }


def test_bag_decodes_with_rclpy_deserializer(tmp_path):
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    from hiors_msgs.msg import Observation

    path = EpisodeLog(tmp_path).write_episode(make_episode())
    with Reader(path) as reader:
        conns = [c for c in reader.connections if c.topic == "/observation"]
        raw = next(r for _, _, r in reader.messages(connections=conns))
    msg = deserialize_message(raw, Observation)
    assert msg.camera_names == ["top", "left_wrist"] and msg.robot == "tora_one"


def test_never_overwrites_an_episode(tmp_path):
    log = EpisodeLog(tmp_path)
    ep = make_episode()
    log.write_episode(ep)
    with pytest.raises(EpisodeLogError, match="exists already"):
        log.write_episode(ep)
    assert log.new_episode_id() != ep.meta.episode_id


def test_new_episode_ids_are_consecutive_and_skip_taken_ones(tmp_path):
    log = EpisodeLog(tmp_path)
    assert log.new_episode_id() == "ep-000000"
    log.write_episode(make_episode(episode_id="ep-000000"))
    assert log.new_episode_id() == "ep-000001"  # the index file is not an episode
    (tmp_path / "ep-000007.recovered").mkdir()
    assert log.new_episode_id() == "ep-000008"
    assert log.new_episode_id("demo") == "demo-000000"


def test_killed_writer_is_detected_salvaged_and_never_used(tmp_path):
    # A real process writes half an episode and is killed with SIGKILL mid-write.
    script = textwrap.dedent(
        f"""
        import sys, time
        from hiors_testing.episodes import make_episode
        from hiors_core.episode_log import EpisodeLog, EpisodeWriter
        EpisodeWriter.FLUSH_EVERY_S = 0.0
        ep = make_episode(steps=40)
        w = EpisodeLog({str(tmp_path)!r}).open_writer(ep.meta)
        for f, e in zip(ep.frames, ep.executed):
            w.write_frame(f); w.write_executed(e)
        print("written", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    log = EpisodeLog(tmp_path)
    with pytest.raises(EpisodeLogError, match="still being recorded"):
        log.read("ep-000000")
    marked = log.recover()
    assert [m.episode_id for m in marked] == ["ep-000000"]
    assert marked[0].status == STATUS_INCOMPLETE and marked[0].frames > 0
    assert log.trainable_ids() == []  # never silently used
    with pytest.raises(EpisodeLogError, match="incomplete"):
        log.read("ep-000000")
    salvaged = log.read("ep-000000", allow_incomplete=True)
    assert salvaged.label is None and len(salvaged.executed) > 0
    assert (tmp_path / "ep-000000").is_dir()  # the original is kept as it was
    assert log.recover() == []  # idempotent


def test_truncated_bag_gives_a_clear_error(tmp_path):
    path = EpisodeLog(tmp_path).write_episode(make_episode())
    (mcap_file,) = path.glob("*.mcap")
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(EpisodeLogError, match=str(path)):
        read_episode_bag(path)


def test_not_a_bag_and_unknown_types(tmp_path):
    with pytest.raises(EpisodeLogError, match="metadata.yaml missing"):
        read_episode_bag(tmp_path)
    from rosbags.rosbag2 import StoragePlugin, Writer

    bag = tmp_path / "foreign"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection("/x", "foo_msgs/msg/Bar", msgdef="int32 a", rihs01="RIHS01_" + "0" * 64)
        w.write(conn, 1, b"\x00\x01\x00\x00\x05\x00\x00\x00")
    with pytest.raises(EpisodeLogError, match="not a hiors episode bag"):
        read_episode_bag(bag)


def test_torn_index_line_is_skipped(tmp_path):
    log = EpisodeLog(tmp_path)
    log.write_episode(make_episode())
    with open(log.index_path, "a") as f:
        f.write('{"episode_id": "ep-0000')
    assert log.trainable_ids() == ["ep-000000"]


def _log_times(path) -> dict[str, list[int]]:
    from rosbags.rosbag2 import Reader

    out: dict[str, list[int]] = {}
    with Reader(path) as reader:
        for conn, stamp, _ in reader.messages():
            out.setdefault(conn.topic, []).append(stamp)
    return out


@pytest.mark.parametrize("label_stamp", [0, 1_795_620_646_674_736_866], ids=["oracle-unstamped", "wall-clock"])
def test_every_message_of_a_bag_shares_the_episodes_time_base(tmp_path, label_stamp):
    """An online episode's frames and commands carry sim time (seconds since the sim started); the meta message
    and the label must not bring in this process's wall clock (one wall-clock stamp makes a bag of seconds last
    decades)."""
    import yaml

    from hiors_core.schema import Label

    ep = make_episode()  # stamps 1.0 s .. 1.44 s: sim time
    ep.label = Label(reward=1.0, success=True, source="oracle", stamp_ns=label_stamp)
    path = EpisodeLog(tmp_path).write_episode(ep)
    data = [f.stamp_ns for f in ep.frames] + [e.stamp_ns for e in ep.executed]
    first, last = min(data), max(data)
    times = _log_times(path)
    assert times["/episode/meta"] == [first] and times["/episode_label"] == [last]
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["starting_time"]["nanoseconds_since_epoch"] == first
    assert info["duration"]["nanoseconds"] == last - first
    back = EpisodeLog(tmp_path).read(ep.meta.episode_id)
    assert back.label.stamp_ns == (label_stamp or last)  # the labeller's own stamp, when it gave one


def test_an_episode_cut_short_is_incomplete_with_its_reason_and_never_trained_on(tmp_path):
    log = EpisodeLog(tmp_path)
    log.write_episode(make_episode(episode_id="ep-000000"))
    ep = make_episode(episode_id="ep-000001", steps=6)
    w = log.open_writer(ep.meta)
    for e in ep.executed:
        w.write_executed(e)
    w.close_cut_short("the run ended while it was being recorded")
    empty = log.open_writer(make_episode(episode_id="ep-000002").meta)
    empty.close_cut_short("the run ended before anything was recorded")  # length 0, still a readable bag
    entries = log.entries()
    assert entries["ep-000001"].status == STATUS_INCOMPLETE and entries["ep-000001"].steps == 6
    assert entries["ep-000001"].reason == "the run ended while it was being recorded"
    assert entries["ep-000002"].status == STATUS_INCOMPLETE and entries["ep-000002"].steps == 0
    assert log.trainable_ids() == ["ep-000000"]
    with pytest.raises(EpisodeLogError, match="incomplete.*run ended while"):
        log.read("ep-000001")
    kept = log.read("ep-000001", allow_incomplete=True)
    assert len(kept.executed) == 6 and kept.label is None
    assert log.read("ep-000002", allow_incomplete=True).executed == []
    assert _log_times(tmp_path / "ep-000002") == {"/episode/meta": [0]}


def test_unlabelled_complete_episodes_of_older_logs_are_not_trainable(tmp_path):
    log = EpisodeLog(tmp_path)
    log.write_episode(make_episode(episode_id="ep-000000"))
    log.write_episode(make_episode(episode_id="ep-000001", reward=None))  # complete, without a label
    assert log.entries()["ep-000001"].status == "complete"
    assert log.trainable_ids() == ["ep-000000"]


def test_a_writer_left_by_an_exception_is_cut_short(tmp_path):
    log = EpisodeLog(tmp_path)
    ep = make_episode()
    with pytest.raises(RuntimeError), log.open_writer(ep.meta) as w:
        w.write_executed(ep.executed[0])
        raise RuntimeError("camera unplugged")
    entry = log.entries()[ep.meta.episode_id]
    assert entry.status == STATUS_INCOMPLETE and "camera unplugged" in entry.reason
