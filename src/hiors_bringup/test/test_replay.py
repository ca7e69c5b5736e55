"""`hiors replay`: what it says before it starts, how it copes with a bag whose clock jumps, and its errors."""

import re
import time
from pathlib import Path

import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from hiors_bringup.replay import MAX_GAP_S, Jump, plan, play_offsets, replay
from hiors_core.episode_log import BAG_TOPICS, EpisodeLog
from hiors_core.errors import EpisodeLogError
from hiors_core.msg_types import typestore
from hiors_testing.episodes import make_episode

WALL_NS = 1_795_620_646_674_736_866  # the meta stamp of the bag in the report: wall clock, beside sim time


def _old_style_bag(path: Path) -> Path:
    """A bag whose clock jumps, as older recorders wrote them: sim-time commands, and the meta message stamped with
    the wall clock."""
    store = typestore()
    t = store.types
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        meta = w.add_connection("/episode/meta", BAG_TOPICS["/episode/meta"], typestore=store)
        w.write(meta, WALL_NS, store.serialize_cdr(t["std_msgs/msg/String"](data="{}"), "std_msgs/msg/String"))
        conn = w.add_connection("/note", "std_msgs/msg/String", typestore=store)
        for k in range(4):
            msg = t["std_msgs/msg/String"](data=f"step {k}")
            w.write(conn, 1_000_000_000 + k * 100_000_000, store.serialize_cdr(msg, "std_msgs/msg/String"))
    return path


def test_gaps_are_kept_and_clock_jumps_are_skipped_and_reported():
    stamps = [0, 100_000_000, 300_000_000, 300_000_000 + WALL_NS, 400_000_000 + WALL_NS, 50]
    topics = ["/a", "/b", "/a", "/meta", "/a", "/b"]
    offsets, jumps = play_offsets(stamps, topics)
    assert offsets == pytest.approx([0.0, 0.1, 0.3, 0.3, 0.4, 0.4])
    assert [(j.index, j.topic) for j in jumps] == [(3, "/meta"), (5, "/b")]
    assert jumps[0].gap_s == pytest.approx(WALL_NS / 1e9) and jumps[1].gap_s < 0
    # A pause within an episode (an operator thinking) is kept.
    assert play_offsets([0, int(MAX_GAP_S * 1e9)], ["/a", "/a"]) == ([0.0, MAX_GAP_S], [])


def test_plan_says_topics_types_counts_and_duration_before_it_starts(tmp_path):
    ep = make_episode()
    path = EpisodeLog(tmp_path).write_episode(ep)
    p = plan(path)
    assert p.topics == {
        "/episode/meta": ("std_msgs/msg/String", 1),
        "/observation": ("hiors_msgs/msg/Observation", len(ep.frames)),
        "/executed": ("hiors_msgs/msg/ExecutedCommand", len(ep.executed)),
        "/episode_label": ("hiors_msgs/msg/EpisodeLabel", 1),
    }
    assert p.jumps == [] and p.duration_s == pytest.approx((ep.executed[-1].stamp_ns - ep.frames[0].stamp_ns) / 1e9)
    text = "\n".join(p.describe(rate=2.0))
    assert f"{len(p.offsets_s)} messages on 4 topics, lasting {p.duration_s / 2:.2f} s at rate 2" in text
    assert re.search(rf"\n  /observation +hiors_msgs/msg/Observation +{len(ep.frames)} messages\n", text)
    assert "warning" not in text


def test_a_bag_whose_clock_jumps_is_played_without_waiting_for_decades(tmp_path):
    p = plan(_old_style_bag(tmp_path / "old"))
    assert p.duration_s == pytest.approx(0.3)
    assert p.jumps == [Jump(4, "/episode/meta", pytest.approx((WALL_NS - 1_300_000_000) / 1e9))]
    assert "warning: the bag's clock jumps by 56.9 years before message 4 (/episode/meta)" in "\n".join(p.describe())


@pytest.mark.node
@pytest.mark.timeout(30)  # waiting the jump out would take 57 years
def test_replay_of_a_jumping_bag_finishes_and_publishes_everything(tmp_path):
    said = []
    start = time.monotonic()
    n = replay(_old_style_bag(tmp_path / "old"), rate=1.0, say=said.append)
    assert n == 5 and time.monotonic() - start < 10.0
    assert said[0].endswith("5 messages on 2 topics, lasting 0.30 s at rate 1") and "56.9 years" in said[-1]


def test_a_type_that_is_not_installed_names_the_bag_topic_and_type(tmp_path):
    bag = tmp_path / "foreign"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection("/x", "foo_msgs/msg/Bar", msgdef="int32 a", rihs01="RIHS01_" + "0" * 64)
        w.write(conn, 1, b"\x00\x01\x00\x00\x05\x00\x00\x00")
    with pytest.raises(EpisodeLogError, match=rf"{bag}: topic /x has message type foo_msgs/msg/Bar, which is not"):
        replay(bag, say=lambda _: None)
    with pytest.raises(EpisodeLogError, match="metadata.yaml missing"):
        replay(tmp_path, say=lambda _: None)
