"""Run under torchrun (2 ranks, gloo on CPU): the DeepSpeed ZeRO-2 engine trains the real tiny pi0 on fixed batches;
rank 0 writes the losses and the final weights (safetensors) next to argv[1] (JSON)."""

import json
import sys
from pathlib import Path

import numpy as np

from hiors_core.schema import TrainingSample
from hiors_learner.engine import DeepSpeedEngine
from hiors_learner.optim import OptimConfig

# A large enough learning rate that a few steps move every trained weight far beyond the comparison tolerance.
OPTIM = OptimConfig(lr=1e-3, min_lr=1e-4, warmup_steps=0, decay_steps=10)
BATCH, STEPS, SEED, POLICY_SEED = 4, 3, 11, 0


def tiny_policy():
    from hiors_policy import build_tiny_policy

    return build_tiny_policy("tora_one", "raise_hand", seed=POLICY_SEED)


def batches(policy):
    """The same minibatches, in the same order, for both engines; one sample per batch is rejected (weight 0)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(STEPS):
        out.append(
            [
                TrainingSample(
                    images={c: rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for c in policy.config.camera_names},
                    state=rng.normal(size=policy.state_dim).astype(np.float32),
                    action_label=rng.normal(size=(policy.horizon, policy.action_dim)).astype(np.float32),
                    instruction=policy.config.instruction,
                    weight=0.0 if i == 1 else 1.0,
                )
                for i in range(BATCH)
            ]
        )
    return out


def main():
    policy = tiny_policy()
    eng = DeepSpeedEngine(policy, OPTIM, BATCH, seed=SEED)
    if eng.rank != 0:
        eng.follow()
        return
    losses = [eng.train_step(b)["loss"] for b in batches(policy)]
    blob = eng.weights_blob()
    eng.close()
    out = Path(sys.argv[1])
    out.with_suffix(".safetensors").write_bytes(blob)
    out.write_text(json.dumps({"losses": losses, "world": eng.world, "step": eng.step}))


if __name__ == "__main__":
    main()
