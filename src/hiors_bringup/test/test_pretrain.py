"""The base policy stage learns: a few hundred behaviour-cloning steps on fixed scripted demonstrations lower the
held-out error of the chunk's end, and the saved policy loads."""

import csv

import pytest

from hiors_bringup.pretrain import PretrainConfig, pretrain
from hiors_core.errors import ConfigError


def test_bc_lowers_the_held_out_chunk_end_error(tmp_path):
    cfg = PretrainConfig(
        "tora_one", "raise_hand", demos=16, steps=300, batch_size=32, goal_state=True, eval_every=300, heldout_demos=3
    )
    last = pretrain(cfg, tmp_path, say=lambda *_: None)
    with open(tmp_path / "pretrain_curve.csv") as f:
        rows = list(csv.DictReader(f))
    first = float(rows[0]["heldout_end_error"])
    # Untrained, the chunk's end is about the demonstrations' mean pose (8-9 cm off); 300 steps must cut that by
    # at least a quarter (measured: to about 5 cm).
    assert last["heldout_end_error"] < 0.75 * first, rows
    from hiors_policy.policy import Pi0Policy

    policy = Pi0Policy.load(tmp_path / "policy")
    assert "goal_x" in policy.config.state_names
    with pytest.raises(ConfigError, match="exists"):
        pretrain(cfg, tmp_path, say=lambda *_: None)


def test_bad_sizes_are_refused_by_name():
    with pytest.raises(ConfigError, match="steps"):
        PretrainConfig("tora_one", "raise_hand", steps=0)
    with pytest.raises(ConfigError, match="lr"):
        PretrainConfig("tora_one", "raise_hand", lr=float("nan"))
