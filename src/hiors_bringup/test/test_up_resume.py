"""`hiors up` on the folder of an earlier run resumes it: what it finds there, the one line it says, the options it
takes from the run, one `hiors up` per folder, the nodes a killed run left, episodes.csv's rows continuing, and the
disk checks before anything starts. No graph runs here (the end-to-end resume is in test_up_end_to_end.py)."""

import csv
import errno
import json
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest

from hiors_bringup import run_folder
from hiors_bringup.run_folder import (
    PIDS_FILE,
    RunLock,
    check_disk,
    check_identity,
    leftover_nodes,
    previous_run,
    stop_leftover_nodes,
    write_identity,
)
from hiors_bringup.up import EPISODE_FIELDS, Monitor, UpOptions, _no_interrupt, resumed_options, run_up
from hiors_core.episode_log import EpisodeLog
from hiors_core.errors import HiorsError
from hiors_testing.episodes import make_episode
from hiors_testing.ros import wait_for

IDENTITY = {"robot": "tora_one", "task": "raise_hand", "base": "", "policy": "", "seed": 3, "demos": 2}


def episodes_csv(run, ids):
    with open(run / "episodes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=EPISODE_FIELDS)
        w.writeheader()
        for i, eid in enumerate(ids, 1):
            w.writerow({"index": i, "episode_id": eid, "return": "0.8", "success": 1, "accepted": 1,
                        "reason": "accepted", "threshold": "0.55", "human_share": "0.1", "wall_s": f"{10.0 * i:.1f}"})  # fmt: skip


def earlier_run(run, episodes=("ep-000000", "ep-000001"), policy=True, learner=True):
    """A run folder as `hiors up` leaves it: run.json, episodes.csv, two demonstrations, the recorder's log (one
    more episode started than judged), the starting policy, the learner's checkpoint at 30 and metrics to 34."""
    run.mkdir(parents=True)
    write_identity(run, IDENTITY)
    episodes_csv(run, episodes)
    demos = EpisodeLog(run / "demos")
    for i in range(2):
        demos.write_episode(make_episode(episode_id=f"demo-{i:06d}", steps=6, human=(), sample_every=1, seed=i))
    log = EpisodeLog(run / "episodes")
    for i in range(len(episodes) + 1):
        log.write_episode(make_episode(episode_id=f"ep-{i:06d}", steps=6, human=(), sample_every=1, seed=i))
    if policy:
        from hiors_policy.checkpoint import build_tiny_policy

        build_tiny_policy("tora_one", "raise_hand", seed=0, out_dir=run / "policy")
    if learner:
        ckpt = run / "learner" / "checkpoints" / "ckpt-00000030"
        ckpt.mkdir(parents=True)
        state = {"step": 30, "threshold": {"current": 0.56, "recent": []}, "seen": ["demo-000000", "demo-000001"]}
        (ckpt / "state.json").write_text(json.dumps(state))
        (run / "learner" / "checkpoints" / "latest").write_text(ckpt.name)
        rows = ["step,time,loss,lr,threshold"] + [f"{s},0,1.0,0.001,{0.5 + s / 1000:.3f}" for s in range(1, 35)]
        (run / "learner" / "metrics.csv").write_text("\n".join(rows) + "\n")
    return run


def test_a_fresh_folder_has_no_previous_run(tmp_path):
    assert previous_run(tmp_path / "new") is None
    (tmp_path / "empty").mkdir()
    assert previous_run(tmp_path / "empty") is None


def test_an_earlier_run_is_found_and_said_in_one_line(tmp_path):
    run = earlier_run(tmp_path / "run")
    prev = previous_run(run)
    assert prev.identity == IDENTITY
    assert (prev.episodes, prev.started, prev.demos, prev.policy, prev.wall_s) == (2, 3, 2, True, 20.0)
    assert prev.episode_ids == {"ep-000000", "ep-000001"}
    assert (prev.learner.step, prev.learner.lost_steps, prev.learner.m) == (30, 4, 0.56)
    assert prev.line(run, 5) == (
        f"hiors up: resuming the run in {run}: 2 of 5 episodes done, 2 demonstrations, its starting policy, "
        "learner step 30 (checkpoint), m=0.560, 4 learner step(s) since it lost"
    )


def test_a_learner_without_a_checkpoint_is_said_to_start_over(tmp_path):
    run = earlier_run(tmp_path / "run", learner=False, policy=False)
    (run / "learner").mkdir()
    (run / "learner" / "metrics.csv").write_text("step,time,loss,lr,threshold\n1,0,1,0.1,0.5\n2,0,1,0.1,0.511\n")
    line = previous_run(run).line(run, 4)
    assert "learner step 0 (no checkpoint yet), m=0.511, 2 learner step(s) since it lost" in line
    assert "its starting policy" not in line


def test_a_resumed_run_takes_what_it_started_with_unless_given(tmp_path):
    prev = previous_run(earlier_run(tmp_path / "run", policy=False, learner=False))
    opts = resumed_options(UpOptions(robot="tora_one"), prev)
    assert (opts.task, opts.seed, opts.demos, opts.base, opts.policy) == ("raise_hand", 3, 2, "", "")
    assert resumed_options(UpOptions(robot="tora_one", seed=5, demos=4), prev).seed == 5
    assert resumed_options(UpOptions(robot="tora_one"), None).seed == 0  # a fresh run: seed 0 by default


def test_a_run_started_otherwise_is_refused_naming_what_differs(tmp_path):
    with pytest.raises(HiorsError, match=r"task 'pack_detergent' \(the run's: 'raise_hand'\)") as e:
        check_identity(tmp_path, IDENTITY, {**IDENTITY, "task": "pack_detergent"})
    assert str(tmp_path) in str(e.value)
    check_identity(tmp_path, {}, IDENTITY)  # a folder from before run.json: nothing to compare


def test_one_hiors_up_per_run_folder(tmp_path):
    lock = RunLock(tmp_path)
    with pytest.raises(HiorsError, match=rf"in use by another `hiors up` \(pid {os.getpid()}\)"):
        RunLock(tmp_path)
    lock.release()
    RunLock(tmp_path).release()


def test_monitor_rows_continue_the_runs_index_and_time_and_skip_episodes_it_has(tmp_path):
    run = earlier_run(tmp_path / "run", policy=False, learner=False)
    monitor = Monitor(run, quiet=True, previous=previous_run(run))
    try:
        for eid in ("ep-000001", "ep-000002"):  # ep-000001 re-sent by the recorder: it has its row
            monitor._on_episode(SimpleNamespace(episode_id=eid, human_steps=1, control_steps=10, interventions=1,
                                                max_policy_version=4))  # fmt: skip
            monitor._on_verdict(SimpleNamespace(episode_id=eid, episode_return=0.9, accepted=True, reason="accepted",
                                                threshold=0.6, samples_kept=5))  # fmt: skip
        assert monitor.count() == 1
    finally:
        monitor.close()
    with open(run / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["index"], r["episode_id"]) for r in rows] == [("1", "ep-000000"), ("2", "ep-000001"), ("3", "ep-000002")]
    assert float(rows[-1]["wall_s"]) >= 20.0


def test_a_run_with_all_its_episodes_starts_nothing_and_says_so(tmp_path, capsys):
    run = earlier_run(tmp_path / "run")
    policy_bytes = (run / "policy" / "model.safetensors").read_bytes()
    assert run_up(UpOptions(robot="tora_one", episodes=2, run_dir=str(run))) == 0
    out = capsys.readouterr().out
    assert "resuming the run" in out and "the run has its 2 episodes; give --episodes more than 2" in out
    assert "started" not in out and "recorded" not in out and not (run / "params").exists()
    assert len(EpisodeLog(run / "demos").ids()) == 2  # demonstrations recorded once
    assert (run / "policy" / "model.safetensors").read_bytes() == policy_bytes  # policy/ not rebuilt
    assert "episodes: 2" in (run / "summary.txt").read_text()


def test_leftover_nodes_of_a_killed_run_are_waited_for_then_stopped(tmp_path):
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    params = run / "params" / "sim.yaml"
    # A stand-in node: its command line names the run's params folder, as a node process's does.
    node = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--params-file", str(params)])
    try:
        (run / PIDS_FILE).write_text(f"sim {node.pid}\nrecorder 999999999\n")
        # (until the child has exec'd, its command line is this test's) A dead pid, or another's, is no leftover.
        wait_for(lambda: leftover_nodes(run) == {"sim": node.pid}, 30, "the stand-in node seen as a leftover")
        said = []
        stop_leftover_nodes(run, said.append, timeout_s=0.5)
        assert node.poll() is not None and leftover_nodes(run) == {}
        assert said == ["hiors up: waiting for 1 node(s) of the previous run to stop: sim"]
    finally:
        if node.poll() is None:
            node.kill()
        node.wait()


def test_a_read_only_run_folder_is_refused_in_one_line(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes into a read-only folder: the write fails as it would for a user
        real_open = os.open

        def refuse(path, *a, **kw):
            if str(path).startswith(str(ro)):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, *a, **kw)

        monkeypatch.setattr(run_folder.os, "open", refuse)
    try:
        with pytest.raises(HiorsError, match=rf"^run folder {ro} is not writable: permission denied$"):
            check_disk(ro, 0)
        with pytest.raises(HiorsError, match=rf"^run folder {ro} is not writable: permission denied$"):
            run_up(UpOptions(robot="tora_one", episodes=1, demos=1, run_dir=str(ro)))
    finally:
        ro.chmod(0o755)


def test_a_run_folder_on_a_full_disk_is_refused_before_anything_starts(tmp_path, monkeypatch, capsys):
    free = SimpleNamespace(total=100 << 20, used=95 << 20, free=5 << 20)
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: free)
    with pytest.raises(HiorsError, match=r"5 MiB free on its disk, the run needs about \d+ MiB") as e:
        run_up(UpOptions(robot="tora_one", episodes=2, demos=1, run_dir=str(tmp_path / "run")))
    assert str(tmp_path / "run") in str(e.value) and "\n" not in str(e.value)
    assert capsys.readouterr().out == ""  # nothing started, nothing said
    assert not (tmp_path / "run" / "demos").exists()


def test_free_bytes_looks_at_the_nearest_existing_folder(tmp_path):
    assert run_folder.free_bytes(tmp_path / "not" / "yet") == run_folder.free_bytes(tmp_path)


def test_the_lock_file_names_its_holder(tmp_path):
    lock = RunLock(tmp_path)
    try:
        assert (tmp_path / run_folder.LOCK_FILE).read_text().strip() == str(os.getpid())
    finally:
        lock.release()


def test_a_ctrl_c_while_the_run_stops_and_sums_up_is_ignored():
    before = signal.getsignal(signal.SIGINT)
    with _no_interrupt():
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt here otherwise
    assert signal.getsignal(signal.SIGINT) == before


def test_the_episode_line_shows_no_loss_before_the_learners_first_step(tmp_path, capsys):
    monitor = Monitor(tmp_path, quiet=False)
    try:
        monitor.status = SimpleNamespace(step=0, loss=float("nan"), threshold=0.5, buffer_samples=0)
        ep = SimpleNamespace(episode_id="ep-000000", human_steps=0, control_steps=10, interventions=0,
                             max_policy_version=0)  # fmt: skip
        monitor._on_episode(ep)
        monitor._on_verdict(SimpleNamespace(episode_id="ep-000000", episode_return=0.0, accepted=False,
                                            reason="return_below_threshold", threshold=0.5, samples_kept=0))  # fmt: skip
    finally:
        monitor.close()
    line = capsys.readouterr().out
    assert "step     0 loss -" in line and "nan" not in line
    assert monitor.progress() == "episode 2 under way; learner step 0, m=0.50, 0 samples in its buffer"
