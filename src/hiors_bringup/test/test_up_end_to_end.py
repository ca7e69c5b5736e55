"""End to end: `hiors up <robot> --sim` runs the whole Hi-ORS loop as separate node processes, then we open the
bags it wrote. One short run per robot (2 demonstrations, 2 online episodes) on the tiny pi0."""

import csv
import json
import math
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from rosbags.highlevel import AnyReader

from hiors_bringup.up import UpOptions, run_up
from hiors_core.episode_log import BAG_TOPIC_EXECUTED, BAG_TOPIC_LABEL, BAG_TOPIC_OBSERVATION, EpisodeLog
from hiors_core.msg_types import typestore
from hiors_core.schema import AUTHORITY_HUMAN, AUTHORITY_POLICY

pytestmark = pytest.mark.e2e

EPISODES = 2


@pytest.fixture(scope="module", params=["tora_one", "xtrainer"])
def run(request, tmp_path_factory):
    robot = request.param
    run_dir = tmp_path_factory.mktemp(f"up-{robot}")
    opts = UpOptions(
        robot=robot,
        episodes=EPISODES,
        demos=2,
        run_dir=str(run_dir),
        timeout_s=400.0,
        # Publish and checkpoint often so that a run this short still exercises both.
        # The robot idles 2 s between episodes (a reset takes that long on a real one) while the learner trains,
        # and the second episode waits for trained weights at the actor: on a loaded machine the learner may not
        # have published any before it, and the test is about the weights reaching the actor, not about speed.
        overrides=(
            ("learner", "publish_every", 5),
            ("learner", "checkpoint_every", 10),
            ("episode_runner", "pause_s", 2.0),
            ("episode_runner", "await_trained_policy_s", 180.0),
            # A watchful operator: the untrained policy swings the arm at full speed and can knock the object over
            # within a second, before a relaxed operator (7 cm, 0.4 s) would react.
            ("sim_operator", "near_object_m", 0.15),
            ("sim_operator", "reaction_delay_s", 0.2),
        ),
    )
    rc = run_up(opts, quiet=True)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((run_dir / "logs").glob("*.log")))
    assert rc == 0, f"hiors up failed (rc {rc}); node logs:\n{logs}"
    return robot, run_dir


def rows(run_dir):
    with open(run_dir / "episodes.csv") as f:
        return list(csv.DictReader(f))


def test_every_online_episode_has_a_verdict_consistent_with_its_return(run):
    _, run_dir = run
    table = rows(run_dir)
    assert len(table) == EPISODES
    assert len({r["episode_id"] for r in table}) == EPISODES
    for r in table:
        ret, m = float(r["return"]), float(r["threshold"])
        assert math.isfinite(ret) and 0.0 <= m <= 1.0
        if ret < m:  # rejected, by the threshold or by a filter checked before it (e.g. too_short)
            assert r["accepted"] == "0" and r["reason"] != "accepted"
        if r["accepted"] == "1":
            assert int(r["samples_kept"]) > 0


def test_bags_are_complete_labelled_and_mark_who_drove(run):
    robot, run_dir = run
    log = EpisodeLog(run_dir / "episodes")
    ids = [r["episode_id"] for r in rows(run_dir)]
    human_steps = 0
    for eid in ids:
        ep = log.read(eid)  # refuses an incomplete bag
        assert ep.meta.robot == robot and ep.label is not None and ep.label.source == "oracle"
        assert ep.frames and ep.executed
        steps = [e.step for e in ep.executed]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        assert all(np.isfinite(e.action).all() for e in ep.executed)
        human = [e for e in ep.executed if e.authority == AUTHORITY_HUMAN]
        policy = [e for e in ep.executed if e.authority == AUTHORITY_POLICY]
        human_steps += len(human)
        # Dual-frequency sampling: every human step is a sample, a policy step only once per chunk.
        assert all(e.is_sample for e in human)
        if policy:
            assert sum(e.is_sample for e in policy) < len(policy)
    # The untrained tiny policy drifts, so the simulated operator takes over at least once in the run.
    assert human_steps > 0


def test_bags_open_with_a_plain_rosbag2_reader(run):
    _, run_dir = run
    bag = EpisodeLog(run_dir / "episodes").path_of(rows(run_dir)[0]["episode_id"])
    with AnyReader([bag], default_typestore=typestore()) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        label = next(c for c in reader.connections if c.topic == BAG_TOPIC_LABEL)
        _, _, raw = next(reader.messages(connections=[label]))
        assert reader.deserialize(raw, label.msgtype).source == "oracle"
    assert counts[BAG_TOPIC_EXECUTED] > 0 and counts[BAG_TOPIC_OBSERVATION] > 0


def test_learner_trained_on_demos_and_the_actor_used_new_weights(run):
    _, run_dir = run
    with open(run_dir / "learner" / "metrics.csv") as f:
        metrics = list(csv.DictReader(f))
    assert metrics and all(math.isfinite(float(m["loss"])) for m in metrics)
    # The actor swapped in weights the learner trained (version 1 is the starting policy). The episodes' own
    # versions cannot show it when the operator happened to drive a whole episode (its version is then 0).
    log = (run_dir / "logs" / "policy.log").read_text()
    swapped = [int(line.rsplit(" ", 1)[1]) for line in log.splitlines() if "swapped in policy version" in line]
    assert swapped and max(swapped) >= 2, f"the actor swapped in no trained weights: {swapped}"
    versions = [int(r["policy_version"]) for r in rows(run_dir)]
    assert max(versions) <= max(swapped), f"episodes ran on versions {versions} the actor never had ({swapped})"
    ckpt = run_dir / "learner" / "checkpoints"
    state = json.loads((ckpt / (ckpt / "latest").read_text().strip() / "state.json").read_text())
    assert state["step"] >= 10
    assert any(eid.startswith("demo-") for eid in state["seen"]), "the initial demonstrations were not loaded"
    assert not set(state["active"]) - set(state["seen"])


def test_the_actor_and_the_learner_start_from_one_policy_normalised_on_the_demonstrations(run):
    robot, run_dir = run
    import yaml

    from hiors_core.episode_log import EpisodeLog as Log
    from hiors_policy.dataset_stats import stats_from_log
    from hiors_policy.policy import Pi0Policy

    policy = Pi0Policy.load(run_dir / "policy")
    expected = stats_from_log(run_dir / "demos", policy.config.state_names)
    assert len(Log(run_dir / "demos").trainable_ids()) == 2
    np.testing.assert_allclose(policy.norm.action_mean, expected.action_mean, rtol=1e-6)
    np.testing.assert_allclose(policy.norm.state_std, expected.state_std, rtol=1e-6)
    assert not np.allclose(policy.norm.action_std, 1.0)  # not the identity
    params = lambda node: yaml.safe_load((run_dir / "params" / f"{node}.yaml").read_text())[node]["ros__parameters"]  # noqa: E731
    assert params("policy")["checkpoint"] == params("learner")["policy_path"] == str(run_dir / "policy")


def test_the_recorded_run_exports_as_a_dataset_lerobots_loader_accepts(run, tmp_path):
    """`hiors export --lerobot --all` on the recorded bags: LeRobot v2's loader rules hold (timestamps 1/fps apart
    at its default tolerance, indices, features against the parquet columns), one row per executed command from the
    first recorded observation, and the `sampled` rows are the recorded observations, at both of Hi-ORS's rates."""
    from hiors_bringup.export import export_lerobot
    from hiors_testing.lerobot_v2 import check_lerobot_v2

    _, run_dir = run
    out = export_lerobot(run_dir, tmp_path / "lerobot", accepted_only=False, say=lambda _: None)
    info = check_lerobot_v2(out)
    log = EpisodeLog(run_dir / "episodes")
    entries = [json.loads(line) for line in (out / "meta" / "episodes.jsonl").read_text().splitlines()]
    assert entries and info["fps"] == log.read(entries[0]["hiors_episode_id"]).meta.control_rate_hz
    rate = {AUTHORITY_HUMAN: [0, 0], AUTHORITY_POLICY: [0, 0]}  # authority -> [sampled rows, rows]
    for e in entries:
        ep = log.read(e["hiors_episode_id"])
        table = pq.read_table(out / "data" / "chunk-000" / f"episode_{e['episode_index']:06d}.parquet").to_pydict()
        first = min(f.step for f in ep.frames)
        steps = [x for x in ep.executed if x.step >= first]
        assert e["length"] == len(steps) and table["authority"] == [x.authority for x in steps]
        np.testing.assert_allclose(table["action"], [x.action for x in steps], rtol=1e-6)
        frame_steps = {f.step for f in ep.frames}
        assert table["sampled"] == [x.step in frame_steps for x in steps]
        for authority, sampled in zip(table["authority"], table["sampled"], strict=True):
            if authority in rate:
                rate[authority][0] += sampled
                rate[authority][1] += 1
    (h_sampled, h_rows), (p_sampled, p_rows) = rate[AUTHORITY_HUMAN], rate[AUTHORITY_POLICY]
    assert p_rows and 0 < p_sampled < p_rows  # the policy's samples: once per chunk, not every step
    assert not h_rows or h_sampled / h_rows > p_sampled / p_rows  # the human's at the higher rate


def test_rejected_episodes_stay_in_the_log_complete_and_labelled(tmp_path):
    """The filter's other half, end to end: no operator and a threshold above any return (the paper bench's `bc`
    switches), so every online episode is rejected with its reason; it is still on disk, complete and labelled."""
    opts = UpOptions(
        robot="tora_one",
        episodes=1,
        demos=1,
        operator="never",
        run_dir=str(tmp_path),
        timeout_s=300.0,
        overrides=(
            ("learner", "threshold_kind", "constant"),  # the learner owns m; the filter reports its verdict
            ("learner", "threshold_initial", 2.0),
            ("episode_runner", "pause_s", 1.0),
        ),
    )
    assert run_up(opts, quiet=True) == 0
    table = rows(tmp_path)
    assert table and all(r["accepted"] == "0" and r["reason"] == "return_below_threshold" for r in table)
    log = EpisodeLog(tmp_path / "episodes")
    for r in table:
        ep = log.read(r["episode_id"])
        assert ep.label is not None and ep.frames and ep.executed
        assert not any(e.authority == AUTHORITY_HUMAN for e in ep.executed)


def test_up_from_a_goal_state_base_ends_with_start_and_final_evaluated(tmp_path):
    """`hiors up --base <pretrain out> --eval-states 2` (what `make demo` runs, at its smallest): the goal-state base
    is copied as the starting policy, the capture node is switched to goal-state (else the policy refuses every
    observation and no episode is driven by it), the learner starts from the base's demonstrations, and both the
    starting policy and the final weights are evaluated without the operator on the same held-out states."""
    from hiors_bringup.pretrain import PretrainConfig, pretrain

    base = tmp_path / "base"
    pretrain(PretrainConfig(robot="tora_one", task="raise_hand", demos=2, steps=2, goal_state=True), base, say=print)
    run_dir = tmp_path / "run"
    opts = UpOptions(
        robot="tora_one",
        base=str(base),
        episodes=2,
        eval_states=2,
        run_dir=str(run_dir),
        timeout_s=400.0,
        # The second episode waits for trained weights, so that the run has final weights to evaluate.
        overrides=(("learner", "publish_every", 5), ("episode_runner", "await_trained_policy_s", 180.0)),
    )
    assert run_up(opts, quiet=True) == 0
    params = yaml.safe_load((run_dir / "params" / "capture.yaml").read_text())["capture"]["ros__parameters"]
    assert params["goal_state"] is True
    assert (run_dir / "policy" / "model.safetensors").read_bytes() == (
        base / "policy" / "model.safetensors"
    ).read_bytes()
    ep = EpisodeLog(run_dir / "episodes").read(rows(run_dir)[0]["episode_id"])
    assert any(e.authority == AUTHORITY_POLICY for e in ep.executed)  # the goal-state policy drove
    with open(run_dir / "eval_start_vs_final.csv") as f:
        evals = {r["policy"]: r for r in csv.DictReader(f)}
    assert evals["start"]["states"] == "2" and evals["start"]["seeds"] == evals["final"]["seeds"]
    assert evals["final"]["source"].endswith(".safetensors")
    summary = (run_dir / "summary.txt").read_text()
    assert "start policy, no operator, 2 held-out" in summary and "operator share per episode" in summary


def test_a_second_hiors_up_on_the_run_folder_resumes_the_run(tmp_path, capsys):
    """The same --run-dir again, with more episodes: it says it resumes, the episode index and the initial states
    continue, the demonstrations and the starting policy are the first run's, the learner's steps are one history
    (none twice) and m never goes down."""
    opts = UpOptions(
        robot="tora_one",
        episodes=1,
        demos=1,
        run_dir=str(tmp_path),
        timeout_s=300.0,
        overrides=(("learner", "publish_every", 5), ("learner", "checkpoint_every", 1000)),
    )
    assert run_up(opts) == 0
    policy = (tmp_path / "policy" / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert run_up(replace(opts, episodes=2, demos=None)) == 0
    out = capsys.readouterr().out
    assert "hiors up: resuming the run in" in out and "1 of 2 episodes done, 1 demonstrations" in out
    assert "recorded" not in out and "tiny pi0" not in out
    table = rows(tmp_path)
    assert [r["index"] for r in table] == ["1", "2"] and len({r["episode_id"] for r in table}) == 2
    m = [float(r["threshold"]) for r in table]
    assert m == sorted(m)
    log = EpisodeLog(tmp_path / "episodes")
    assert all(len(log.read(r["episode_id"]).executed) > 10 for r in table)  # no empty episode after the restart
    assert len(EpisodeLog(tmp_path / "demos").ids()) == 1
    assert (tmp_path / "policy" / "model.safetensors").read_bytes() == policy
    with open(tmp_path / "learner" / "metrics.csv") as f:
        metrics = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in metrics]
    assert steps == list(range(1, len(steps) + 1))  # the first run's last step was checkpointed on stopping
    learner_m = [float(r["threshold"]) for r in metrics]
    assert learner_m == sorted(learner_m)
    ckpt = tmp_path / "learner" / "checkpoints"
    state = json.loads((ckpt / (ckpt / "latest").read_text().strip() / "state.json").read_text())
    assert sorted(e for e in state["seen"] if e.startswith("demo-")) == ["demo-000000"]


def test_a_normal_stop_leaves_no_error_or_traceback_in_the_node_logs(run):
    _, run_dir = run
    for log in sorted((run_dir / "logs").glob("*.log")):
        text = log.read_text()
        for bad in ("Traceback", "[ERROR]", "[FATAL]", "context is invalid", "never retrieved"):
            assert bad not in text, f"{log.name} holds {bad!r}:\n{text[-3000:]}"


def test_a_recorder_that_cannot_write_stops_the_run_in_one_line(tmp_path, capsys):
    """The recorder refuses every start (its free-space minimum above what the disk has: the injected failure of a
    full disk): hiors up stops at once with one line saying why, rather than waiting out its timeout."""
    opts = UpOptions(
        robot="tora_one",
        episodes=2,
        demos=1,
        run_dir=str(tmp_path),
        timeout_s=300.0,
        overrides=(("recorder", "min_free_bytes", 2**50),),
    )
    assert run_up(opts) == 1
    out = capsys.readouterr().out
    stops = [line for line in out.splitlines() if line.startswith("hiors up: stopping the run:")]
    assert len(stops) == 1 and "the recorder cannot write episodes" in stops[0] and "timed out" not in out
    assert "episodes: 0" in (tmp_path / "summary.txt").read_text()
