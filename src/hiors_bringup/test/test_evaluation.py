"""`hiors eval`: the success-vs-time (main), success-vs-retries and per-cell arithmetic (pure), short real
evaluation runs, a long attempt going on after a recoverable failure, and the observation it feeds the policy is
the one the capture node builds on the running graph."""

import argparse
import csv

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hiors_bringup.evaluation import (
    TimedOutcome,
    per_cell,
    success_vs_retries,
    success_vs_time,
    table_lines,
)
from hiors_core.errors import ConfigError


def _won(t):
    return TimedOutcome(success_time=t, end_time=t)


def test_success_vs_time_counts_a_first_success_at_or_before_each_budget():
    lost = TimedOutcome(None, 30.0)
    fell = TimedOutcome(None, 4.2, unrecoverable=True)  # ended early: a failure no budget repairs
    outcomes = [_won(8.0), _won(10.0), _won(14.0), _won(29.5), lost, fell]
    assert success_vs_time(outcomes, [10.0, 15.0, 20.0, 30.0]) == [2 / 6, 3 / 6, 3 / 6, 4 / 6]
    assert success_vs_time(outcomes, [5.0]) == [0.0]
    assert success_vs_time([_won(0.04)], [0.04]) == [1.0]  # at the budget counts


def test_one_long_run_gives_the_curve_of_every_shorter_budget():
    """Success within b from attempts run to 30 s equals the rate of attempts that only ran to b: an attempt does
    not know its budget, so cutting it at b changes nothing before b."""
    times = [3.0, 12.0, None, 22.0, 9.5, None]
    long = [_won(t) if t is not None else TimedOutcome(None, 30.0) for t in times]
    for b in (10.0, 15.0, 20.0, 30.0):
        short = [_won(t) if t is not None and t <= b else TimedOutcome(None, b) for t in times]
        assert (
            success_vs_time(long, [10.0, 15.0, 20.0, 30.0])[[10.0, 15.0, 20.0, 30.0].index(b)]
            == (success_vs_time(short, [b])[0])
        )


def test_success_vs_time_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="ascending"):
        success_vs_time([_won(1.0)], [20.0, 10.0])
    with pytest.raises(ValueError, match="ascending"):
        success_vs_time([_won(1.0)], [10.0, 10.0])
    with pytest.raises(ValueError, match="positive"):
        success_vs_time([_won(1.0)], [0.0, 10.0])
    with pytest.raises(ValueError, match="positive"):
        success_vs_time([_won(1.0)], [])
    with pytest.raises(ValueError, match="no evaluation episodes"):
        success_vs_time([], [10.0])
    # a failed attempt that stopped before the largest budget (and not on an unrecoverable failure)
    with pytest.raises(ValueError, match="episode 1 ended at 12 s, before the largest budget 30 s"):
        success_vs_time([_won(1.0), TimedOutcome(None, 12.0)], [10.0, 30.0])


@given(
    st.lists(st.one_of(st.none(), st.floats(min_value=0.04, max_value=40.0)), min_size=1, max_size=30),
    st.lists(st.floats(min_value=0.5, max_value=40.0), min_size=1, max_size=5, unique=True),
)
def test_success_vs_time_is_non_decreasing_and_the_share_below_each_budget(first_success, budgets):
    budgets = sorted(budgets)
    outcomes = [_won(t) if t is not None else TimedOutcome(None, budgets[-1]) for t in first_success]
    curve = success_vs_time(outcomes, budgets)
    assert len(curve) == len(budgets) and curve == sorted(curve)
    for b, s in zip(budgets, curve, strict=True):
        assert s == sum(t is not None and t <= b for t in first_success) / len(first_success)


def test_success_vs_retries_counts_an_episode_once_any_try_within_budget_succeeds():
    outcomes = [[False, False, True], [True], [False, False, False], [False, True]]
    assert success_vs_retries(outcomes, 3) == [0.25, 0.5, 0.75]
    assert success_vs_retries(outcomes, 1) == [0.25]  # a smaller budget ignores the later tries
    assert success_vs_retries([[True]], 1) == [1.0]
    assert success_vs_retries([[False]] * 3, 1) == [0.0]
    assert success_vs_retries([[True, True]], 2) == [1.0, 1.0]  # extra tries after a success change nothing


def test_success_vs_retries_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="at least 1"):
        success_vs_retries([[True]], 0)
    with pytest.raises(ValueError, match="no evaluation episodes"):
        success_vs_retries([], 2)
    with pytest.raises(ValueError, match="episode 1 has 1 attempts"):
        success_vs_retries([[True], [False]], 2)  # a failed episode must have used the whole budget
    with pytest.raises(ValueError, match="episode 0 has 0 attempts"):
        success_vs_retries([[]], 1)


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=30), st.integers(1, 5))
def test_success_vs_retries_is_non_decreasing_and_ends_at_any_success(first_success, budget):
    # first_success[i] = the try at which episode i first succeeds (>= budget: never within the budget)
    outcomes = [[False] * k + [True] if k < budget else [False] * budget for k in first_success]
    curve = success_vs_retries(outcomes, budget)
    assert len(curve) == budget and curve == sorted(curve)
    assert curve[-1] == sum(k < budget for k in first_success) / len(first_success)
    assert curve[0] == sum(k == 0 for k in first_success) / len(first_success)


def test_per_cell_rows():
    rows = per_cell([False, False, False], [True, True, False], cells=[3, 0, 3], train=[False, True, False])
    assert [(r.cell, r.split, r.episodes, r.smallest_budget, r.largest_budget) for r in rows] == [
        (0, "train", 1, 0.0, 1.0),
        (3, "test", 2, 0.0, 0.5),
    ]
    with pytest.raises(ValueError, match="differ in length"):
        per_cell([True], [True], [0, 1], [True])
    with pytest.raises(ValueError, match="both train and test"):
        per_cell([True, True], [True, True], [2, 2], [True, False])
    with pytest.raises(ValueError, match="one within the largest"):
        per_cell([True], [False], [0], [True])
    assert per_cell([], [], [], []) == []


def test_table_lines_show_both_curves_the_cells_and_split_totals():
    rows = per_cell([True, False, False], [True, True, False], cells=[3, 0, 3], train=[False, True, False])
    lines = table_lines([10.0, 30.0], [1 / 3, 2 / 3], [0.0, 1 / 3], rows)
    assert lines[0] == "time budget (s)  success rate"
    assert lines[1].split() == ["10", "0.33"] and lines[2].split() == ["30", "0.67"]
    assert lines[4] == "tries (resets)  success rate" and lines[6].split() == ["2", "0.33"]
    assert lines[8].split()[-6:] == ["within", "10", "s", "within", "30", "s"]
    assert lines[-2].split() == ["all", "train", "1", "0.00", "1.00"]
    assert lines[-1].split() == ["all", "test", "2", "0.50", "0.50"]
    assert not [x for x in table_lines([10.0], [0.5], [], rows) if "tries" in x]  # no retries: no such table


def _eval_args(tmp_path, **kw):
    return argparse.Namespace(
        **{
            "robot": "xtrainer",
            "task": "",
            "policy": "",
            "run": "",
            "episodes": 3,
            "retries": 2,
            "budgets": "1,2",
            "seed": 5,
            "time_limit": 0.6,
            "run_dir": str(tmp_path),
            **kw,
        }
    )


@pytest.fixture
def made_envs(monkeypatch):
    """The (end_on, time limit) of every twin `hiors eval` makes."""
    import hiors_sim.env

    made, real = [], hiors_sim.env.SimRobot

    class Recorded(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append((self.end_on, self.task.time_limit))

    monkeypatch.setattr(hiors_sim.env, "SimRobot", Recorded)
    return made


def test_eval_runs_the_policy_on_the_twin_and_writes_its_tables(tmp_path, capsys, made_envs):
    from hiors_bringup.evaluate import run_eval

    assert run_eval(_eval_args(tmp_path)) == 0
    # long attempts to the largest budget that a knocked-over bottle does not end, then tries of the time limit
    assert made_envs == [("unrecoverable", 1.2), ("failure", 0.6)]
    with open(tmp_path / "long_attempts.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == [
            "episode",
            "seed",
            "cell",
            "split",
            "success",
            "success_time",
            "end_time",
            "end",
            "steps",
            "progress_at_limit",
            "progress",
        ]
        long = list(reader)
    assert [a["seed"] for a in long] == ["5", "6", "7"] and {a["split"] for a in long} == {"train", "test"}
    for a in long:
        # one attempt of up to 2 x 0.6 s = 30 control steps at 25 Hz: it ends at success, an unrecoverable
        # failure or the largest budget, never at a knocked-over bottle
        assert 0 < int(a["steps"]) <= 30 and a["end"] != "bottle knocked over"
        assert (a["end"] == "budget") == (int(a["steps"]) == 30)
        assert (a["success"] == "1") == (a["end"] == "success") == (a["success_time"] != "")
        assert 0.0 <= float(a["progress_at_limit"]) <= 1.0 and 0.0 <= float(a["progress"]) <= 1.0
    with open(tmp_path / "success_vs_time.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["budget_s", "success_rate"]
        curve = [(float(r["budget_s"]), float(r["success_rate"])) for r in reader]
    assert [b for b, _ in curve] == [0.6, 1.2]
    for b, s in curve:  # the curve is the share of first successes within each budget
        assert s == pytest.approx(sum(a["success_time"] != "" and float(a["success_time"]) <= b for a in long) / 3)
    with open(tmp_path / "retry_attempts.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["episode", "seed", "cell", "split", "attempt", "success", "steps", "progress"]
        tries = list(reader)
    assert [a["seed"] for a in tries if a["attempt"] == "0"] == ["5", "6", "7"]
    assert all(0 < int(a["steps"]) <= 15 for a in tries)  # 0.6 s at 25 Hz
    for ep in (0, 1, 2):
        mine = [a for a in tries if int(a["episode"]) == ep]
        assert len(mine) == 2 or mine[-1]["success"] == "1"  # retried until success or the budget
    with open(tmp_path / "success_vs_retries.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["retries", "success_rate"]
        retry_curve = [float(r["success_rate"]) for r in reader]
    assert len(retry_curve) == 2 and retry_curve == sorted(retry_curve)
    with open(tmp_path / "per_cell.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["cell", "split", "episodes", "success_smallest_budget", "success_largest_budget"]
        assert [r["cell"] for r in reader] == ["0", "1", "2"]
    table = (tmp_path / "eval.txt").read_text()
    assert "time budget (s)" in table and "tries (resets)" in table and "within 1.2 s" in table
    assert "within 1.2 s" in capsys.readouterr().out
    # what the paper bench takes from this folder
    from hiors_bringup.evaluate import read_eval

    got = read_eval(tmp_path)
    assert got["time_budgets"] == [0.6, 1.2] and got["time_curve"] == [s for _, s in curve]
    assert got["eval_success_1"] == curve[0][1] and got["eval_success_T"] == curve[-1][1]
    assert got["retry_curve"] == retry_curve and got["eval_success_R"] == retry_curve[-1]
    assert got["eval_progress_1"] == pytest.approx(sum(float(a["progress_at_limit"]) for a in long) / 3, abs=1e-3)


def test_eval_without_retries_writes_only_the_time_curve(tmp_path, made_envs):
    from hiors_bringup.evaluate import run_eval

    assert run_eval(_eval_args(tmp_path, episodes=1, retries=0, budgets="1", time_limit=0.2)) == 0
    assert made_envs == [("unrecoverable", 0.2)]
    assert (tmp_path / "success_vs_time.csv").is_file() and not (tmp_path / "success_vs_retries.csv").exists()
    assert "tries" not in (tmp_path / "eval.txt").read_text()
    from hiors_bringup.evaluate import read_eval

    got = read_eval(tmp_path)
    assert got["retry_curve"] == [] and np.isnan(got["eval_success_R"]) and got["time_budgets"] == [0.2]


def test_a_long_attempt_goes_on_after_a_recoverable_failure_and_records_its_first_success():
    """`run_attempt` on a twin whose verdict is scripted: the bottle lies knocked over until 0.4 s, then the task
    succeeds. With end_on "unrecoverable" the attempt goes on and ends at the first success at 0.4 s; with the
    default (a try over resets) the knocked-over bottle ends it at once."""
    from hiors_bringup.evaluate import run_attempt
    from hiors_sim.env import SimRobot
    from hiors_teleop.safety import Limits, layout_for

    class Hold:  # a policy that holds the commanded pose
        def infer(self, obs):
            return np.tile(env.commanded_action(), (12, 1))

    for end_on, expected in (("unrecoverable", (True, 10, "")), ("failure", (False, 1, "bottle knocked over"))):
        env = SimRobot("xtrainer", "insert_moisturizer", time_limit=2.0, end_on=end_on)

        def verdict(m, env=env):
            won = env.time >= 0.4 - 1e-9
            return {"success": won, "failed": not won, "failure_reason": "" if won else "bottle knocked over"}

        env.task.evaluate = verdict
        limits = Limits.for_robot(env.spec, layout_for(env.spec, "joint", env.task.arm))
        a = run_attempt(env, Hold(), limits, 4, 32, seed=1, cell=0, mark=0.2)
        env.close()
        assert (a.success, a.steps, a.failure) == expected, end_on
        if a.success:
            assert a.time == pytest.approx(0.4) and a.progress == 1.0
        assert a.progress_at_mark == (0.0 if end_on == "unrecoverable" else a.progress)  # 0.2 s < 0.4 s


def test_eval_names_a_folder_that_is_not_a_run(tmp_path):
    from hiors_bringup.evaluate import load_eval_policy, run_eval

    with pytest.raises(ConfigError, match="learner/weights"):
        load_eval_policy("tora_one", "raise_hand", run=str(tmp_path))
    with pytest.raises(ConfigError, match="no task"):
        run_eval(argparse.Namespace(robot="tora_one", task="insert_moisturizer", episodes=1, retries=1))
    with pytest.raises(ConfigError, match="--budgets must be positive"):
        run_eval(argparse.Namespace(robot="tora_one", task="", episodes=1, retries=0, budgets="1,-2", time_limit=0))
    with pytest.raises(ConfigError, match="--budgets"):
        run_eval(argparse.Namespace(robot="tora_one", task="", episodes=1, retries=0, budgets="1,x", time_limit=0))


def test_in_process_state_is_the_capture_mapping():
    """`policy_state` fills the layout through the capture node's `assemble_state`, from what the sim node
    publishes; a missing entry is named."""
    from hiors_policy.layout import assemble_state, state_layout
    from hiors_sim.env import SimRobot
    from hiors_sim.policy_view import policy_state

    env = SimRobot("tora_one", "raise_hand")
    env.reset(seed=3)
    names = state_layout("tora_one", "raise_hand")
    state = policy_state(env, names)
    assert state.dtype == np.float32 and state.shape == (len(names),)
    pos, q = env.ee_pose("left")
    assert np.allclose(state[-7:], [*pos, *q], atol=1e-6)  # xyzw, as PoseStamped
    assert state[names.index("left_gripper")] == pytest.approx(env.gripper_opening("left"))
    with pytest.raises(KeyError, match="left_ee_qw"):
        assemble_state(names, dict(zip(names[:8], state[:8], strict=True)), {"left": (0, 0, 0, 0, 0, 0)})


@pytest.mark.node
def test_capture_node_on_the_sim_node_sees_the_in_process_state():
    """The running graph's Observation (sim node -> capture node) equals the in-process one for the same twin."""
    import rclpy
    from rclpy.parameter import Parameter

    from hiors_core import topics
    from hiors_msgs.msg import Observation
    from hiors_policy.capture_node import CaptureNode
    from hiors_policy.layout import state_layout
    from hiors_sim.policy_view import policy_state
    from hiors_sim.sim_node import SimNode
    from hiors_testing.ros import ros_context, spinning, wait_for

    with ros_context() as ctx:
        sim = SimNode(
            context=ctx,
            parameter_overrides=[
                Parameter("robot", value="tora_one"),
                Parameter("image_width", value=32),
                Parameter("image_height", value=32),
                Parameter("camera_rate_hz", value=25.0),
            ],
        )
        cap = CaptureNode(context=ctx, parameter_overrides=[Parameter("rate_hz", value=25.0)])
        probe = rclpy.create_node("eval_probe", context=ctx)
        got = []
        probe.create_subscription(Observation, topics.OBSERVATION, got.append, topics.qos(topics.OBSERVATION, depth=10))
        try:
            with spinning([sim, cap, probe], context=ctx):
                wait_for(lambda: len(got) >= 3, 30, "observations from the capture node")
                here = policy_state(sim.env, state_layout("tora_one", "raise_hand"))
        finally:
            for n in (sim, cap, probe):
                n.destroy_node()
    obs = got[-1]
    assert list(obs.state_names) == list(state_layout("tora_one", "raise_hand"))
    assert list(obs.camera_names) == list(sim.spec.cameras)
    # the arm holds still after the reset: the vectors agree up to the few control steps between them
    assert np.allclose(np.asarray(obs.state, np.float32), here, atol=2e-3)
