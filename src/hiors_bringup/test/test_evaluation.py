"""`hiors eval`: the success-vs-budget and per-cell arithmetic (pure), and one short real evaluation run."""

import argparse
import csv

import pytest

from hiors_bringup.evaluation import per_cell, success_vs_budget
from hiors_core.errors import ConfigError


def test_success_vs_budget_counts_an_episode_once_any_try_within_budget_succeeds():
    outcomes = [[False, False, True], [True], [False, False, False], [False, True]]
    assert success_vs_budget(outcomes, 3) == [0.25, 0.5, 0.75]
    assert success_vs_budget([[True]], 1) == [1.0]


def test_success_vs_budget_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="at least 1"):
        success_vs_budget([[True]], 0)
    with pytest.raises(ValueError, match="no evaluation episodes"):
        success_vs_budget([], 2)
    with pytest.raises(ValueError, match="episode 1 has 1 attempts"):
        success_vs_budget([[True], [False]], 2)  # a failed episode must have used the whole budget


def test_per_cell_rows():
    rows = per_cell([[True], [False, True], [False, False]], cells=[3, 0, 3], train=[False, True, False])
    assert [(r.cell, r.split, r.episodes, r.first_try, r.any_try) for r in rows] == [
        (0, "train", 1, 0.0, 1.0),
        (3, "test", 2, 0.5, 0.5),
    ]
    with pytest.raises(ValueError, match="differ in length"):
        per_cell([[True]], [0, 1], [True])


def test_eval_runs_the_policy_on_the_twin_and_writes_its_tables(tmp_path):
    from hiors_bringup.evaluate import run_eval

    args = argparse.Namespace(
        robot="xtrainer", task="", policy="", run="", episodes=2, retries=2, seed=5, run_dir=str(tmp_path)
    )
    assert run_eval(args) == 0
    with open(tmp_path / "attempts.csv") as f:
        attempts = list(csv.DictReader(f))
    assert {int(a["episode"]) for a in attempts} == {0, 1}
    assert all(int(a["steps"]) > 0 for a in attempts)
    for ep in (0, 1):
        tries = [a for a in attempts if int(a["episode"]) == ep]
        assert len(tries) == 2 or tries[-1]["success"] == "1"  # retried until success or the budget
    with open(tmp_path / "success_vs_budget.csv") as f:
        curve = [float(r["success_rate"]) for r in csv.DictReader(f)]
    assert len(curve) == 2 and curve == sorted(curve)
    with open(tmp_path / "per_cell.csv") as f:
        assert [r["cell"] for r in csv.DictReader(f)] == ["0", "1"]


def test_eval_names_a_folder_that_is_not_a_run(tmp_path):
    from hiors_bringup.evaluate import load_eval_policy

    with pytest.raises(ConfigError, match="learner/weights"):
        load_eval_policy("tora_one", "raise_hand", run=str(tmp_path))
