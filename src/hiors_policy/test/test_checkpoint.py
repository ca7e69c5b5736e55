"""Pure tests of checkpoint I/O: the project layout, lerobot's and openpi's pi0 layouts, sizes, tied embeddings."""

import copy
import dataclasses
import json
import logging
import shutil

import numpy as np
import pytest
import torch
from lerobot_layout import write_lerobot_checkpoint
from safetensors.torch import load_file, save_file

from conftest import make_obs
from hiors_policy import CheckpointError, NormStats, Pi0Policy, build_tiny_policy, pi0_config
from hiors_policy.presets import TINY

ROBOT, TASK = "xtrainer", "insert_moisturizer"
VLM_EMBED, DIT_EMBED = "model.vlm.language_model.embed_tokens.weight", "model.dit.embed_tokens.weight"
LR_VLM_EMBED = "model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
LR_VLM_HEAD = "model.paligemma_with_expert.paligemma.lm_head.weight"
LR_DIT_EMBED = "model.paligemma_with_expert.gemma_expert.model.embed_tokens.weight"
LR_DIT_HEAD = "model.paligemma_with_expert.gemma_expert.lm_head.weight"


def test_save_load_round_trip(tiny, tmp_path):
    stats = NormStats(np.arange(15) * 0.1, np.ones(15) * 2, np.arange(8) * 0.5, np.ones(8) * 0.3)
    pol = build_tiny_policy("tora_one", "raise_hand", seed=3, norm_stats=stats)
    pol.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "hiors_policy.json",
        "model.safetensors",
        "norm_stats.json",
        "pi0_config.json",
        "tokenizer",
    ]
    loaded = Pi0Policy.load(tmp_path / "ckpt")
    assert loaded.config == pol.config
    obs, noise = make_obs(pol), pol.sample_noise(1)
    np.testing.assert_array_equal(loaded.infer(obs, noise=noise), pol.infer(obs, noise=noise))
    assert same_weights(loaded, pol)
    # and differs from another seed's weights (the check can fail)
    other = build_tiny_policy("tora_one", "raise_hand", seed=4, norm_stats=stats)
    assert not np.allclose(other.infer(obs, noise=noise), pol.infer(obs, noise=noise))


@pytest.mark.parametrize("dtype", [None, "bfloat16"])
def test_low_memory_load_gives_the_weights_and_buffers_of_a_filled_random_model(tiny, tmp_path, dtype):
    """Loading builds the model on the meta device and takes the file's tensors (no random init, no second copy):
    every parameter and buffer equals what filling a randomly initialised model gives, and so do its chunks."""
    from transformers import PI0ForConditionalGeneration

    d = tiny.save(tmp_path / "ckpt")
    loaded = Pi0Policy.load(d, dtype=dtype)
    reference = PI0ForConditionalGeneration(tiny.model.config)
    reference.load_state_dict(load_file(str(d / "model.safetensors")))
    if dtype:
        reference.to(torch.bfloat16)
    ours, theirs = dict(loaded.model.named_buffers()), dict(reference.named_buffers())
    assert ours.keys() == theirs.keys() and ours  # the non-persistent buffers (rotary, scales, position ids)
    assert all(v.dtype == theirs[k].dtype and torch.equal(v, theirs[k]) for k, v in ours.items())
    a, b = loaded.model.state_dict(), reference.state_dict()
    assert a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
    assert not any(t.is_meta for t in a.values())
    obs, noise = make_obs(tiny), tiny.sample_noise(1)
    ref = Pi0Policy(reference, tiny.config, tiny.tokenizer_files, tiny.norm)
    np.testing.assert_array_equal(loaded.infer(obs, noise=noise), ref.infer(obs, noise=noise))


@pytest.mark.parametrize("change", ["missing", "unexpected", "shape"])
def test_load_fails_loudly_on_key_mismatch(tiny, tmp_path, change):
    d = tiny.save(tmp_path / "ckpt")
    sd = load_file(str(d / "model.safetensors"))
    if change == "missing":
        sd.pop("action_out_proj.bias")
    elif change == "unexpected":
        sd["lm_head.weight"] = torch.zeros(3)
    else:
        sd["action_out_proj.bias"] = torch.zeros(7)
    save_file(sd, str(d / "model.safetensors"))
    expected = {"missing": "1 missing", "unexpected": "1 unexpected", "shape": "1 with wrong shapes"}[change]
    with pytest.raises(CheckpointError, match=expected):
        Pi0Policy.load(d)


def test_lerobot_layout(tmp_path):
    pol = build_tiny_policy("xtrainer", "insert_moisturizer", seed=1)
    pol.save(tmp_path / "proj")
    lr = write_lerobot_checkpoint(pol.model, tmp_path / "lr", pol.horizon)
    assert any(
        k.startswith("model.paligemma_with_expert.paligemma.model.") for k in load_file(str(lr / "model.safetensors"))
    )
    shutil.copytree(tmp_path / "proj/tokenizer", lr / "tokenizer")
    with pytest.raises(CheckpointError, match="norm stats"):
        Pi0Policy.from_lerobot(lr, "xtrainer", "insert_moisturizer", preset="tiny")
    save_file(
        {
            "observation.state.mean": torch.zeros(14),
            "observation.state.std": torch.ones(14),
            "action.mean": torch.zeros(14),
            "action.std": torch.ones(14),
        },
        str(lr / "policy_preprocessor_step_3_normalizer_processor.safetensors"),
    )
    loaded = Pi0Policy.from_lerobot(lr, "xtrainer", "insert_moisturizer", preset="tiny")
    obs, noise = make_obs(pol), pol.sample_noise(1)
    np.testing.assert_array_equal(loaded.infer(obs, noise=noise), pol.infer(obs, noise=noise))
    # missing / unexpected weights in the lerobot file fail loudly
    for kw in ({"drop": "action_out_proj.bias"}, {"extra": "model.some_new_head.weight"}):
        bad = write_lerobot_checkpoint(pol.model, tmp_path / f"bad{len(kw)}{next(iter(kw))}", pol.horizon, **kw)
        shutil.copytree(tmp_path / "proj/tokenizer", bad / "tokenizer")
        shutil.copy(tmp_path / "proj/norm_stats.json", bad / "norm_stats.json")
        with pytest.raises(CheckpointError, match="do not match"):
            Pi0Policy.from_lerobot(bad, "xtrainer", "insert_moisturizer", preset="tiny")
    # a lerobot checkpoint with a hiors_policy.json beside it loads through Pi0Policy.load
    (lr / "hiors_policy.json").write_text((tmp_path / "proj/hiors_policy.json").read_text())
    again = Pi0Policy.load(lr)
    np.testing.assert_array_equal(again.infer(obs, noise=noise), pol.infer(obs, noise=noise))
    assert json.loads((lr / "config.json").read_text())["type"] == "pi0"


def same_weights(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def xt(tmp_path_factory):
    """(policy, its project-layout folder, another seed's policy): the other's embeddings are the stale copies."""
    pol = build_tiny_policy(ROBOT, TASK, seed=1)
    proj = pol.save(tmp_path_factory.mktemp("proj") / "proj")
    return pol, proj, build_tiny_policy(ROBOT, TASK, seed=2)


def lerobot_folder(pol, proj, out, model=None, **kw):
    """A converted checkpoint of `model` (default pol's) with pol's tokenizer and norm stats beside it."""
    d = write_lerobot_checkpoint(model or pol.model, out, pol.horizon, **kw)
    shutil.copytree(proj / "tokenizer", d / "tokenizer")
    shutil.copy(proj / "norm_stats.json", d / "norm_stats.json")
    return d


def test_untied_embed_tokens_win_over_the_tied_lm_head(xt, tmp_path, caplog):
    """lerobot 0.6.x saves both copies of each input embedding; only embed_tokens is the one it trained."""
    pol, proj, other = xt
    lr = lerobot_folder(pol, proj, tmp_path / "lr", lm_head_from=other.model)
    sd = load_file(str(lr / "model.safetensors"))
    assert not torch.equal(sd[LR_VLM_EMBED], sd[LR_VLM_HEAD]) and not torch.equal(sd[LR_DIT_EMBED], sd[LR_DIT_HEAD])
    with caplog.at_level(logging.INFO, logger="hiors_policy.checkpoint"):
        loaded = Pi0Policy.from_lerobot(lr, ROBOT, TASK, preset="tiny")
    assert same_weights(loaded, pol)
    obs, noise = make_obs(pol), pol.sample_noise(1)
    np.testing.assert_array_equal(loaded.infer(obs, noise=noise), pol.infer(obs, noise=noise))
    info = loaded.load_info
    assert info.layout == "lerobot"
    assert info.embeddings == {VLM_EMBED: LR_VLM_EMBED, DIT_EMBED: LR_DIT_EMBED}
    assert set(info.ignored) == {LR_VLM_HEAD, LR_DIT_HEAD}
    assert LR_VLM_EMBED in caplog.text and LR_VLM_HEAD in caplog.text

    # the lm_head copy would have run another model (so the equality above can fail) ...
    stale = copy.deepcopy(pol.model)
    with torch.no_grad():
        for k in (VLM_EMBED, DIT_EMBED):
            stale.get_parameter(k).copy_(other.model.get_parameter(k))
    assert not np.allclose(
        Pi0Policy(stale, pol.config, pol.tokenizer_files, pol.norm).infer(obs, noise=noise), pol.infer(obs, noise=noise)
    )
    # ... and where lm_head is the only copy (hub checkpoints of older lerobot), it is the one used
    hub = Pi0Policy.from_lerobot(lerobot_folder(pol, proj, tmp_path / "hub", model=stale), ROBOT, TASK, preset="tiny")
    assert hub.load_info.embeddings == {VLM_EMBED: LR_VLM_HEAD, DIT_EMBED: LR_DIT_HEAD} and not hub.load_info.ignored
    assert torch.equal(hub.model.get_parameter(VLM_EMBED), other.model.get_parameter(VLM_EMBED))


def test_openpi_pytorch_layout(xt, tmp_path):
    """openpi's PyTorch pi0: lerobot's names without the leading `model.`, no config.json (the preset sizes it)."""
    pol, proj, other = xt
    op = lerobot_folder(pol, proj, tmp_path / "op", lm_head_from=other.model, openpi=True)
    assert not (op / "config.json").exists()
    assert LR_VLM_EMBED.removeprefix("model.") in load_file(str(op / "model.safetensors"))
    loaded = Pi0Policy.from_lerobot(op, ROBOT, TASK, preset="tiny")
    assert loaded.load_info.layout == "openpi" and set(loaded.load_info.embeddings.values()) == {
        LR_VLM_EMBED.removeprefix("model."),
        LR_DIT_EMBED.removeprefix("model."),
    }
    assert same_weights(loaded, pol)
    obs, noise = make_obs(pol), pol.sample_noise(1)
    np.testing.assert_array_equal(loaded.infer(obs, noise=noise), pol.infer(obs, noise=noise))
    with pytest.raises(CheckpointError, match="config.json"):  # without a config, only a preset can size it
        Pi0Policy.from_lerobot(op, ROBOT, TASK)


def test_sizes_other_than_the_tensors_fail_clearly(xt, tmp_path):
    pol, proj, _ = xt
    lr = lerobot_folder(pol, proj, tmp_path / "lr")
    # config.json names the real pi0 (gemma_2b + gemma_300m), the tensors are tiny: checked on the meta device,
    # before a 3.5B-parameter model would be allocated
    with pytest.raises(
        CheckpointError, match=r"pi0 preset 'pi0' \(sized by config.json's variants.* with wrong shapes"
    ):
        Pi0Policy.from_lerobot(lr, ROBOT, TASK)
    # an explicit preset of another size than the tensors
    wide = dataclasses.replace(TINY, name="tiny_wide", vlm_mlp=96, expert_mlp=96)
    from transformers import PI0ForConditionalGeneration

    wide_model = PI0ForConditionalGeneration(pi0_config(wide, pol.horizon))
    lw = lerobot_folder(pol, proj, tmp_path / "wide", model=wide_model)
    with pytest.raises(CheckpointError, match=r"preset 'tiny' \(sized by preset=\).* with wrong shapes"):
        Pi0Policy.from_lerobot(lw, ROBOT, TASK, preset="tiny")
    loaded = Pi0Policy.from_lerobot(lw, ROBOT, TASK, preset=wide)
    assert all(torch.equal(v, wide_model.state_dict()[k]) for k, v in loaded.model.state_dict().items())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_names_and_dtype_as_transformers_converts_them(xt, tmp_path, dtype):
    """On the hub layout (lm_head only) the project's key map agrees with transformers' `pi0` conversion mapping,
    and the model keeps the checkpoint's dtype as transformers' dtype="auto" does."""
    from transformers import PI0ForConditionalGeneration

    pol, proj, _ = xt
    lr = lerobot_folder(pol, proj, tmp_path / "lr", model=copy.deepcopy(pol.model).to(dtype))
    ours = Pi0Policy.from_lerobot(lr, ROBOT, TASK, preset="tiny").model
    theirs = PI0ForConditionalGeneration.from_pretrained(
        str(lr), config=pi0_config(TINY, pol.horizon), local_files_only=True, use_safetensors=True
    )
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert next(ours.parameters()).dtype == next(theirs.parameters()).dtype == dtype


def test_unreadable_lerobot_weights_fail_clearly(xt, tmp_path):
    pol, proj, _ = xt
    lr = lerobot_folder(pol, proj, tmp_path / "lr")
    (lr / "model.safetensors").write_bytes(b"\x80\x04not safetensors")  # e.g. a pickle under that name
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        Pi0Policy.from_lerobot(lr, ROBOT, TASK, preset="tiny")
