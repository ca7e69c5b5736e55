"""The real tiny pi0 (not a stand-in): samples that rejection weights 0 contribute exactly nothing to the gradient.

Weights come from the rejection rule (`sample_weight(R, m)`: I_m(tau)); noise and time from the engine's (seed, step)
generator, so every backward pass below sees the same flow-matching draws.
"""

import numpy as np
import pytest
import torch

from hiors_core.rejection import sample_weight
from hiors_core.schema import TrainingSample
from hiors_learner.engine import TorchEngine
from hiors_learner.optim import OptimConfig
from hiors_policy import build_tiny_policy

M = 0.5
RETURNS = (1.0, 0.2, 0.9, -1.0)  # I_m: 1, 0 (below m), 1, 0 (negative: never trained on)


def samples(policy, returns, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    out = []
    for r in returns:
        out.append(
            TrainingSample(
                images={c: rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for c in policy.config.camera_names},
                state=(scale * rng.normal(size=policy.state_dim)).astype(np.float32),
                action_label=(scale * rng.normal(size=(policy.horizon, policy.action_dim))).astype(np.float32),
                instruction=policy.config.instruction,
                weight=sample_weight(r, M),
            )
        )
    return out


def rows(job, idx):
    """The sub-job of the given rows (same noise and time for those rows)."""
    idx = torch.as_tensor(idx)
    n = job["n"]

    def take(v):
        if isinstance(v, dict):
            return {k: take(x) for k, x in v.items()}
        return v[idx] if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == n else v

    return {"batch": take(job["batch"]), "weights": take(job["weights"]), "extra": take(job["extra"]), "n": len(idx)}


def grads(engine, job):
    model = engine.policy.model
    model.zero_grad(set_to_none=True)
    loss = engine._loss_sum(job, "cpu")
    loss.backward()
    out = {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return loss.detach(), out


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP threads fighting other processes make each backward
    pass ~100x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def engine(one_torch_thread):
    policy = build_tiny_policy("tora_one", "raise_hand", seed=0)
    return TorchEngine(policy, OptimConfig(warmup_steps=0), seed=3)


def test_rejected_samples_give_exactly_zero_gradient(engine):
    policy = engine.policy
    batch = samples(policy, RETURNS)
    weights = [s.weight for s in batch]
    assert weights == [1.0, 0.0, 1.0, 0.0]
    job = engine.prepare(batch)
    assert set(job["extra"]) == {"noise", "time"}  # the real loss takes the engine's noise and time
    kept, dropped = [i for i, w in enumerate(weights) if w], [i for i, w in enumerate(weights) if not w]

    # The rejected rows alone: zero loss and a gradient that is exactly zero in every parameter.
    loss0, g0 = grads(engine, rows(job, dropped))
    assert float(loss0) == 0.0
    assert all(torch.count_nonzero(g) == 0 for g in g0.values())

    # The whole batch: the rejected rows may hold anything (here: other images, labels 1000x larger) and the
    # gradient does not change by a single bit.
    loss_full, g_full = grads(engine, job)
    garbage = samples(policy, RETURNS, seed=99, scale=1000.0)
    mixed = [garbage[i] if i in dropped else s for i, s in enumerate(batch)]
    job_mixed = engine.prepare(mixed)
    job_mixed["extra"] = job["extra"]  # same flow-matching draws
    assert not torch.equal(job_mixed["batch"]["actions"], job["batch"]["actions"])
    loss_mixed, g_mixed = grads(engine, job_mixed)
    assert torch.equal(loss_mixed, loss_full)
    for name, g in g_full.items():
        assert torch.equal(g, g_mixed[name]), name

    # ... and it is the gradient of the accepted rows alone (up to summation order).
    loss_kept, g_kept = grads(engine, rows(job, kept))
    assert float(loss_kept) == pytest.approx(float(loss_full), rel=1e-5)
    moved = 0
    for name, g in g_full.items():
        torch.testing.assert_close(g, g_kept[name], rtol=1e-4, atol=1e-7, msg=name)
        moved += int(torch.count_nonzero(g) > 0)
    assert moved > 0.9 * len(g_full), "the accepted samples must train most of the network"


def test_a_training_step_ignores_rejected_samples(engine):
    """One optimizer step of the torch engine on a batch with rejected rows lands on the same weights whatever those
    rows contain."""
    policy = engine.policy
    start = {k: v.clone() for k, v in policy.model.state_dict().items()}
    batch = samples(policy, RETURNS)
    garbage = samples(policy, RETURNS, seed=5, scale=100.0)
    mixed = [garbage[i] if s.weight == 0 else s for i, s in enumerate(batch)]
    after = []
    for b in (batch, mixed):
        policy.model.load_state_dict(start)
        eng = TorchEngine(policy, OptimConfig(lr=1e-3, warmup_steps=0), seed=3)
        eng.train_step(b)
        after.append({k: v.clone() for k, v in policy.model.state_dict().items()})
    policy.model.load_state_dict(start)
    changed = [k for k in start if not torch.equal(start[k], after[0][k])]
    assert len(changed) > 0.5 * len(start)
    for k in start:
        assert torch.equal(after[0][k], after[1][k]), k
