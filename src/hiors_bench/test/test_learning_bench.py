"""The learning benchmark end to end at a toy size: base policy, an online Hi-ORS run, BC at its operator budget and
gradient steps, evaluations, and every file a person reads (the numbers at this size mean nothing)."""

import csv

from hiors_bench.learning_bench import LearningSize, TaskSize, bc_budget, read_csv, run_learning


def test_learning_bench_toy_run_writes_its_tables_and_figure(tmp_path):
    size = LearningSize(
        name="toy",
        tasks=(TaskSize("tora_one", "raise_hand", demos=3, pretrain_steps=4, episodes=2, ramp_steps=10),),
        seeds=(0,),
        eval_states=2,
        curve_every=1,
        curve_states=1,
        utd=0.5,
    )
    assert run_learning(tmp_path, size=size, say=lambda *_: None) == 0
    runs = read_csv(tmp_path / "learning_runs.csv")
    assert {r["variant"] for r in runs} == {"hiors", "bc", "camera_only_base"}
    hiors = next(r for r in runs if r["variant"] == "hiors")
    bc = next(r for r in runs if r["variant"] == "bc")
    # BC gets exactly the hiors run's operator-driven samples and gradient steps.
    assert bc["operator_samples"] == hiors["operator_samples"] and bc["learner_steps"] == hiors["learner_steps"]
    assert hiors["learner_steps"] > 0 and 0.0 <= hiors["success"] <= 1.0
    with open(tmp_path / "learning_episodes.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
    assert len(read_csv(tmp_path / "learning_curve.csv")) == 1  # after episode 1 of 2
    assert {r["variant"] for r in read_csv(tmp_path / "learning_summary.csv")} >= {"hiors", "bc"}
    assert (tmp_path / "learning.png").stat().st_size > 0
    assert bc_budget(hiors, 0)[1] == hiors["learner_steps"]
