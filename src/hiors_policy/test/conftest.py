import numpy as np
import pytest

from hiors_policy import PolicyInput, build_tiny_policy


@pytest.fixture(scope="session")
def tiny():
    return build_tiny_policy("tora_one", "raise_hand", seed=0)


def make_obs(policy, seed=0, hw=(48, 64)):
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for c in policy.config.camera_names}
    state = rng.normal(size=policy.state_dim).astype(np.float32)
    return PolicyInput(images, state, policy.config.instruction)


def make_samples(policy, n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        obs = make_obs(policy, seed + i)
        label = rng.normal(size=(policy.horizon, policy.action_dim)).astype(np.float32)
        out.append(dict(images=obs.images, state=obs.state, action_label=label, instruction=obs.instruction))
    return out
