"""Hand-built episodes for tests (no sim, no ROS)."""

import numpy as np

from hiors_core.robots import MODE_EE_POSE
from hiors_core.schema import AUTHORITY_HUMAN, AUTHORITY_POLICY, EpisodeData, EpisodeMeta, Executed, Frame, Label


def make_episode(
    episode_id="ep-000000", steps=12, dim=8, human=range(4, 8), sample_every=3, reward=1.0, seed=0, image=16
):
    rng = np.random.default_rng(seed)
    meta = EpisodeMeta(
        episode_id=episode_id,
        robot="tora_one",
        task="raise_hand",
        instruction="raise your left hand",
        control_mode=MODE_EE_POSE,
        action_names=tuple(f"a{i}" for i in range(dim)),
        state_names=("s0", "s1", "s2"),
        camera_names=("top", "left_wrist"),
    )
    human = set(human)
    executed, frames = [], []
    for t in range(steps):
        stamp = 1_000_000_000 + t * 40_000_000
        if t % sample_every == 0 or t in human:
            frames.append(
                Frame(
                    step=t,
                    stamp_ns=stamp - 1_000_000,
                    images={c: rng.integers(0, 255, (image, image, 3), dtype=np.uint8) for c in meta.camera_names},
                    state=rng.normal(size=3).astype(np.float32),
                    state_names=meta.state_names,
                    instruction=meta.instruction,
                    sequence=t,
                )
            )
        executed.append(
            Executed(
                step=t,
                stamp_ns=stamp,
                action=np.full(dim, t, np.float32) + rng.normal(scale=0.01, size=dim).astype(np.float32),
                authority=AUTHORITY_HUMAN if t in human else AUTHORITY_POLICY,
                source="quest3" if t in human else "policy",
                is_sample=t % sample_every == 0 or t in human,
            )
        )
    label = (
        None if reward is None else Label(reward=reward, success=reward > 0, source="oracle", stamp_ns=2_000_000_000)
    )
    return EpisodeData(meta=meta, frames=frames, executed=executed, label=label)
