"""`hiors up --base <pretrain out> --eval-states N`: argument handling and the summary's pure parts (no graph)."""

import pytest

from hiors_bringup.cli import build_parser
from hiors_bringup.up import UpOptions, check_base, eval_lines, operator_share_lines, run_up
from hiors_core.errors import HiorsError


def base_folder(root, robot="tora_one", task="raise_hand", demos=True):
    from hiors_policy.checkpoint import CONFIG_FILE
    from hiors_policy.policy import PolicyConfig
    from hiors_policy.presets import get_preset

    (root / "policy").mkdir(parents=True)
    config = PolicyConfig.for_task(robot, task, get_preset("tiny"), goal_state=True)
    (root / "policy" / CONFIG_FILE).write_text(config.to_json())
    if demos:
        (root / "demos").mkdir()
    return root


def test_the_up_parser_takes_base_and_eval_states():
    a = build_parser().parse_args(["up", "tora_one", "--sim", "--base", "runs/b", "--eval-states", "10"])
    assert a.base == "runs/b" and a.eval_states == 10 and a.demos is None
    a = build_parser().parse_args(["up", "tora_one", "--sim"])
    assert a.base is None and a.eval_states == 0


def test_a_good_base_gives_its_policy_demonstrations_and_task(tmp_path):
    base = base_folder(tmp_path / "b", task="pack_detergent")
    b = check_base(UpOptions(robot="tora_one", base=str(base)))
    assert b.policy == base / "policy" and b.demos == base / "demos" and b.task == "pack_detergent"


@pytest.mark.parametrize(
    "make, opts, message",
    [
        (lambda d: d / "missing", {}, "no such folder"),
        (lambda d: d, {}, "not a pretrained base"),  # a folder without policy/
        (lambda d: base_folder(d / "b", demos=False), {}, "not a pretrained base"),
        (lambda d: base_folder(d / "b", robot="xtrainer", task="insert_moisturizer"), {}, "xtrainer/"),
        (lambda d: base_folder(d / "b"), {"task": "pack_detergent"}, "not tora_one/pack_detergent"),
        (lambda d: base_folder(d / "b"), {"policy": "ckpt"}, "not both"),
    ],
)
def test_a_bad_base_is_refused_naming_the_folder(tmp_path, make, opts, message):
    folder = make(tmp_path)
    with pytest.raises(HiorsError, match=message) as e:
        check_base(UpOptions(robot="tora_one", base=str(folder), **opts))
    if "policy" not in opts:
        assert str(folder) in str(e.value)


def test_up_refuses_base_with_new_demonstrations_and_a_negative_evaluation_before_starting(tmp_path):
    base = base_folder(tmp_path / "b")
    run = tmp_path / "run"
    with pytest.raises(HiorsError, match="--demos"):
        run_up(UpOptions(robot="tora_one", base=str(base), demos=4, run_dir=str(run)), quiet=True)
    with pytest.raises(HiorsError, match="--eval-states"):
        run_up(UpOptions(robot="tora_one", base=str(base), eval_states=-1, run_dir=str(run)), quiet=True)
    with pytest.raises(HiorsError, match="--eval-states"):
        run_up(UpOptions(robot="tora_one", policy=str(base / "policy"), eval_states=2, run_dir=str(run)), quiet=True)
    assert not run.exists() or not any(run.iterdir())


def test_operator_share_per_episode_and_by_half():
    rows = [{"human_share": s} for s in ("0.600", "0.400", "0.200", "0.100", "0")]
    assert operator_share_lines(rows) == [
        "operator share per episode: 0.60 0.40 0.20 0.10 0.00",
        "operator share: first half 0.50, second half 0.10",
    ]
    assert operator_share_lines([]) == []
    assert operator_share_lines(rows[:1]) == ["operator share per episode: 0.60"]


def test_eval_lines_print_both_success_rates_or_why_one_is_missing():
    rows = [
        {
            "policy": "start",
            "source": "s",
            "states": 10,
            "success": "0.200",
            "success_2x": "0.300",
            "progress": "0.500",
            "seeds": "900000-900009",
        },
        {"policy": "final", "source": "none (no weights)", "states": 0},
    ]
    start, final = eval_lines(rows)
    assert "start policy" in start and "success 2/10 = 0.20" in start and "900000-900009" in start
    assert final == "final policy: not evaluated, none (no weights)"
