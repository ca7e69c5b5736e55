"""Pure tests of the recorder's decisions (hiors_teleop.recording, no rclpy): the episode state machine, the sample
frames and stamps, the episode ids, and the disk side run job by job on a real episode log."""

import math
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from hiors_core.convert_ros import observation_msg
from hiors_core.episode_log import STATUS_ACKED, STATUS_COMPLETE, STATUS_INCOMPLETE, EpisodeLog
from hiors_core.schema import AUTHORITY_HUMAN, AUTHORITY_POLICY, EpisodeMeta, Executed, Frame, Label
from hiors_teleop.recording import (
    AWAITING_LABEL,
    IDLE,
    MIB,
    RECORDING,
    Ack,
    Close,
    Cut,
    EpisodeMachine,
    EpisodeSink,
    Open,
    RecordExecuted,
    RecordFrame,
    Recover,
    Resend,
    Stop,
    log_space,
    rising_buttons,
    space_problem,
)

META = EpisodeMeta("", "tora_one", "raise_hand", "raise the left hand", 1, tuple(f"a{i}" for i in range(8)))
WIN = Label(1.0, True, "test", 5)


def cmd(step, stamp_ns, sample=False, human=False) -> Executed:
    return Executed(
        step=step,
        stamp_ns=stamp_ns,
        action=np.full(8, step, np.float32),
        authority=AUTHORITY_HUMAN if human else AUTHORITY_POLICY,
        is_sample=sample,
    )


def obs(seq, stamp_ns, names=("x", "y")):
    frame = Frame(
        seq, stamp_ns, {"top": np.full((4, 4, 3), seq, np.uint8)}, np.full(len(names), seq, np.float32), names
    )
    return observation_msg(frame, "tora_one", "raise_hand")


def test_the_decisions_are_pure():
    code = "import sys, hiors_teleop.recording; sys.exit('rclpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0, "recording.py imports rclpy"


# --- the state machine -----------------------------------------------------------------------------------------------


def test_start_end_and_label_walk_the_states():
    m = EpisodeMachine()
    out = m.start("ep-000000", META)
    assert out.ok and out.episode_id == "ep-000000" and out.status == "ep-000000" and m.state == RECORDING
    assert out.jobs == (Open(replace(META, episode_id="ep-000000")),)
    again = m.start("ep-000001", META)
    assert not again.ok and again.message == "already recording ep-000000" and not again.jobs
    out = m.end()
    assert out.ok and out.message == "ended; waiting for a label" and out.status == "" and not out.jobs
    assert m.state == AWAITING_LABEL
    out = m.label(WIN)
    assert out.ok and out.jobs == (Close(WIN),) and m.state == IDLE and m.episode_id == ""
    assert not m.end().ok and not m.label(WIN).ok and m.refused_labels == 1


def test_a_label_while_recording_ends_it_or_waits_for_the_end():
    m = EpisodeMachine(end_on_label=True)
    m.start("ep-000000", META)
    assert m.label(WIN, "ep-000000").jobs == (Close(WIN),) and m.state == IDLE
    m = EpisodeMachine(end_on_label=False)
    m.start("ep-000000", META)
    out = m.label(WIN)
    assert out.ok and out.message == "label kept until the episode ends" and not out.jobs and m.state == RECORDING
    assert m.end().jobs == (Close(WIN),)  # the kept label


@pytest.mark.parametrize("reward", [math.nan, math.inf, -math.inf])
def test_non_finite_rewards_and_other_episodes_are_refused_and_counted(reward):
    m = EpisodeMachine()
    m.start("ep-000000", META)
    assert not m.label(Label(reward, True, "x"), "ep-000000").ok
    assert not m.end(Label(reward, True, "x")).ok
    assert not m.label(WIN, "ep-999999").ok
    assert not m.end(WIN, "ep-999999").ok  # (an end for another episode is refused, not counted as a label)
    assert m.refused_labels == 3 and m.state == RECORDING


def test_an_unlabelled_episode_is_cut_when_the_next_starts_and_at_shutdown():
    m = EpisodeMachine()
    m.start("ep-000000", META)
    for t in range(3):
        m.executed(cmd(t, 100 + t))
    m.end()
    out = m.start("ep-000001", META)
    assert isinstance(out.jobs[0], Cut) and isinstance(out.jobs[1], Open)
    assert out.jobs[0].reason == "the next episode started before its label came (3 steps)"
    assert m.shutdown() == Stop("the run ended while it was being recorded (0 steps, no label)")
    assert m.state == IDLE and EpisodeMachine().shutdown() == Stop("")


def test_episode_ids_are_never_reused_or_suffixed():
    m = EpisodeMachine()
    assert m.issue_id("ep-000003") == "ep-000003"
    # The log did not record ep-000003 (its writer could not open it): the log offers it again.
    assert m.issue_id("ep-000003") == "ep-000004"
    assert m.issue_id("ep-000003") == "ep-000005"
    assert m.issue_id("ep-000007") == "ep-000007"


def test_refused_start_issues_no_id():
    m = EpisodeMachine()
    out = m.start("ep-000000", META, refuse="only 10 bytes free")
    assert not out.ok and out.message == "not starting an episode: only 10 bytes free" and m.state == IDLE
    assert not m.issued and not out.jobs


def test_commands_are_renumbered_and_their_stamps_strictly_increase():
    m = EpisodeMachine()
    assert m.executed(cmd(7, 100)) == []  # not recording
    m.start("ep-000000", META)
    stamps = [100, 140, 220, 220, 260]
    jobs = [j for t, s in enumerate(stamps) for j in m.executed(cmd(1000 + t, s))]
    recorded = [j.executed for j in jobs]
    assert [e.step for e in recorded] == [0, 1, 2, 3, 4]
    assert [e.stamp_ns for e in recorded] == [100, 140, 220, 221, 260]
    assert m.dropped_commands == 0


def test_gaps_in_the_arbiters_steps_are_counted_as_lost():
    m = EpisodeMachine()
    m.start("ep-000000", META)
    for step in (10, 11, 14, 15, 17, 3):  # 3: the arbiter restarted
        m.executed(cmd(step, step))
    assert m.dropped_commands == 3 and m.step == 6


def test_a_sample_records_the_observation_its_command_saw():
    m = EpisodeMachine()
    m.start("ep-000000", META)
    jobs = m.executed(cmd(0, 100, sample=True))  # no observation yet: the command only, counted
    assert [type(j) for j in jobs] == [RecordExecuted] and m.missing_obs == 1
    m.observe(130, "o130")
    m.observe(150, "o150")  # captured after the command at 140
    frame, _ = m.executed(cmd(1, 140, sample=True))
    assert frame == RecordFrame("o130", 1, 130)  # between the previous command and this one: its own stamp
    frame, _ = m.executed(cmd(2, 200, sample=True))
    assert frame == RecordFrame("o150", 2, 150)
    frame, _ = m.executed(cmd(3, 300, sample=True))  # no newer one: the same frame again, at this command's stamp
    assert frame == RecordFrame("o150", 3, 300)
    assert len(m.executed(cmd(4, 320, sample=False))) == 1  # not a sample: the command only
    m = EpisodeMachine()
    m.start("ep-000001", META)
    m.observe(500, "o500")
    frame, _ = m.executed(cmd(0, 310, sample=True))  # only newer ones: the latest, at this command's stamp
    assert frame == RecordFrame("o500", 0, 310)


def test_rising_buttons():
    assert rising_buttons([], [0, 1, 0, 1]) == [1, 3]
    assert rising_buttons([0, 1, 0, 1], [0, 1, 1, 1]) == [2]
    assert rising_buttons([1, 1, 1, 1], [0, 0]) == []


# --- the disk side ---------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def run(sink, *jobs):
    return [e for j in jobs for e in sink.handle(j)]


def test_sink_writes_an_episode_and_hands_it_over(tmp_path):
    log = EpisodeLog(tmp_path)
    sink = EpisodeSink(log)
    m = EpisodeMachine()
    jobs = list(m.start(log.new_episode_id(), META).jobs)
    for t in range(6):
        stamp = 1_000 + 40 * t
        if t == 2:  # the first observation comes after two commands: the bag opens there, nothing is lost
            m.observe(stamp - 1, obs(t, stamp - 1))
        jobs += m.executed(cmd(t, stamp, sample=t >= 2, human=t in (3, 4)))
    jobs += m.end(WIN).jobs
    events = run(sink, *jobs)
    assert [e.kind for e in events] == ["handover"]
    ep = events[0].episode
    assert events[0].episode_id == "ep-000000" and ep.label.success
    assert [float(e.action[0]) for e in ep.executed] == [0, 1, 2, 3, 4, 5]
    assert [f.step for f in ep.frames] == [2, 3, 4, 5] and ep.human_mask.tolist() == [t in (3, 4) for t in range(6)]
    assert ep.meta.state_names == ("x", "y") and ep.meta.camera_names == ("top",)
    assert log.entries()["ep-000000"].status == STATUS_COMPLETE


def test_sink_cuts_and_stops_open_episodes_as_incomplete(tmp_path):
    log = EpisodeLog(tmp_path)
    sink = EpisodeSink(log)
    meta = replace(META, episode_id="ep-000000", state_names=("x", "y"))
    events = run(sink, Open(meta), RecordExecuted(cmd(0, 10)), Cut("the next episode started"))
    assert [e.kind for e in events] == ["warn"] and "ep-000000 marked incomplete" in events[0].text
    never_observed = replace(META, episode_id="ep-000001")  # still open at the stop, no observation seen
    run(sink, Open(never_observed), RecordExecuted(cmd(0, 10)), Stop(""))
    entries = log.entries()
    assert entries["ep-000000"].status == STATUS_INCOMPLETE and entries["ep-000000"].steps == 1
    assert entries["ep-000001"].status == STATUS_INCOMPLETE
    assert entries["ep-000001"].reason == "the run ended before it was closed" and entries["ep-000001"].steps == 1
    assert log.trainable_ids() == []


def test_sink_refuses_a_bad_frame_and_goes_on(tmp_path):
    log = EpisodeLog(tmp_path)
    sink = EpisodeSink(log)
    m = EpisodeMachine()
    jobs = list(m.start("ep-000000", META).jobs)
    m.observe(5, obs(0, 5))
    jobs += m.executed(cmd(0, 10, sample=True))
    bad = obs(1, 15)
    bad.state = [math.nan, 0.0]
    m.observe(15, bad)
    jobs += m.executed(cmd(1, 20, sample=True))
    jobs += m.end(WIN).jobs
    events = run(sink, *jobs)
    assert [e.kind for e in events] == ["error", "handover"] and events[0].text.startswith("recorder frame: ")
    assert sink.refused_frames == 1 and len(events[1].episode.frames) == 1 and len(events[1].episode.executed) == 2


def test_sink_resends_until_acknowledged(tmp_path):
    log = EpisodeLog(tmp_path)
    clock = Clock()
    sink = EpisodeSink(log, resend_period_s=5.0, clock=clock)
    meta = replace(META, episode_id="ep-000000", state_names=("x", "y"))
    assert [e.kind for e in run(sink, Open(meta), RecordExecuted(cmd(0, 10)), Close(WIN))] == ["handover"]
    clock.t = 4.0
    assert run(sink, Resend()) == []
    clock.t = 5.0
    assert [e.episode_id for e in run(sink, Resend())] == ["ep-000000"]
    assert run(sink, Ack("ep-000000"), Ack("ep-999999")) == []  # an unknown id is ignored
    assert log.entries()["ep-000000"].status == STATUS_ACKED
    clock.t = 100.0
    assert run(sink, Resend(), Recover()) == []


def test_sink_at_start_up_hands_over_what_was_never_acknowledged(tmp_path):
    log = EpisodeLog(tmp_path)
    meta = replace(META, episode_id="ep-000000", state_names=("x", "y"))
    run(EpisodeSink(log), Open(meta), Close(WIN))
    events = run(EpisodeSink(log), Recover())
    assert [(e.kind, e.episode_id) for e in events] == [("handover", "ep-000000")]


# --- a full or unwritable disk ---------------------------------------------------------------------------------------


def test_space_problem_names_what_is_wrong(tmp_path):
    assert space_problem(tmp_path, 10 * MIB, (20 * MIB, True, "")) == ""
    assert space_problem(tmp_path, 10 * MIB, (5 * MIB, True, "")) == (
        f"only 5.0 MiB free under {tmp_path} (min_free_bytes 10.0 MiB)"
    )
    assert space_problem(tmp_path, 0, (0, False, "")) == f"{tmp_path} is not writable"
    assert space_problem(tmp_path, 0, (None, True, "gone")) == f"cannot read the free space under {tmp_path} (gone)"
    free, writable, why = log_space(tmp_path)
    assert free > 0 and writable and why == ""


class Disk:
    """Free space as the sink sees it (the real folder stays writable)."""

    def __init__(self, free):
        self.free = free

    def __call__(self, root):
        return self.free, True, ""


def test_no_episode_opens_on_a_disk_without_room(tmp_path):
    log = EpisodeLog(tmp_path)
    sink = EpisodeSink(log, min_free_bytes=10 * MIB, space=Disk(MIB))
    events = run(sink, Open(replace(META, episode_id="ep-000000", state_names=("x",))), RecordExecuted(cmd(0, 1)))
    assert [(e.kind, e.episode_id) for e in events] == [("stopped", "ep-000000")]
    assert events[0].text == (
        f"episode ep-000000 stopped: only 1.0 MiB free under {tmp_path} (min_free_bytes 10.0 MiB); not recorded"
    )
    assert log.entries() == {} and sink.stopped == 1 and sink.failure.startswith("only 1.0 MiB free")


def test_an_episode_is_stopped_once_when_free_space_runs_low(tmp_path):
    log, disk, clock = EpisodeLog(tmp_path), Disk(100 * MIB), Clock()
    sink = EpisodeSink(log, min_free_bytes=10 * MIB, space=disk, clock=clock)
    m = EpisodeMachine()
    jobs = list(m.start("ep-000000", replace(META, state_names=("x", "y"))).jobs)
    jobs += m.executed(cmd(0, 10)) + m.executed(cmd(1, 20))
    assert run(sink, *jobs) == []
    disk.free = 5 * MIB
    assert run(sink, *m.executed(cmd(2, 30))) == []  # checked once a second
    clock.t = 1.0
    events = run(sink, *m.executed(cmd(3, 40)))
    assert [e.kind for e in events] == ["stopped"] and "ep-000000 stopped: only 5.0 MiB free" in events[0].text
    assert events[0].text.endswith("; marked incomplete")
    assert m.stopped("ep-000000").status == "" and m.state == IDLE
    clock.t = 2.0
    assert run(sink, RecordExecuted(cmd(4, 50)), Close(WIN)) == []  # (queued before the machine knew): nothing
    entry = log.entries()["ep-000000"]
    assert entry.status == STATUS_INCOMPLETE and entry.steps == 3 and entry.reward is None
    assert entry.reason == f"stopped: only 5.0 MiB free under {tmp_path} (min_free_bytes 10.0 MiB)"
    assert len(log.read("ep-000000", allow_incomplete=True).executed) == 3


def test_a_write_the_disk_refuses_stops_the_episode_at_the_first_failure(tmp_path):
    """A real ENOSPC: the bag's file descriptor is pointed at /dev/full mid-episode."""
    log = EpisodeLog(tmp_path)
    sink = EpisodeSink(log)
    m = EpisodeMachine()
    jobs = list(m.start(log.new_episode_id(), replace(META, state_names=("x", "y"))).jobs)
    jobs += m.executed(cmd(0, 10))
    assert run(sink, *jobs) == []
    storage = sink.writer._writer.storage  # rosbags' MCAP writer: its file
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        os.dup2(full, storage.bio.fileno())
    finally:
        os.close(full)
    sink.writer.FLUSH_EVERY_S = 0.0  # push each chunk to the disk at once
    events = [e for t in range(1, 40) for e in sink.handle(m.executed(cmd(t, 10 + t))[0])]
    assert [e.kind for e in events] == ["stopped"], events  # one, however many writes come after
    assert "ep-000000 stopped: writing it failed: [Errno 28] No space left on device" in events[0].text
    assert "its bag could not be closed" in events[0].text
    m.stopped("ep-000000")
    # The next episode gets the next id, and the stopped one is marked incomplete before it opens.
    out = m.start(log.new_episode_id(), replace(META, state_names=("x", "y")))
    assert out.episode_id == "ep-000001"
    events = run(sink, *out.jobs, *m.executed(cmd(0, 100)), *m.end(WIN).jobs)
    assert [e.kind for e in events] == ["warn", "handover"] and events[0].text.startswith("episode ep-000000: ")
    entries = log.entries()
    assert entries["ep-000000"].status == STATUS_INCOMPLETE and entries["ep-000001"].status == STATUS_COMPLETE
    # The mark carries the true reason, then what the salvage found.
    assert entries["ep-000000"].reason.startswith("stopped: writing it failed: [Errno 28] No space left on device (")
    assert sorted(entries) == ["ep-000000", "ep-000001"] and sink.failure == ""
