"""The hold-share figure's arithmetic (pure): counts, runs and the pooled shares from ExecutedCommand authorities."""

import pytest

from hiors_bench.hold_bench import SCHEDULES, HoldStats, hold_stats, pooled, run_demo
from hiors_core.schema import AUTHORITY_HOLD as H
from hiors_core.schema import AUTHORITY_HUMAN as U
from hiors_core.schema import AUTHORITY_POLICY as P


def test_hold_stats_counts_runs_and_the_start_wait():
    s = hold_stats([H, H, H, P, P, P, H, H, P, U, U, H, P, H])
    assert (s.policy, s.hold, s.human, s.start_hold) == (5, 7, 2, 3)
    assert s.runs == (3, 2, 1, 1)
    assert s.share == pytest.approx(7 / 12)
    assert hold_stats([U, U]).share == 0.0  # the human drove throughout: no policy time
    only = hold_stats([H, H])
    assert (only.start_hold, only.runs, only.share) == (2, (2,), 1.0)
    with pytest.raises(ValueError, match="unknown authority 7"):
        hold_stats([P, 7])


def test_pooled_weighs_episodes_by_length_and_sets_the_start_apart():
    long = HoldStats(policy=90, hold=10, human=0, start_hold=4, runs=(4, 6))
    short = HoldStats(policy=5, hold=5, human=10, start_hold=5, runs=(5,))
    p = pooled([long, short])
    assert p["hold_share"] == pytest.approx(15 / 110)  # not the mean of 0.1 and 0.5
    assert p["hold_share_after_start"] == pytest.approx(6 / 101)
    assert (p["start_hold_mean"], p["longest_hold"], p["hold_runs_over_10"]) == (4.5, 6, 0)
    assert p["human_share"] == pytest.approx(10 / 120)
    assert pooled([])["hold_share"] == 0.0


def test_schedules_name_real_parameters():
    from hiors_policy.params import POLICY
    from hiors_teleop.params import ARBITER

    tables = {"policy": POLICY, "arbiter": ARBITER}
    for sets in SCHEDULES.values():
        for s in sets:
            key, value = s.split("=")
            node, param = key.split(".")
            assert value in tables[node][param].choices
    with pytest.raises(ValueError, match="unknown chunk schedule"):
        run_demo("tora_one", "eager", 1, None, "", 0, 1.0)
