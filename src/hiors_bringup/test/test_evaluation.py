"""`hiors eval`: the success-vs-budget and per-cell arithmetic (pure), one short real evaluation run, and the
observation it feeds the policy is the one the capture node builds on the running graph."""

import argparse
import csv

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hiors_bringup.evaluation import per_cell, success_vs_budget, table_lines
from hiors_core.errors import ConfigError


def test_success_vs_budget_counts_an_episode_once_any_try_within_budget_succeeds():
    outcomes = [[False, False, True], [True], [False, False, False], [False, True]]
    assert success_vs_budget(outcomes, 3) == [0.25, 0.5, 0.75]
    assert success_vs_budget(outcomes, 1) == [0.25]  # a smaller budget ignores the later tries
    assert success_vs_budget([[True]], 1) == [1.0]
    assert success_vs_budget([[False]] * 3, 1) == [0.0]
    assert success_vs_budget([[True, True]], 2) == [1.0, 1.0]  # extra tries after a success change nothing


def test_success_vs_budget_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="at least 1"):
        success_vs_budget([[True]], 0)
    with pytest.raises(ValueError, match="no evaluation episodes"):
        success_vs_budget([], 2)
    with pytest.raises(ValueError, match="episode 1 has 1 attempts"):
        success_vs_budget([[True], [False]], 2)  # a failed episode must have used the whole budget
    with pytest.raises(ValueError, match="episode 0 has 0 attempts"):
        success_vs_budget([[]], 1)


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=30), st.integers(1, 5))
def test_success_vs_budget_is_non_decreasing_and_ends_at_any_success(first_success, budget):
    # first_success[i] = the try at which episode i first succeeds (>= budget: never within the budget)
    outcomes = [[False] * k + [True] if k < budget else [False] * budget for k in first_success]
    curve = success_vs_budget(outcomes, budget)
    assert len(curve) == budget and curve == sorted(curve)
    assert curve[-1] == sum(k < budget for k in first_success) / len(first_success)
    assert curve[0] == sum(k == 0 for k in first_success) / len(first_success)


def test_per_cell_rows():
    rows = per_cell([[True], [False, True], [False, False]], cells=[3, 0, 3], train=[False, True, False])
    assert [(r.cell, r.split, r.episodes, r.first_try, r.any_try) for r in rows] == [
        (0, "train", 1, 0.0, 1.0),
        (3, "test", 2, 0.5, 0.5),
    ]
    with pytest.raises(ValueError, match="differ in length"):
        per_cell([[True]], [0, 1], [True])
    with pytest.raises(ValueError, match="both train and test"):
        per_cell([[True], [True]], [2, 2], [True, False])
    assert per_cell([], [], []) == []


def test_table_lines_show_the_curve_cells_and_split_totals():
    rows = per_cell([[True], [False, True], [False, False]], cells=[3, 0, 3], train=[False, True, False])
    lines = table_lines([1 / 3, 2 / 3], rows)
    assert lines[1].split() == ["1", "0.33"] and lines[2].split() == ["2", "0.67"]
    assert lines[-2].split() == ["all", "train", "1", "0.00", "1.00"]
    assert lines[-1].split() == ["all", "test", "2", "0.50", "0.50"]


def test_eval_runs_the_policy_on_the_twin_and_writes_its_tables(tmp_path, capsys):
    from hiors_bringup.evaluate import run_eval

    args = argparse.Namespace(
        robot="xtrainer",
        task="",
        policy="",
        run="",
        episodes=3,
        retries=2,
        seed=5,
        time_limit=0.6,
        run_dir=str(tmp_path),
    )
    assert run_eval(args) == 0
    with open(tmp_path / "attempts.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["episode", "seed", "cell", "split", "attempt", "success", "steps", "progress"]
        attempts = list(reader)
    assert {int(a["episode"]) for a in attempts} == {0, 1, 2}
    assert [a["seed"] for a in attempts if a["attempt"] == "0"] == ["5", "6", "7"]
    assert {a["split"] for a in attempts} == {"train", "test"}  # the grid's cells, both splits
    # 0.6 s at 25 Hz = 15 control steps unless the task ends sooner: two chunks of k_auto=12
    assert all(0 < int(a["steps"]) <= 15 for a in attempts)
    assert all(0.0 <= float(a["progress"]) <= 1.0 for a in attempts)
    assert all(float(a["progress"]) == 1.0 for a in attempts if a["success"] == "1")
    for ep in (0, 1, 2):
        tries = [a for a in attempts if int(a["episode"]) == ep]
        assert len(tries) == 2 or tries[-1]["success"] == "1"  # retried until success or the budget
    with open(tmp_path / "success_vs_budget.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["budget", "success_rate"]
        curve = [float(r["success_rate"]) for r in reader]
    assert len(curve) == 2 and curve == sorted(curve)
    with open(tmp_path / "per_cell.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["cell", "split", "episodes", "first_try", "any_try"]
        assert [r["cell"] for r in reader] == ["0", "1", "2"]
    table = (tmp_path / "eval.txt").read_text()
    assert "retry budget" in table and "within budget" in table
    assert "within budget" in capsys.readouterr().out


def test_eval_names_a_folder_that_is_not_a_run(tmp_path):
    from hiors_bringup.evaluate import load_eval_policy, run_eval

    with pytest.raises(ConfigError, match="learner/weights"):
        load_eval_policy("tora_one", "raise_hand", run=str(tmp_path))
    with pytest.raises(ConfigError, match="no task"):
        run_eval(argparse.Namespace(robot="tora_one", task="insert_moisturizer", episodes=1, retries=1))


def test_in_process_state_is_the_capture_mapping():
    """`policy_state` fills the layout through the capture node's `assemble_state`, from what the sim node
    publishes; a missing entry is named."""
    from hiors_bringup.sim_io import policy_state
    from hiors_policy.layout import assemble_state, state_layout
    from hiors_sim.env import SimRobot

    env = SimRobot("tora_one", "raise_hand")
    env.reset(seed=3)
    names = state_layout("tora_one", "raise_hand")
    state = policy_state(env, names)
    assert state.dtype == np.float32 and state.shape == (len(names),)
    pos, q = env.ee_pose("left")
    assert np.allclose(state[-7:], [*pos, q[1], q[2], q[3], q[0]], atol=1e-6)  # xyzw, as PoseStamped
    assert state[names.index("left_gripper")] == pytest.approx(env.gripper_opening("left"))
    with pytest.raises(KeyError, match="left_ee_qw"):
        assemble_state(names, dict(zip(names[:8], state[:8], strict=True)), {"left": (0, 0, 0, 0, 0, 0)})


@pytest.mark.node
def test_capture_node_on_the_sim_node_sees_the_in_process_state():
    """The running graph's Observation (sim node -> capture node) equals the in-process one for the same twin."""
    import rclpy
    from rclpy.parameter import Parameter

    from hiors_bringup.sim_io import policy_state
    from hiors_core import topics
    from hiors_core.ros_testing import ros_context, spinning, wait_for
    from hiors_msgs.msg import Observation
    from hiors_policy.capture_node import CaptureNode
    from hiors_policy.layout import state_layout
    from hiors_sim.sim_node import SimNode

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
        probe.create_subscription(Observation, topics.OBSERVATION, got.append, 10)
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
