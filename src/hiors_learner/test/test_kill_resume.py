"""SIGKILL a learner process mid-training, restart it: it resumes from the last checkpoint and backfills the
episodes logged while it was down; nothing lost, nothing twice, weight versions keep rising."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hiors_core.episode_log import EpisodeLog
from hiors_testing.episodes import make_episode
from hiors_testing.ros import wait_for

HERE = Path(__file__).resolve().parent


def ckpt_state(run):
    try:
        name = (run / "checkpoints" / "latest").read_text().strip()
        return json.loads((run / "checkpoints" / name / "state.json").read_text())
    except (OSError, ValueError):
        return None


def start(run, log):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    args = {
        "run_dir": str(run),
        "log_dir": str(log),
        "policy_factory": "test_learner_nodes:fake_factory",
        "horizon": 4,
        "batch_size": 4,
        "checkpoint_every": 3,
        "publish_every": 2,
        "warmup_steps": 0,
        "noop_enabled": False,
    }
    cmd = [sys.executable, "-m", "hiors_learner.learner_node", "--ros-args"]
    for k, v in args.items():
        cmd += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(120)
def test_sigkill_and_resume(tmp_path):
    log = EpisodeLog(tmp_path / "log")
    run = tmp_path / "run"
    for i in range(3):
        log.write_episode(make_episode(episode_id=f"ep-{i:06d}", steps=8, human=(), sample_every=1, seed=i))
    p = start(run, log.root)
    try:
        wait_for(lambda: (ckpt_state(run) or {}).get("step", 0) >= 6, 60, "a checkpoint at step >= 6")
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    before = ckpt_state(run)
    versions_before = int((run / "weights" / "published_version").read_text())
    assert before["seen"] == [f"ep-{i:06d}" for i in range(3)]
    for i in (3, 4):  # logged while the learner was down
        log.write_episode(make_episode(episode_id=f"ep-{i:06d}", steps=8, human=(), sample_every=1, seed=i))
    p = start(run, log.root)
    try:
        wait_for(lambda: (ckpt_state(run) or {}).get("step", 0) > before["step"] + 3, 60, "a checkpoint after resume")
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
    after = ckpt_state(run)
    assert after["seen"] == [f"ep-{i:06d}" for i in range(5)]  # nothing lost, each once
    assert after["active"] == after["seen"]
    assert after["pacer"]["received"] == 5 * 8  # every sample counted exactly once across the restart
    assert int((run / "weights" / "published_version").read_text()) > versions_before
    steps = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:] if r[:1].isdigit()]
    # Training continued from the checkpoint, not from scratch, and the rows of the steps lost with the kill were
    # dropped: one history, each step once.
    assert steps == list(range(1, len(steps) + 1))
    # The SIGINT stop checkpointed its last step: a restart now would lose nothing.
    assert after["step"] == steps[-1]
    m = [float(r.split(",")[4]) for r in (run / "metrics.csv").read_text().splitlines()[1:] if r[:1].isdigit()]
    assert m == sorted(m)  # m never went down across the restart
