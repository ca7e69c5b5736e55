"""Training engines behind one interface: plain torch (one device) and DeepSpeed ZeRO-2 (one rank per GPU).

The policy is any object with `.model` (torch nn.Module), `.collate(samples) -> batch`,
`.loss(batch, weights) -> (B,)` per-sample weighted flow-matching loss, `.to_safetensors_bytes()` and
`.load_safetensors_bytes(blob)` (hiors_policy.Pi0Policy is one).

Step semantics are the same in both engines: the minibatch's per-sample losses are averaged over the whole
minibatch (B), so a weight-0 sample contributes exactly zero gradient and a DeepSpeed run over W ranks
(B / W samples each, gradients averaged) takes the same step as the torch engine on the same minibatch.
For reproducible comparisons the flow-matching noise and time are drawn per sample on rank 0 from a generator
seeded by (seed, step) and travel with the batch, when the policy's loss accepts them.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch

from hiors_core.schema import TrainingSample
from hiors_core.weight_sync import write_atomic

from .optim import OptimConfig, build_optimizer


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    return obj


def slice_batch(obj, lo: int, hi: int, n: int):
    """Rows lo:hi of every batch-sized tensor or list in a (nested) batch; other values are kept."""
    if isinstance(obj, torch.Tensor):
        return obj[lo:hi] if obj.dim() > 0 and obj.shape[0] == n else obj
    if isinstance(obj, dict):
        return {k: slice_batch(v, lo, hi, n) for k, v in obj.items()}
    if isinstance(obj, list) and len(obj) == n:
        return obj[lo:hi]
    return obj


class Engine:
    """Common part: step counter, loss call, noise/time generation."""

    name = "base"

    def __init__(self, policy, optim: OptimConfig, seed: int = 0):
        self.policy = policy
        self.optim_config = optim
        self.seed = int(seed)
        self.step = 0
        params = inspect.signature(policy.loss).parameters
        self._loss_kwargs = {"noise", "time"} <= set(params)

    def _noise_time(self, batch_size: int) -> dict:
        """Per-sample flow-matching noise and time from a (seed, step) generator: u ~ Beta(1.5, 1) * 0.999 + 0.001."""
        if not self._loss_kwargs:
            return {}
        cfg = self.policy.model.config
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.step)
        noise = torch.randn(batch_size, cfg.chunk_size, cfg.max_action_dim, generator=g)
        # Beta(1.5, 1) by inverse CDF: F(u) = u^1.5
        u = torch.rand(batch_size, generator=g) ** (1.0 / 1.5)
        return {"noise": noise, "time": (u * 0.999 + 0.001).float()}

    def prepare(self, samples: list[TrainingSample]) -> dict:
        batch = self.policy.collate(samples)
        weights = torch.tensor([float(s.weight) for s in samples], dtype=torch.float32)
        return {"batch": batch, "weights": weights, "extra": self._noise_time(len(samples)), "n": len(samples)}

    def _loss_sum(self, job: dict, device) -> torch.Tensor:
        kw = _to(job["extra"], device)
        per_sample = self.policy.loss(_to(job["batch"], device), job["weights"].to(device), **kw)
        return per_sample.sum()

    @property
    def lr(self) -> float:
        raise NotImplementedError

    def weights_blob(self) -> bytes:
        return self.policy.to_safetensors_bytes()


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, policy, optim: OptimConfig, device: str = "cpu", seed: int = 0):
        super().__init__(policy, optim, seed)
        self.device = torch.device(device)
        policy.model.to(self.device)
        policy.model.train()
        self.optimizer, self.scheduler = build_optimizer(policy.model.parameters(), optim)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def train_step(self, samples: list[TrainingSample]) -> dict:
        job = self.prepare(samples)
        return self.train_job(job)

    def train_job(self, job: dict) -> dict:
        lr = self.lr
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss_sum(job, self.device) / job["n"]
        loss.backward()
        if self.optim_config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.policy.model.parameters(), self.optim_config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {"loss": float(loss.detach()), "lr": lr}

    def save(self, ckpt_dir: Path) -> None:
        """Optimizer + scheduler state (torch.save: optimizer state only; weights are saved as safetensors)."""
        buf_path = Path(ckpt_dir) / "optimizer.pt"
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}, buf_path)

    def load(self, ckpt_dir: Path, step: int) -> None:
        path = Path(ckpt_dir) / "optimizer.pt"
        if path.exists():
            state = torch.load(path, map_location=self.device, weights_only=True)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(step)

    def close(self) -> None:
        pass


# --- DeepSpeed ZeRO-2 -------------------------------------------------------------------------------------------

OP_TRAIN, OP_SAVE, OP_LOAD, OP_STOP = "train", "save", "load", "stop"


def deepspeed_config(batch_size: int, world: int, optim: OptimConfig, bf16: bool = False) -> dict:
    if batch_size % world:
        raise ValueError(f"batch size {batch_size} must be divisible by the world size {world}")
    return {
        "train_batch_size": batch_size,
        "train_micro_batch_size_per_gpu": batch_size // world,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": optim.grad_clip if optim.grad_clip > 0 else 0.0,
        "zero_optimization": {"stage": 2, "overlap_comm": False, "contiguous_gradients": True},
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": bool(bf16)},
        "steps_per_print": 1_000_000_000,
        "wall_clock_breakdown": False,
    }


class DeepSpeedEngine(Engine):
    """ZeRO-2 across all ranks of the launched job. Rank 0 drives (`train_step`, `save`, `load`, `close`);
    every other rank runs `follow()`, which receives each job from rank 0 through a torch.distributed broadcast."""

    name = "deepspeed"

    def __init__(self, policy, optim: OptimConfig, batch_size: int, seed: int = 0, bf16: bool = False):
        super().__init__(policy, optim, seed)
        import deepspeed
        import torch.distributed as dist

        deepspeed.init_distributed()
        self.dist = dist
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.batch_size = int(batch_size)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
        policy.model.to(self.device)
        policy.model.train()
        opt, sched = build_optimizer(policy.model.parameters(), optim)
        self.ds, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=policy.model,
            optimizer=opt,
            lr_scheduler=sched,
            config=deepspeed_config(self.batch_size, self.world, optim, bf16),
        )

    @property
    def lr(self) -> float:
        return float(self.ds.get_lr()[0])

    def _broadcast(self, obj=None):
        box = [obj]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def train_step(self, samples: list[TrainingSample]) -> dict:
        job = self.prepare(samples)
        if job["n"] != self.batch_size:
            raise ValueError(f"DeepSpeed engine was configured for batch {self.batch_size}, got {job['n']}")
        self._broadcast((OP_TRAIN, job))
        return self._run(job)

    def train_job(self, job: dict) -> dict:
        self._broadcast((OP_TRAIN, job))
        return self._run(job)

    def _run(self, job: dict) -> dict:
        lr = self.lr
        n, mb = job["n"], job["n"] // self.world
        lo, hi = self.rank * mb, (self.rank + 1) * mb
        shard = {
            "batch": slice_batch(job["batch"], lo, hi, n),
            "weights": job["weights"][lo:hi],
            "extra": slice_batch(job["extra"], lo, hi, n),
        }
        # mean over the rank's micro-batch; DeepSpeed averages gradients over ranks -> mean over the minibatch
        loss = self._loss_sum(shard, self.device) / mb
        self.ds.backward(loss)
        self.ds.step()
        self.step += 1
        total = loss.detach().clone().to(self.device)
        self.dist.all_reduce(total)
        return {"loss": float(total) / self.world, "lr": lr}

    def save(self, ckpt_dir: Path) -> None:
        self._broadcast((OP_SAVE, str(ckpt_dir)))
        self._save(str(ckpt_dir))

    def _save(self, ckpt_dir: str) -> None:
        self.ds.save_checkpoint(str(Path(ckpt_dir) / "deepspeed"), tag="state", save_latest=False)

    def load(self, ckpt_dir: Path, step: int) -> None:
        self._broadcast((OP_LOAD, (str(ckpt_dir), int(step))))
        self._load(str(ckpt_dir), int(step))

    def _load(self, ckpt_dir: str, step: int) -> None:
        blob = (Path(ckpt_dir) / "model.safetensors").read_bytes()
        self.policy.load_safetensors_bytes(blob)
        ds_dir = Path(ckpt_dir) / "deepspeed"
        if ds_dir.exists():
            self.ds.load_checkpoint(str(ds_dir), tag="state", load_module_strict=True)
        self.step = step

    def follow(self) -> None:
        """Non-zero ranks: execute rank 0's jobs until it says stop."""
        while True:
            op, arg = self._broadcast()
            if op == OP_TRAIN:
                self._run(arg)
            elif op == OP_SAVE:
                self._save(arg)
            elif op == OP_LOAD:
                self._load(*arg)
            elif op == OP_STOP:
                self._finish()
                return

    def _finish(self) -> None:
        # tear the process group down on every rank, or gloo's threads abort the process at exit
        self.dist.barrier()
        self.dist.destroy_process_group()

    def close(self) -> None:
        if self.rank == 0:
            self._broadcast((OP_STOP, None))
            self._finish()


def save_weights(policy, path: Path) -> bytes:
    blob = policy.to_safetensors_bytes()
    write_atomic(path, blob)
    return blob
