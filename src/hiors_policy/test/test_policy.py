"""Pure tests of the pi0 wrapper: determinism, the flow-matching loss, weight blobs, presets (checkpoint I/O is
tested in test_checkpoint.py)."""

import json

import numpy as np
import pytest
import torch

from conftest import make_obs, make_samples
from hiors_core.errors import BadInputError, ConfigError
from hiors_core.schema import TrainingSample
from hiors_policy import (
    CheckpointError,
    build_tiny_policy,
    collate,
    get_preset,
    pi0_config,
    state_layout,
)
from hiors_policy.preprocess import images_to_tensor


def test_state_layouts():
    assert state_layout("tora_one", "raise_hand") == (
        *(f"left_joint{i}" for i in range(1, 8)),
        "left_gripper",
        *(f"left_ee_{s}" for s in ("x", "y", "z", "qx", "qy", "qz", "qw")),
    )
    xt = state_layout("xtrainer", "insert_moisturizer")
    assert len(xt) == 14 and xt[-2:] == ("left_gripper", "right_gripper")
    with pytest.raises(ConfigError, match="known"):
        state_layout("xtrainer", "raise_hand")


def test_presets():
    with pytest.raises(ConfigError, match="known presets"):
        get_preset("huge")
    cfg = pi0_config("pi0")  # real size: config only, nothing downloaded
    assert cfg.vlm_config.text_config.vocab_size == 257152 and cfg.dit_config.hidden_size == 1024
    assert cfg.chunk_size == 50 and cfg.max_action_dim == 32
    assert get_preset("pi0").dtype == "bfloat16"


def test_image_preprocessing():
    img = np.full((30, 60, 3), 255, np.uint8)
    t = images_to_tensor([img], 56)
    assert t.shape == (1, 3, 56, 56) and t.min() == -1.0 and t.max() == 1.0
    assert torch.all(t[0, :, 28, :] == 1.0)  # the middle row is image
    assert torch.all(t[0, :, 0, :] == -1.0)  # the top rows are padding (black)
    with pytest.raises(BadInputError):
        images_to_tensor([np.zeros((10, 10), np.uint8)], 56)


def test_tokenizer_and_bad_instructions(tiny):
    from transformers import AutoTokenizer

    assert type(tiny.tokenizer).__name__ == "GemmaTokenizer"
    assert (tiny.tokenizer.pad_token_id, tiny.tokenizer.eos_token_id, tiny.tokenizer.bos_token_id) == (0, 1, 2)
    assert type(AutoTokenizer.from_pretrained(tiny_tokenizer_dir(tiny))).__name__ == "GemmaTokenizer"
    ids, mask = tiny.prompt.encode("raise the left hand")
    n_img = 16 * len(tiny.config.camera_names)
    assert (ids[:n_img] == 1024).all() and ids[n_img] == 2 and mask.sum() > n_img + 2
    for bad in ("", "   ", "把手举起来", "x" * 500):
        with pytest.raises(BadInputError):
            tiny.prompt.encode(bad)


def tiny_tokenizer_dir(policy):
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp())
    for name, data in policy.tokenizer_files.items():
        (d / name).write_bytes(data)
    assert json.loads((d / "tokenizer_config.json").read_text()) == {"tokenizer_class": "GemmaTokenizer"}
    return str(d)


def test_deterministic_under_fixed_noise(tiny):
    obs = make_obs(tiny)
    noise = tiny.sample_noise(1)
    a1, a2 = tiny.infer(obs, noise=noise), tiny.infer(obs, noise=noise)
    assert a1.shape == (tiny.horizon, tiny.action_dim) and a1.dtype == np.float32
    np.testing.assert_array_equal(a1, a2)
    a3 = tiny.infer(obs, noise=tiny.sample_noise(1))
    assert not np.allclose(a1, a3)


def test_collate_batch_format(tiny):
    samples = make_samples(tiny, 3)
    samples[1] = TrainingSample(**{**samples[1], "instruction": ""})  # dataclass samples and default instruction
    b = collate(tiny, samples)
    assert b["pixel_values"].shape == (3, 2, 3, 56, 56)
    assert b["state"].shape == (3, 32) and b["actions"].shape == (3, tiny.horizon, 32)
    assert torch.all(b["actions"][:, :, tiny.action_dim :] == 0)
    assert b["action_dim_mask"][0].tolist() == [1.0] * 8 + [0.0] * 24
    bad = make_samples(tiny, 1)
    bad[0]["action_label"] = bad[0]["action_label"][:3]
    with pytest.raises(BadInputError, match="action label"):
        tiny.collate(bad)


def _noise_time(policy, b, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, policy.horizon, 32, generator=g), torch.rand(b, generator=g) * 0.999 + 0.001


def test_loss_matches_hand_computed(tiny):
    batch = tiny.collate(make_samples(tiny, 3))
    noise, u = _noise_time(tiny, 3)
    w = torch.tensor([1.0, 0.5, 2.0])
    got = tiny.loss(batch, w, noise=noise, time=u)
    a = batch["actions"]
    x_u = u[:, None, None] * noise + (1 - u[:, None, None]) * a
    out = tiny.model(
        state=batch["state"],
        noise=x_u,
        timestep=u,
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=batch["pixel_values"],
        pixel_attention_mask=batch["pixel_attention_mask"],
    )
    d = tiny.action_dim
    err = (out.logits - (noise - a))[:, :, :d] ** 2
    expected = err.mean(dim=(1, 2)) * w
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # the model's own (all 32 dims) loss differs: it averages over padding too
    full = ((out.logits - (noise - a)) ** 2).mean(dim=(1, 2))
    assert not torch.allclose(full, expected / w)


def test_padded_dims_do_not_change_the_loss(tiny, monkeypatch):
    batch = tiny.collate(make_samples(tiny, 2))
    noise, u = _noise_time(tiny, 2)
    base = tiny.loss(batch, None, noise=noise, time=u).detach()
    orig = tiny.velocity

    def perturbed(b, n, t, dims):
        v = orig(b, n, t).clone()
        v[:, :, dims] += 100.0
        return v

    monkeypatch.setattr(tiny, "velocity", lambda b, n, t: perturbed(b, n, t, slice(tiny.action_dim, None)))
    torch.testing.assert_close(tiny.loss(batch, None, noise=noise, time=u).detach(), base)
    monkeypatch.setattr(tiny, "velocity", lambda b, n, t: perturbed(b, n, t, slice(0, 1)))
    assert torch.all(tiny.loss(batch, None, noise=noise, time=u).detach() > base + 10)


def test_zero_weight_gives_zero_gradient(tiny):
    samples = make_samples(tiny, 2)
    noise, u = _noise_time(tiny, 2)
    params = [p for p in tiny.model.parameters() if p.requires_grad]

    def grads(batch, w, n, t):
        tiny.model.zero_grad(set_to_none=True)
        tiny.loss(batch, w, noise=n, time=t).sum().backward()
        return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params]

    g_both = grads(tiny.collate(samples), torch.tensor([1.0, 0.0]), noise, u)
    g_one = grads(tiny.collate(samples[:1]), torch.tensor([1.0]), noise[:1], u[:1])
    for a, b in zip(g_both, g_one, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    g_zero = grads(tiny.collate(samples), torch.tensor([0.0, 0.0]), noise, u)
    assert all(torch.count_nonzero(g) == 0 for g in g_zero)
    assert any(torch.count_nonzero(g) > 0 for g in g_one)
    tiny.model.zero_grad(set_to_none=True)


def test_weight_blob_swap_refuses_bad_blobs(tmp_path):
    pol = build_tiny_policy("tora_one", "raise_hand", seed=0)
    other = build_tiny_policy("tora_one", "raise_hand", seed=1)
    old = pol.to_safetensors_bytes()
    wrong_shape = load_file_bytes(old)
    wrong_shape["action_out_proj.weight"] = torch.zeros(32, 65)
    extra = {**load_file_bytes(old), "lm_head.weight": torch.zeros(2)}
    from safetensors.torch import save

    obs, noise = make_obs(pol), pol.sample_noise(1)
    before = pol.infer(obs, noise=noise)
    for blob in (save(wrong_shape), save(extra), b"not safetensors", old[: len(old) // 2]):
        with pytest.raises(CheckpointError):
            pol.load_safetensors_bytes(blob)
        assert pol.to_safetensors_bytes() == old
    sd = load_file_bytes(other.to_safetensors_bytes())
    sd["action_out_proj.bias"][0] = float("nan")

    with pytest.raises(CheckpointError, match="non-finite"):
        pol.load_safetensors_bytes(save(sd))
    assert pol.to_safetensors_bytes() == old
    pol.load_safetensors_bytes(other.to_safetensors_bytes())
    np.testing.assert_array_equal(pol.infer(obs, noise=noise), other.infer(obs, noise=noise))
    assert not np.allclose(pol.infer(obs, noise=noise), before)


def test_weights_file_swap_takes_the_read_tensors(tmp_path):
    """A weights file written streamed and read back verified gives the writer's weights; the swap takes the read
    tensors as the model's (no copy), and a file whose digest is not the announced one is refused."""
    from hiors_core.weight_sync import WeightSyncError

    pol = build_tiny_policy("tora_one", "raise_hand", seed=0)
    other = build_tiny_policy("tora_one", "raise_hand", seed=1)
    sha, size = other.write_weights_file(tmp_path / "w.safetensors", durable=False)
    with pytest.raises(WeightSyncError, match="sha256"):
        pol.read_weights_file(tmp_path / "w.safetensors", "0" * 64, size, None)
    sd = pol.check_weights(pol.read_weights_file(tmp_path / "w.safetensors", sha, size, 2 * size), "w")
    pol.apply_state_dict(sd)
    own = pol.model.state_dict()
    assert all(own[k].data_ptr() == v.data_ptr() for k, v in sd.items())
    assert pol.to_safetensors_bytes() == other.to_safetensors_bytes()
    obs, noise = make_obs(pol), pol.sample_noise(1)
    np.testing.assert_array_equal(pol.infer(obs, noise=noise), other.infer(obs, noise=noise))
    sd = pol.read_weights_file(tmp_path / "w.safetensors", sha, size, None)
    sd["action_out_proj.bias"][0] = float("nan")
    with pytest.raises(CheckpointError, match="non-finite"):
        pol.check_weights(sd)


def load_file_bytes(blob):
    from safetensors.torch import load

    return load(blob)


def test_one_training_step_changes_weights(tiny):
    pol = build_tiny_policy("tora_one", "raise_hand", seed=5)
    pol.model.train()
    opt = torch.optim.AdamW(pol.model.parameters(), lr=1e-3)
    batch = pol.collate(make_samples(pol, 4))
    noise, u = _noise_time(pol, 4)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = pol.loss(batch, torch.ones(4), noise=noise, time=u).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
