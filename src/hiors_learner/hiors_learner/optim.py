"""Optimizer and learning-rate schedule from config: AdamW, warmup + cosine decay (as in the official code:
2.5e-5 -> 2.5e-6), or a cyclical schedule for the ablation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hiors_core.errors import ConfigError

LR_SCHEDULES = ("cosine", "cyclic", "constant")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2.5e-5
    min_lr: float = 2.5e-6
    warmup_steps: int = 1000
    decay_steps: int = 30000  # cosine: steps from the end of warm-up to min_lr
    schedule: str = "cosine"
    cycle_steps: int = 2000  # cyclic: period of one cosine cycle between lr and min_lr
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 1e-10
    grad_clip: float = 1.0

    def __post_init__(self):
        if self.schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr schedule {self.schedule!r} unknown; known: {list(LR_SCHEDULES)}")
        if self.lr <= 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ConfigError(f"need 0 <= min_lr <= lr and lr > 0 (lr={self.lr}, min_lr={self.min_lr})")


def lr_at(step: int, c: OptimConfig) -> float:
    """The learning rate for optimizer step `step` (0-based)."""
    if c.schedule == "constant":
        return c.lr
    if step < c.warmup_steps:
        return c.lr * (step + 1) / (c.warmup_steps + 1)
    s = step - c.warmup_steps
    if c.schedule == "cosine":
        frac = min(s / max(c.decay_steps, 1), 1.0)
    else:  # cyclic: cosine from lr down to min_lr, then restart
        frac = (s % max(c.cycle_steps, 1)) / max(c.cycle_steps, 1)
    return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1.0 + math.cos(math.pi * frac))


def build_optimizer(params, c: OptimConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    opt = torch.optim.AdamW(
        [p for p in params if p.requires_grad], lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_at(step, c) / c.lr)
    return opt, sched
