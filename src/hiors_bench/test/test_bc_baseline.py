"""The BC baseline of `hiors bench paper`: budget matching (pure) and an offline run of the learner core at a
Hi-ORS run's budget, on a stand-in policy and stand-in demonstrations (no twin)."""

from pathlib import Path

import pytest
import yaml

from hiors_bench import bc_baseline
from hiors_bench.bc_baseline import (
    EXTRA_DEMO_SEED,
    EXTRA_DEMO_SEED_STRIDE,
    bc_parameters,
    demos_needed,
    operator_samples,
    run_bc,
    take_budget,
)
from hiors_bench.paper_bench import VARIANTS, bc_first
from hiors_core.episode_log import EpisodeLog
from hiors_testing.episodes import make_episode

H = 4


def fake_factory(robot, task, seed):
    from hiors_testing.fake_policy import FakePolicy

    return FakePolicy(horizon=H, seed=seed)


def test_take_budget_matches_the_budget_exactly():
    assert take_budget([8, 8, 8, 8], 30) == [8, 8, 8, 6]  # whole episodes, the last cut to fit
    assert take_budget([8, 8, 8], 16) == [8, 8, 0]
    assert take_budget([5, 0, 7], 12) == [5, 0, 7] and take_budget([3], 0) == [0]
    with pytest.raises(ValueError, match="fewer than the budget of 25"):
        take_budget([8, 8], 25)


def test_demos_needed_estimates_from_the_recorded_length():
    assert demos_needed(24, 30, [8, 8, 8]) == 1 and demos_needed(24, 60, [8, 8, 8]) == 5
    assert demos_needed(30, 30, [10, 10, 10]) == 0 and demos_needed(0, 5, []) == 5  # nothing known: one sample each
    assert demos_needed(0, 5, [0]) == 5


def test_operator_samples_count_only_operator_driven_steps():
    ep = make_episode(steps=12, human=range(2, 5), sample_every=3)  # samples at 0, 2, 3, 4, 6, 9
    assert operator_samples(ep) == 3
    assert operator_samples(make_episode(steps=8, human=range(8), sample_every=1)) == 8


def test_bc_runs_after_the_hiors_run_it_takes_its_budget_from():
    assert bc_first(("bc",)) == ("hiors", "bc")
    assert bc_first(("no_human", "bc", "hiors")) == ("no_human", "hiors", "bc")
    assert bc_first(("hiors", "x", "bc")) == ("hiors", "x", "bc") and bc_first(("x",)) == ("x",)
    assert bc_first(tuple(VARIANTS)).index("hiors") < bc_first(tuple(VARIANTS)).index("bc")
    assert VARIANTS["bc"] == ()  # no graph switches: it never starts one


def test_bc_parameters_keep_the_hiors_learner_but_its_threshold_and_pacing():
    hiors = {"lr": 1e-4, "batch_size": 8, "utd_target": 2.0, "policy_path": "/r/policy", "threshold_kind": "linear"}
    hiors |= {"threshold_initial": 0.5, "max_steps": 0, "log_dir": "/r/episodes", "run_dir": "/r/learner"}
    p = bc_parameters(hiors, Path("/b"), 42)
    assert p["lr"] == 1e-4 and p["batch_size"] == 8 and p["max_steps"] == 42 and p["utd_target"] == 0.0
    assert p["policy_path"] == "/b/policy" and p["run_dir"] == "/b/learner" and p["log_dir"] == ""
    assert (p["threshold_kind"], p["threshold_initial"]) == ("constant", 0.0)
    assert bc_parameters(hiors | {"policy_path": ""}, Path("/b"), 1)["policy_path"] == ""


def _demo(log, seed, reward=1.0):
    eid = log.new_episode_id("demo")
    log.write_episode(make_episode(eid, steps=8, human=range(8), sample_every=1, seed=seed, reward=reward))


def test_bc_trains_offline_at_the_hiors_runs_budget_and_steps(tmp_path, monkeypatch):
    hiors = tmp_path / "hiors"
    demos = EpisodeLog(hiors / "demos")
    for k, reward in enumerate((1.0, 0.0, 1.0)):  # the second demonstration failed
        _demo(demos, k, reward)
    online = EpisodeLog(hiors / "episodes")
    for k in range(2):  # 3 operator-driven samples each
        online.write_episode(make_episode(f"ep-{k:06d}", steps=12, human=range(2, 5), sample_every=3, seed=10 + k))
    (hiors / "learner").mkdir()
    (hiors / "learner" / "metrics.csv").write_text("step,utd\n4,0.1\n5,0.2\n")
    (hiors / "params").mkdir()
    params = {"policy_factory": "test_bc_baseline:fake_factory", "policy_path": "", "horizon": H, "batch_size": 4}
    params |= {"publish_every": 2, "checkpoint_every": 0, "warmup_steps": 0, "noop_enabled": False}
    params |= {"threshold_kind": "linear", "threshold_initial": 0.5, "threshold_final": 0.9, "utd_target": 0.01}
    (hiors / "params" / "learner.yaml").write_text(yaml.safe_dump({"learner": {"ros__parameters": params}}))
    recorded = []

    def fake_record(robot, task, count, out_dir, seed=0, image_size=224):
        recorded.append((count, seed, image_size))
        log = EpisodeLog(out_dir)
        for k in range(count):
            _demo(log, seed + k)
        return count

    monkeypatch.setattr("hiors_bringup.demos.record_demos", fake_record)
    assert bc_baseline.operator_budget(hiors) == (24, 6)
    bc = tmp_path / "bc"
    out = run_bc("tora_one", "raise_hand", 3, hiors, bc, log=lambda msg: None)
    # 30 operator samples: the 3 demonstrations of the Hi-ORS run, then 1 more, cut to 6 of its 8
    assert recorded == [(1, EXTRA_DEMO_SEED + 3 * EXTRA_DEMO_SEED_STRIDE, 16)]
    assert out["operator_samples"] == 30 and out["learner_steps"] == 5  # the Hi-ORS run's budget and steps
    assert out["learner_utd"] == pytest.approx(5 / (8 + 8 + 6))  # the failed demonstration is not trained on
    weights = sorted((bc / "learner" / "weights").glob("policy-v*.safetensors"))
    assert [w.name for w in weights] == [f"policy-v{v:08d}.safetensors" for v in (1, 2, 3)]  # start, steps 2, 4
    assert not (hiors / "demos" / "demo-000003").exists()  # the Hi-ORS run's folder is left as it was
