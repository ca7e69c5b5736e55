"""A learner restarted in its run folder continues where it was: the checkpoint's step, m never lower than any m
announced before, the metrics rows of lost steps dropped (the step column stays monotone), a clean stop losing
nothing, and episodes re-read on resume counted once."""

import json

from hiors_core.episode_log import EpisodeLog
from hiors_core.filters import FilterConfig
from hiors_core.rejection import ThresholdConfig
from hiors_learner.engine import TorchEngine
from hiors_learner.learner import THRESHOLD_FILE, Learner, LearnerConfig, resume_point
from hiors_learner.optim import OptimConfig
from hiors_testing.episodes import make_episode
from hiors_testing.fake_policy import FakePolicy

H = 4
LINEAR = ThresholdConfig(kind="linear", initial=0.5, final=0.9, ramp_steps=40)


def learner(tmp_path, log, checkpoint_every=5, threshold=LINEAR, logs=None):
    cfg = LearnerConfig(
        run_dir=str(tmp_path / "run"),
        log_dir=str(log.root),
        horizon=H,
        batch_size=4,
        publish_every=0,
        checkpoint_every=checkpoint_every,
        filters=FilterConfig(noop_enabled=False, short_enabled=False),
        threshold=threshold,
    )
    lines = [] if logs is None else logs
    return Learner(cfg, TorchEngine(FakePolicy(), OptimConfig(warmup_steps=1, decay_steps=20)), logger=lines.append)


def episodes(tmp_path, n=2):
    log = EpisodeLog(tmp_path / "log")
    for i in range(n):
        log.write_episode(make_episode(episode_id=f"ep-{i:06d}", steps=8, human=(), sample_every=1, seed=i, reward=1.0))
    return log


def metric_steps(tmp_path):
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    return [int(r.split(",")[0]) for r in rows[1:]]


def train_to(lr, step):
    while lr.engine.step < step:
        lr.train_once()


def test_a_fresh_folder_is_a_fresh_start(tmp_path):
    assert resume_point(tmp_path / "run").fresh
    lines = []
    lr = learner(tmp_path, episodes(tmp_path), logs=lines)
    assert not lr.resume() and not any("resumed" in line for line in lines)


def test_steps_after_the_checkpoint_are_lost_said_and_dropped_and_m_does_not_go_down(tmp_path):
    log = episodes(tmp_path)
    lr = learner(tmp_path, log)
    lr.resume()
    train_to(lr, 8)  # checkpoint at 5; 6-8 lost with the "kill"
    m_before = lr.m
    lr.close()
    point = resume_point(tmp_path / "run")
    assert (point.step, point.logged_step, point.lost_steps, point.m) == (5, 8, 3, m_before)
    lines = []
    lr2 = learner(tmp_path, log, logs=lines)
    assert lr2.resume()
    assert lr2.engine.step == 5 and lr2.m == m_before  # m as announced at step 8, not the schedule's at 5
    assert any("lost the 3 step(s)" in line and "steps 6-8" in line for line in lines)
    assert metric_steps(tmp_path) == [1, 2, 3, 4, 5]
    train_to(lr2, 9)
    assert metric_steps(tmp_path) == list(range(1, 10))  # one history, no step twice
    assert lr2.m >= m_before
    lr2.close()


def test_without_a_checkpoint_the_steps_start_over_but_m_keeps_its_height(tmp_path):
    log = episodes(tmp_path)
    lr = learner(tmp_path, log, checkpoint_every=0)
    lr.resume()
    train_to(lr, 6)
    m_before = lr.m
    lr.close()
    lines = []
    lr2 = learner(tmp_path, log, checkpoint_every=0, logs=lines)
    assert not lr2.resume()
    assert lr2.engine.step == 0 and lr2.m == m_before
    assert any("no checkpoint yet" in line and "lost the 6 step(s)" in line for line in lines)
    assert metric_steps(tmp_path) == []
    lr2.close()
    # The m of the dropped rows survives a second restart before any new step.
    assert json.loads((tmp_path / "run" / THRESHOLD_FILE).read_text())["m"] == m_before
    lr3 = learner(tmp_path, log, checkpoint_every=0)
    lr3.resume()
    assert lr3.m == m_before


def test_a_clean_stop_checkpoints_so_a_restart_loses_nothing(tmp_path):
    log = episodes(tmp_path)
    lr = learner(tmp_path, log)
    lr.resume()
    train_to(lr, 7)
    assert lr.final_checkpoint().name == "ckpt-00000007"
    assert lr.final_checkpoint() is None  # nothing new since
    lr.close()
    assert resume_point(tmp_path / "run").lost_steps == 0
    lines = []
    lr2 = learner(tmp_path, log, logs=lines)
    lr2.resume()
    assert lr2.engine.step == 7 and any("no steps lost" in line for line in lines)


def test_episodes_reread_on_resume_are_observed_once_by_the_quantile_schedule(tmp_path):
    quantile = ThresholdConfig(kind="quantile", initial=0.0, final=1.0, quantile=0.5, min_count=1, window=50)
    log = episodes(tmp_path, n=3)
    lr = learner(tmp_path, log, threshold=quantile)
    lr.resume()
    train_to(lr, 5)
    assert len(lr.schedule.recent) == 3
    lr.close()
    lr2 = learner(tmp_path, log, threshold=quantile)
    lr2.resume()
    assert len(lr2.schedule.recent) == 3 and sorted(lr2.buffer.active_ids) == [f"ep-{i:06d}" for i in range(3)]
