"""The in-process Hi-ORS loop (`hiors_bench.online_loop`): two short raise_hand episodes with the tiny pi0, an
operator that steps in quickly, and a learner that starts from nothing. What the loop wrote is read back from its
episode log and checked against the rules of the nodes whose cores it runs."""

import pytest

from hiors_bench.online_loop import OnlineConfig, node_params, operator_config, run_online
from hiors_core.episode_log import STATUS_ACKED, EpisodeLog
from hiors_core.errors import ConfigError
from hiors_core.filters import FilterConfig
from hiors_core.labelling import training_samples
from hiors_core.rejection import ThresholdConfig
from hiors_core.schema import AUTHORITY_HUMAN, AUTHORITY_POLICY
from hiors_policy.checkpoint import build_tiny_policy
from hiors_sim.operator import OperatorConfig

ROBOT, TASK = "tora_one", "raise_hand"
K_AUTO = 6
UTD = 0.5


def segments(flags):
    """(authority, start, length) runs of equal authority."""
    out, start = [], 0
    for i in range(1, len(flags) + 1):
        if i == len(flags) or flags[i] != flags[start]:
            out.append((flags[start], start, i - start))
            start = i
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    def tiny():
        return build_tiny_policy(ROBOT, TASK, seed=0, num_steps=2)  # 2 denoising steps: a fast actor

    actor, learner = tiny(), tiny()
    start = actor.to_safetensors_bytes()
    cfg = OnlineConfig(
        episodes=2,
        k_auto=K_AUTO,
        utd=UTD,
        publish_every=2,
        time_limit=2.0,
        # An operator who steps in after 0.5 s without progress and hands back soon: both drive in 2 s.
        operator=OperatorConfig(stall_s=0.5, reaction_delay_s=0.1, min_takeover_s=0.3, handback_progress=0.02),
        # Every labelled episode goes to the learner (failures score R = 0 >= m = 0), so it trains from nothing.
        threshold=ThresholdConfig(kind="constant", initial=0.0),
        filters=FilterConfig(noop_enabled=False),
        params=(("learner", "batch_size", 2), ("learner", "checkpoint_every", 0)),
    )
    out = tmp_path_factory.mktemp("online")
    seen = []
    summaries = run_online(ROBOT, TASK, actor, learner, out, cfg, [3, 4], on_episode=seen.append)
    return out, summaries, seen, actor, start


def test_episodes_are_written_to_the_log_and_read_back(run):
    out, summaries, seen, _, _ = run
    assert seen == summaries and len(summaries) == 2
    log = EpisodeLog(out / "episodes")
    assert [s.episode_id for s in summaries] == log.ids()
    for s in summaries:
        assert log.entries()[s.episode_id].status == STATUS_ACKED  # the filter's verdict came back
        ep = log.read(s.episode_id)
        assert ep.label is not None and ep.label.source == "oracle"
        assert (ep.label.success, ep.label.reward) == (s.success, s.reward)
        assert len(ep.executed) == s.steps and len(ep.frames) == s.samples
        assert int(ep.human_mask.sum()) == s.human_steps and ep.interventions == s.interventions
        assert s.sim_s == pytest.approx(s.steps / 25.0) and s.sim_s <= 2.0 + 1e-9
        assert s.accepted and s.reason == "accepted" and s.m == 0.0 and s.in_training_set
    # the verdicts are the learner's (it owns m): its own record names each online episode it admitted
    admitted = [r.split(",") for r in (out / "learner" / "verdicts.csv").read_text().splitlines()[1:]]
    assert [r[2] for r in admitted if r[3] == "online" and r[6] == "admitted"] == [s.episode_id for s in summaries]
    rows = (out / "episodes.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("index,episode_id,seed,cell,success")
    assert all(s.train_s > 0 for s in summaries[1:]) and all(s.infer_s > 0 for s in summaries)


def test_samples_at_dual_rate(run):
    """Every human step is a sample; a policy step is one only at the start of its chunk (every k_auto steps of a
    policy segment, chunks running back to back)."""
    out, summaries, _, _, _ = run
    log = EpisodeLog(out / "episodes")
    human_samples = policy_chunks = 0
    for s in summaries:
        ep = log.read(s.episode_id)
        flags = [e.authority for e in ep.executed]
        sampled = {f.step for f in ep.frames}
        assert sampled == {e.step for e in ep.executed if e.is_sample}  # a frame at exactly the sample steps
        expected = set()
        for authority, start, length in segments(flags):
            if authority == AUTHORITY_HUMAN:
                expected |= set(range(start, start + length))
            elif authority == AUTHORITY_POLICY:
                expected |= set(range(start, start + length, K_AUTO))
                policy_chunks += len(range(0, length, K_AUTO))
        assert sampled == expected
        human_samples += sum(flags[i] == AUTHORITY_HUMAN for i in sampled)
        assert s.human_samples == sum(flags[i] == AUTHORITY_HUMAN for i in sampled)
    assert human_samples > 0 and policy_chunks > 0  # both drove: the rule was exercised both ways


def test_an_operator_takeover_is_recorded_as_human_samples(run):
    out, summaries, _, _, _ = run
    engaged = [s for s in summaries if s.interventions > 0]
    assert engaged, "the operator never took over"
    ep = EpisodeLog(out / "episodes").read(engaged[0].episode_id)
    human = [e for e in ep.executed if e.authority == AUTHORITY_HUMAN]
    assert human and all(e.is_sample for e in human) and {e.source for e in human} == {"quest3"}
    assert any(t.is_human for t in training_samples(ep, 16))


def test_learner_takes_utd_steps_per_sample(run):
    out, summaries, _, _, _ = run
    total = sum(s.samples for s in summaries)
    assert summaries[-1].learner_step == int(UTD * total) > 0
    assert summaries[0].learner_step == int(UTD * summaries[0].samples)
    metrics = (out / "learner" / "metrics.csv").read_text().splitlines()
    assert len(metrics) - 1 == summaries[-1].learner_step  # one row per gradient step


def test_published_weights_reach_the_actor(run):
    out, summaries, _, actor, start = run
    weights = sorted((out / "learner" / "weights").glob("policy-v*.safetensors"))
    assert (
        summaries[-1].policy_version > 1
        and weights[-1].name == f"policy-v{summaries[-1].policy_version:08d}.safetensors"
    )
    import torch
    from safetensors.torch import load

    now = actor.to_safetensors_bytes()
    published = load(weights[-1].read_bytes())  # (the streamed file's header is laid out apart from save()'s)
    assert now != start and all(torch.equal(t, published[k]) for k, t in load(now).items())
    # The second episode's chunks came from trained weights.
    ep = EpisodeLog(out / "episodes").read(summaries[1].episode_id)
    versions = {e.policy_version for e in ep.executed if e.authority == AUTHORITY_POLICY}
    assert versions and min(versions) > 1


def test_node_params_layer_declared_defaults_config_and_overrides():
    cfg = OnlineConfig(k_auto=5, params=(("learner", "lr", 1), ("episode_filter", "min_samples", 7)))
    p = node_params(ROBOT, TASK, cfg)
    assert p["arbiter"]["k_auto"] == 5 and p["arbiter"]["sampling_mode"] == "dual"  # run's choice, then the yaml
    assert p["learner"]["publish_every"] == 20 and p["learner"]["warmup_steps"] == 20  # config/tora_one.yaml
    assert p["learner"]["lr"] == 1.0 and isinstance(p["learner"]["lr"], float)  # an int given for a double
    assert p["learner"]["engine"] == "torch" and p["learner"]["grad_clip"] == 1.0  # declared defaults
    assert p["episode_filter"]["min_samples"] == 7 and p["episode_filter"]["return_mode"] == "graded"
    with pytest.raises(ConfigError, match="no in-process node 'capture'"):
        OnlineConfig(params=(("capture", "x", 1),))


def test_operator_config_from_the_node_or_the_run_with_the_variant_switch_on_top():
    never = (("sim_operator", "mode", "never"),)
    cfg = OnlineConfig(seed=3, params=never + (("sim_operator", "stall_s", 2),))
    op = operator_config(cfg, node_params(ROBOT, TASK, cfg)["sim_operator"])
    assert (op.mode, op.stall_s, op.seed) == ("never", 2.0, 3)  # the no_human variant's switch, the run's seed
    mine = OperatorConfig(stall_s=0.5, reaction_delay_s=0.1)
    cfg = OnlineConfig(seed=4, operator=mine, params=never)
    op = operator_config(cfg, node_params(ROBOT, TASK, cfg)["sim_operator"])
    assert (op.mode, op.stall_s, op.reaction_delay_s, op.seed) == ("never", 0.5, 0.1, 4)
