"""A 2-process DeepSpeed ZeRO-2 run on CPU/gloo takes the same steps as the plain torch engine (slow: the first
run in a CI job builds DeepSpeed's shared-memory op with g++; TORCH_EXTENSIONS_DIR under build/ caches it)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_zero2_two_ranks_matches_torch(tmp_path):
    pytest.importorskip("deepspeed")
    from ds_parity_worker import BATCH, OPTIM, batches

    from hiors_learner.engine import TorchEngine
    from hiors_testing.fake_policy import FakePolicy

    out = tmp_path / "ds.json"
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(REPO / "build" / "torch_extensions"), OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561"]
    r = subprocess.run(
        [*torchrun, str(HERE / "ds_parity_worker.py"), str(out)], env=env, capture_output=True, text=True, timeout=580
    )
    assert r.returncode == 0, r.stderr[-3000:]
    ds = json.loads(out.read_text())
    assert ds["world"] == 2
    eng = TorchEngine(FakePolicy(), OPTIM)
    ref = [eng.train_step(b)["loss"] for b in batches()]
    assert len(ref) == len(ds["losses"]) and BATCH % 2 == 0
    for a, b in zip(ref, ds["losses"], strict=True):
        assert abs(a - b) < 1e-4, (ref, ds["losses"])
