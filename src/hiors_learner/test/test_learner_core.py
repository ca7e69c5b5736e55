"""Learner core with the torch engine: UTD, schedules, re-filtering, weights, checkpoints, resume, backfill."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hiors_core.episode_log import EpisodeLog
from hiors_core.filters import FilterConfig
from hiors_core.labelling import training_samples
from hiors_core.rejection import ThresholdConfig
from hiors_core.robots import MODE_JOINT
from hiors_core.weight_sync import read_verified, sha256_hex
from hiors_learner.engine import TorchEngine
from hiors_learner.learner import Learner, LearnerConfig
from hiors_learner.optim import OptimConfig, lr_at
from hiors_testing.episodes import make_episode
from hiors_testing.fake_policy import FakePolicy

H = 4
NOFILTER = FilterConfig(noop_enabled=False, short_enabled=False)


def test_lr_schedules():
    c = OptimConfig(lr=2.5e-5, min_lr=2.5e-6, warmup_steps=10, decay_steps=100)
    v = [lr_at(s, c) for s in range(200)]
    assert v[0] < v[5] < v[9] <= 2.5e-5
    assert v[10] == pytest.approx(2.5e-5) and v[110] == pytest.approx(2.5e-6) and v[199] == pytest.approx(2.5e-6)
    assert all(b <= a + 1e-15 for a, b in zip(v[10:], v[11:], strict=False))
    cyc = OptimConfig(schedule="cyclic", warmup_steps=0, cycle_steps=20)
    assert lr_at(0, cyc) == pytest.approx(2.5e-5) and lr_at(20, cyc) == pytest.approx(2.5e-5)
    assert lr_at(10, cyc) == pytest.approx((2.5e-5 + 2.5e-6) / 2)


def test_zero_weight_samples_get_exactly_zero_gradient():
    pol = FakePolicy()
    eng = TorchEngine(pol, OptimConfig(warmup_steps=0))
    ep = make_episode(steps=8, human=(), sample_every=1)
    s = training_samples(ep, H)
    for x in s[:4]:
        x.weight = 0.0
    job = eng.prepare(s)
    grads = []
    for rows in (slice(0, 4), slice(4, 8)):
        pol.model.zero_grad()
        sub = {"batch": {k: v[rows] for k, v in job["batch"].items()}, "weights": job["weights"][rows], "extra": {}}
        eng._loss_sum(sub, "cpu").backward()
        grads.append([p.grad.clone() for p in pol.model.parameters()])
    assert all(torch.count_nonzero(g) == 0 for g in grads[0])
    assert any(torch.count_nonzero(g) > 0 for g in grads[1])


def learner(tmp_path, **kw):
    kw.setdefault("filters", NOFILTER)
    cfg = LearnerConfig(
        run_dir=str(tmp_path / "run"), horizon=H, batch_size=4, publish_every=2, checkpoint_every=3, **kw
    )
    pol = FakePolicy()
    published = []
    lr = Learner(
        cfg, TorchEngine(pol, OptimConfig(warmup_steps=1, decay_steps=20)), publish=lambda *a: published.append(a)
    )
    return lr, published


def offer(lr, i, ret):
    ep = make_episode(episode_id=f"ep-{i:06d}", steps=8, human=(), sample_every=1, seed=i)
    return lr.offer(ep.meta.episode_id, training_samples(ep, H), ret, MODE_JOINT)


def test_learner_trains_up_to_its_utd_cap_publishes_and_refilters(tmp_path):
    thr = ThresholdConfig(kind="fixed", initial=0.5, values=(0.8,), steps=(4,))
    lr, published = learner(tmp_path, threshold=thr, utd_target=0.25)
    assert offer(lr, 0, 0.6).accepted and offer(lr, 1, 1.0).accepted
    assert not offer(lr, 2, 0.3).accepted and not offer(lr, 3, -1.0).accepted
    assert offer(lr, 0, 1.0) is None  # no episode twice
    assert lr.buffer.num_samples == 16
    steps = 0
    while lr.ready():
        lr.train_once()
        steps += 1
    assert steps == 4  # 16 samples received, at most 0.25 gradient steps per sample
    assert lr.m == 0.8 and lr.buffer.active_ids == ["ep-000001"]  # m rose at step 4: ep-0 (R=0.6) left
    st = lr.status()
    assert st["episodes_total"] == 4 and st["episodes_accepted"] == 1 and st["utd"] == pytest.approx(0.25)
    versions = [p[0] for p in published]
    assert versions == [1, 2]
    v, step, blob, path, digest, size = published[-1]
    assert read_verified(path, sha256_hex(blob)) == blob and step == 4
    assert (digest, size) == (sha256_hex(blob), len(blob))
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,time,loss,lr,threshold") and len(rows) == 5
    assert all(math.isfinite(float(r.split(",")[2])) for r in rows[1:])


def test_weights_over_the_topic_limit_go_by_their_file_alone(tmp_path, monkeypatch):
    """Above MAX_TOPIC_BYTES no blob of the model is built: the version is the streamed file, its sha256 and size."""
    from hiors_learner import learner as learner_module

    monkeypatch.setattr(learner_module, "MAX_TOPIC_BYTES", 16)
    lr, published = learner(tmp_path)
    assert lr.publish_weights() == 1
    v, step, blob, path, digest, size = published[-1]
    assert blob is None and size == Path(path).stat().st_size > 16
    assert sha256_hex(read_verified(path, digest, size)) == digest


def test_learner_trains_continuously_while_it_has_data_by_default(tmp_path):
    lr, _ = learner(tmp_path)
    assert not lr.ready()  # no data yet
    assert offer(lr, 0, 1.0).accepted
    for _ in range(20):  # far beyond one gradient step per received sample: no brake
        assert lr.ready()
        lr.train_once()
    assert lr.status()["utd"] == pytest.approx(20 / 8)  # gradient steps / samples received
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert float(rows[-1].split(",")[rows[0].split(",").index("utd")]) == pytest.approx(20 / 8)


def test_checkpoint_resume_and_backfill(tmp_path):
    log = EpisodeLog(tmp_path / "log")
    for i in range(3):
        log.write_episode(make_episode(episode_id=f"ep-{i:06d}", steps=8, human=(), sample_every=1, seed=i, reward=1.0))
    lr, _ = learner(tmp_path, log_dir=str(log.root))
    assert not lr.resume()  # no checkpoint yet; loads the log
    assert sorted(lr.buffer.active_ids) == ["ep-000000", "ep-000001", "ep-000002"]
    while lr.engine.step < 3:
        lr.train_once()
    ckpt = lr.latest_checkpoint()
    assert ckpt is not None and ckpt.name == "ckpt-00000003"
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == 3 and state["seen"] == ["ep-000000", "ep-000001", "ep-000002"]
    weights = {k: v.clone() for k, v in lr.engine.policy.model.state_dict().items()}
    lr.train_once()  # step 4 is lost with the "crash"
    lr.close()
    # two more episodes arrive in the log while the learner is down
    for i in (3, 4):
        log.write_episode(make_episode(episode_id=f"ep-{i:06d}", steps=8, human=(), sample_every=1, seed=i, reward=1.0))
    lr2, published = learner(tmp_path, log_dir=str(log.root))
    assert lr2.resume()
    assert lr2.engine.step == 3
    for k, v in lr2.engine.policy.model.state_dict().items():
        assert torch.equal(v, weights[k])
    assert sorted(lr2.buffer.active_ids) == [f"ep-{i:06d}" for i in range(5)]  # nothing lost, nothing twice
    assert lr2.pacer.received == 40  # 24 before + 16 backfilled, none counted twice
    assert lr2.pacer.steps == 3 and lr2.status()["utd"] == 3 / 40  # gradient steps of the checkpoint
    assert lr2.publish_weights() > 2  # strictly above every version published before the restart
    assert np.isfinite(lr2.train_once()["loss"])


def test_episodes_reread_from_the_log_get_the_filters_return(tmp_path):
    """Resume and backfill judge an online episode by the R the episode filter gave it, not by its 0/1 label: a
    slow success the operator drove is below m = 0.9, a quick autonomous one above. Demonstrations keep their
    label's reward."""
    log, demos = EpisodeLog(tmp_path / "log"), EpisodeLog(tmp_path / "demos")
    # raise_hand: 25 Hz, 10 s limit. 200 steps = 8 s, the human throughout: R = 1 - 0.25 * 0.8 - 0.25 = 0.55
    log.write_episode(make_episode(episode_id="ep-slow", steps=200, human=range(200), sample_every=50, reward=1.0))
    log.write_episode(make_episode(episode_id="ep-fast", steps=25, human=(), sample_every=5, reward=1.0))
    demos.write_episode(make_episode(episode_id="demo-0", steps=200, human=range(200), sample_every=50, reward=1.0))
    thr = ThresholdConfig(kind="constant", initial=0.9)
    lr, _ = learner(tmp_path, threshold=thr, log_dir=str(log.root), demo_log_dir=str(demos.root))
    lr.resume()
    assert sorted(lr.buffer.active_ids) == ["demo-0", "ep-fast"]
    assert lr.buffer.episodes["ep-fast"].episode_return == pytest.approx(1 - 0.25 * 0.1)
    assert lr.buffer.episodes["demo-0"].episode_return == 1.0
    rows = [r.split(",") for r in (tmp_path / "run" / "verdicts.csv").read_text().splitlines()]
    assert rows[0][:8] == ["time", "step", "episode_id", "source", "episode_return", "threshold", "event", "reason"]
    slow = next(r for r in rows if r[2] == "ep-slow")
    assert (slow[3], float(slow[4]), slow[6], slow[7]) == (
        "backfill",
        pytest.approx(0.55),
        "rejected",
        "return_below_threshold",
    )


def test_the_learner_records_admissions_and_departures(tmp_path):
    thr = ThresholdConfig(kind="fixed", initial=0.5, values=(0.8,), steps=(2,))
    lr, _ = learner(tmp_path, threshold=thr)
    ep = make_episode(episode_id="ep-000000", steps=8, human=(), sample_every=1, seed=0)
    res = lr.offer(ep.meta.episode_id, training_samples(ep, H), 0.6, MODE_JOINT, prefiltered=True)
    assert res.accepted and res.threshold == 0.5 and lr.in_training_set("ep-000000")
    assert not offer(lr, 1, 0.4).accepted and not lr.in_training_set("ep-000001")
    while lr.engine.step < 2:
        lr.train_once()
    assert lr.m == 0.8 and not lr.in_training_set("ep-000000")  # a higher m dropped it
    lr.close()
    events = [
        (r.split(",")[2], r.split(",")[6]) for r in (tmp_path / "run" / "verdicts.csv").read_text().splitlines()[1:]
    ]
    assert events == [("ep-000000", "admitted"), ("ep-000001", "rejected"), ("ep-000000", "left")]
