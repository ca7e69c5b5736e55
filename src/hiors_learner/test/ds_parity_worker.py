"""Run under torchrun: DeepSpeed ZeRO-2 engine on fixed batches; rank 0 writes the losses to argv[1] as JSON."""

import json
import sys
from pathlib import Path

import numpy as np

from hiors_core.schema import TrainingSample
from hiors_learner.engine import DeepSpeedEngine
from hiors_learner.optim import OptimConfig
from hiors_testing.fake_policy import FakePolicy

OPTIM = OptimConfig(lr=1e-2, min_lr=1e-3, warmup_steps=1, decay_steps=10)
BATCH, STEPS = 8, 4


def batches():
    rng = np.random.default_rng(0)
    out = []
    for _ in range(STEPS):
        out.append(
            [
                TrainingSample(
                    images={},
                    state=rng.normal(size=3).astype(np.float32),
                    action_label=rng.normal(size=(4, 8)).astype(np.float32),
                    instruction="x",
                    weight=float(rng.integers(0, 2)),
                )
                for _ in range(BATCH)
            ]
        )
    return out


def main():
    eng = DeepSpeedEngine(FakePolicy(), OPTIM, BATCH, seed=0)
    if eng.rank != 0:
        eng.follow()
        return
    losses = [eng.train_step(b)["loss"] for b in batches()]
    eng.close()
    Path(sys.argv[1]).write_text(json.dumps({"losses": losses, "world": eng.world}))


if __name__ == "__main__":
    main()
