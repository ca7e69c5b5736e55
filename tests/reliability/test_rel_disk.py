"""Reliability, the disk: a full or unwritable episode log never goes unnoticed. No episode starts without room
(each refused start is counted, logged once and shown on /diagnostics); a write the disk refuses (a real ENOSPC:
the bag's file descriptor pointed at /dev/full) stops the episode at once with one line, marks it incomplete with
the reason, and the next episode gets the next id. (`hiors up` stopping on it: test_up_end_to_end.py.)"""

import os

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from rclpy.parameter import Parameter
from rel_support import record
from std_msgs.msg import String

from hiors_core import topics
from hiors_core.episode_log import EpisodeLog
from hiors_core.schema import Label
from hiors_teleop.recorder import Recorder
from hiors_testing.recorder_feed import record_commands
from hiors_testing.ros import LogLines, ros_context, spinning, wait_for

pytestmark = pytest.mark.node


def _diagnostics_probe(ctx):
    from diagnostic_msgs.msg import DiagnosticArray

    probe = Node("recorder_diag_probe", context=ctx)
    got = []
    probe.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, got.append, topics.qos(topics.DIAGNOSTICS))

    def log_state():
        for arr in reversed(got):
            for st in arr.status:
                if st.name.endswith("recorder: episode log"):
                    return {kv.key: kv.value for kv in st.values}, st.level, st.message
        return None

    return probe, log_state


def test_no_episode_starts_without_room_on_the_disk(tmp_path):
    with ros_context() as ctx:
        rec = Recorder(
            context=ctx,
            parameter_overrides=[Parameter("log_dir", value=str(tmp_path)), Parameter("min_free_bytes", value=2**50)],
        )
        probe, log_state = _diagnostics_probe(ctx)
        log = LogLines()
        rec.get_logger = lambda: log
        try:
            with spinning([rec, probe], context=ctx):
                for _ in range(3):
                    ok, eid, why = rec.start(task="raise_hand")
                    assert not ok and eid == "" and why.startswith("not starting an episode: only ")
                    assert why.endswith(f"free under {tmp_path} (min_free_bytes 1073741824.0 MiB)")
                assert rec.state == "idle" and rec.refused_starts == 3 and not rec.core.issued
                wait_for(lambda: log_state() is not None and log_state()[0]["starts_refused"] == "3", what="diag")
                values, level, message = log_state()
                assert values["log_state"] == "refusing"
                assert level == DiagnosticStatus.ERROR and message == why[len("not starting an episode: ") :]
                assert values["starts_refused"] == "3" and values["min_free_bytes"] == str(2**50)
        finally:
            rec.shutdown()
            rec.destroy_node()
            probe.destroy_node()
    assert [level for level, _ in log.lines if level == "error"] == ["error"] * 3  # one line per refused start
    assert EpisodeLog(tmp_path).entries() == {}
    record("disk", "episode starts refused without room on the disk (one line each, counted, /diagnostics error)", 3, 3)


def test_a_full_disk_stops_the_episode_with_one_line_and_ids_stay_consistent(tmp_path):
    """A real ENOSPC mid-episode (the bag's file descriptor pointed at /dev/full): the episode stops at the first
    failed write with one error line, the status says nothing is recorded, the diagnostics say `failed`; commands
    that keep coming write nothing and log nothing; the next episode is ep-000001 and the stopped one is incomplete."""
    with ros_context() as ctx:
        rec = Recorder(context=ctx, parameter_overrides=[Parameter("log_dir", value=str(tmp_path))])
        probe, log_state = _diagnostics_probe(ctx)
        statuses = []
        probe.create_subscription(String, topics.EPISODE_STATUS, statuses.append, topics.qos(topics.EPISODE_STATUS))
        log = LogLines()
        rec.get_logger = lambda: log
        try:
            with spinning([rec, probe], context=ctx):
                ok, eid, _ = rec.start(task="raise_hand")
                assert ok and eid == "ep-000000"
                record_commands(rec, 3)
                wait_for(lambda: rec.sink.writer is not None and rec.sink.writer.steps == 3, what="the bag open")
                full = os.open("/dev/full", os.O_WRONLY)
                os.dup2(full, rec.sink.writer._writer.storage.bio.fileno())
                os.close(full)
                rec.sink.writer.FLUSH_EVERY_S = 0.0
                record_commands(rec, 5, 2_000_000_000)
                wait_for(lambda: rec.state == "idle", what="the episode stopped")
                record_commands(rec, 50, 3_000_000_000)  # the operator goes on: nothing recorded, nothing logged
                wait_for(lambda: rec.jobs_done >= rec.jobs.unfinished_tasks, what="the writer idle")
                wait_for(lambda: log_state() is not None and log_state()[0]["log_state"] == "failed", what="diag")
                assert log_state()[1] == DiagnosticStatus.ERROR and log_state()[0]["episodes_stopped"] == "1"
                wait_for(lambda: statuses and statuses[-1].data == "", what="episode_status cleared")
                assert not rec.label(Label(1.0, True, "oracle"), eid)[0]  # its label is refused
                ok, eid2, _ = rec.start(task="raise_hand")
                assert ok and eid2 == "ep-000001"
                record_commands(rec, 4, 4_000_000_000)
                assert rec.end(Label(reward=1.0, success=True, source="test", stamp_ns=5_000_000_000))[0]
                wait_for(lambda: eid2 in rec.published, what="the next episode handed over")
                wait_for(lambda: log_state()[0]["log_state"] == "ok", what="diagnostics back to ok")
        finally:
            rec.shutdown()
            rec.destroy_node()
            probe.destroy_node()
    errors = [m for level, m in log.lines if level == "error"]
    assert len(errors) == 1, errors
    assert errors[0].startswith("episode ep-000000 stopped: writing it failed: [Errno 28] No space left on device")
    entries = EpisodeLog(tmp_path).entries()
    assert sorted(entries) == ["ep-000000", "ep-000001"]
    assert entries["ep-000000"].status == "incomplete" and entries["ep-000001"].status == "complete"
    assert entries["ep-000000"].reason.startswith("stopped: writing it failed: [Errno 28] No space left on device")
    record(
        "disk",
        "an episode whose write the disk refused (ENOSPC): stopped with one line, incomplete with the reason, next id",
        len(errors),
        1,
    )
