"""`hiors pretrain`: the base policy stage, as in the paper (pi0 first fine-tuned on demonstrations, then
post-trained online with Hi-ORS).

Scripted demonstrations (`demos.record_demos`) are recorded to `<out>/demos` as episode bags; the successful ones
give the normalisation statistics and the training samples (a failed demonstration is never trained on). A fresh
tiny pi0 is trained on them with the learner's own engine (`hiors_learner.engine.TorchEngine`, transformers' PI0
and its flow-matching loss) for `steps` gradient steps, and saved to `<out>/policy` in the project's checkpoint
layout, which `hiors up --policy`, `hiors eval --policy` and the learning benchmark load.

The BC learning curve goes to `<out>/pretrain_curve.csv` every `eval_every` steps: the training loss, the
held-out error of the chunk's end (demonstrations from seeds no training demonstration uses: the end position's
distance in m for end-effector tasks, the mean absolute joint error in rad for joint tasks) and, with
`val_states`, the autonomous success on that many validation initial states (their own seeds, never the
evaluation's).

Seeds (disjoint by construction): training demonstrations 10000 + k, held-out demonstrations 20000 + k, validation
states 30000 + k. Evaluation states (the learning benchmark's) start at 900000.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiors_core.errors import ConfigError

DEMO_SEED, HELDOUT_SEED, VAL_SEED = 10_000, 20_000, 30_000


@dataclass(frozen=True)
class PretrainConfig:
    robot: str
    task: str
    demos: int = 40
    steps: int = 400
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 50
    goal_state: bool = False
    seed: int = 0
    eval_every: int = 100
    heldout_demos: int = 6
    val_states: int = 0
    image_size: int = 0  # camera size the twin renders at; 0: the policy's input size (no resize in between)

    def __post_init__(self):
        for name in ("demos", "steps", "batch_size", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"pretrain: {name} must be at least 1, got {getattr(self, name)}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"pretrain: lr must be a positive number, got {self.lr}")


def shrink_images(samples, size: int):
    """Samples with their images resized once to the policy's input size (what `collate` would do every step),
    so that hundreds of 224 px frames fit in memory and a training step does not resize them again."""
    from hiors_policy.preprocess import images_to_tensor

    out = []
    cache: dict[int, np.ndarray] = {}  # frames are shared by consecutive samples' views
    for s in samples:
        small = {}
        for cam, img in s.images.items():
            key = id(img)
            if key not in cache:
                t = images_to_tensor([img], size)[0]
                cache[key] = ((t + 1.0) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
            small[cam] = cache[key]
        s.images = small
        out.append(s)
    return out


def load_samples(log_dir: Path, horizon: int, image_size: int, successful_only: bool = True) -> list:
    """Training samples of the (successful) episodes of an episode log, images at the policy's size (0: as
    recorded, e.g. only to count them)."""
    from hiors_core.episode_log import EpisodeLog
    from hiors_core.labelling import training_samples

    log = EpisodeLog(log_dir)
    samples = []
    for eid in log.trainable_ids():
        ep = log.read(eid)
        if successful_only and (ep.label is None or ep.label.reward <= 0):
            continue
        samples += (
            shrink_images(training_samples(ep, horizon), image_size) if image_size else training_samples(ep, horizon)
        )
    return samples


def chunk_end_error(policy, samples, ee: bool) -> float:
    """Mean error of the predicted chunk's last action against the label's (zero noise: the flow's mean path):
    position distance (m) for end-effector layouts, mean absolute joint error (rad) otherwise."""
    import torch

    from hiors_policy.policy import PolicyInput

    errs = []
    zero = torch.zeros(1, policy.model.config.chunk_size, policy.model.config.max_action_dim)
    for s in samples:
        chunk = policy.infer(PolicyInput(s.images, s.state, s.instruction, s.state_names), noise=zero)
        want = np.asarray(s.action_label)[-1]
        if ee:
            errs.append(float(np.linalg.norm(chunk[-1, :3] - want[:3])))
        else:
            errs.append(float(np.mean(np.abs(chunk[-1, :-2] - want[:-2]))))
    return float(np.mean(errs)) if errs else float("nan")


def autonomous_success(policy, robot: str, task: str, seeds, image_size: int = 0) -> tuple[float, float]:
    """(success rate, mean final progress) of `policy` alone from the initial states `seeds` (all grid cells,
    round robin), each one attempt of the task's time limit ending at any failure, as `hiors eval` runs it."""
    from .evaluate import evaluate_policy

    r = evaluate_policy(policy, robot, task, seeds, budgets=(1.0,), end_on="failure", image_size=image_size)
    return r["success"], r["progress"]


def pretrain(cfg: PretrainConfig, out: str | Path, say=print) -> dict:
    """Record demonstrations, train the base policy, save it; returns the last curve row."""
    from hiors_core.tasks import get_task
    from hiors_learner.engine import TorchEngine
    from hiors_learner.optim import OptimConfig
    from hiors_policy.checkpoint import build_tiny_policy
    from hiors_policy.dataset_stats import stats_from_log
    from hiors_policy.layout import state_layout
    from hiors_policy.presets import get_preset

    from .demos import record_demos

    spec = get_task(cfg.task, cfg.robot)
    image_size = cfg.image_size or get_preset("tiny").image_size
    out = Path(out)
    if (out / "policy").exists():
        raise ConfigError(f"{out / 'policy'} exists: pretrain writes a new base policy, give another --out")
    t0 = time.time()
    demos_dir, heldout_dir = out / "demos", out / "heldout_demos"
    ok = record_demos(cfg.robot, cfg.task, cfg.demos, demos_dir, seed=DEMO_SEED, image_size=image_size)
    if ok == 0:
        raise ConfigError(f"pretrain: none of the {cfg.demos} scripted demonstrations of {cfg.task} succeeded")
    record_demos(cfg.robot, cfg.task, cfg.heldout_demos, heldout_dir, seed=HELDOUT_SEED, image_size=image_size)
    say(f"hiors pretrain: {ok}/{cfg.demos} demonstrations succeeded ({time.time() - t0:.0f} s)")
    names = state_layout(cfg.robot, cfg.task, goal=cfg.goal_state)
    policy = build_tiny_policy(
        cfg.robot, cfg.task, seed=cfg.seed, norm_stats=stats_from_log(demos_dir, names), goal_state=cfg.goal_state
    )
    size, horizon = policy.config.image_size, policy.horizon
    train = load_samples(demos_dir, horizon, size)
    heldout = load_samples(heldout_dir, horizon, size)
    heldout = [heldout[i] for i in np.linspace(0, len(heldout) - 1, min(24, len(heldout))).astype(int)]
    optim = OptimConfig(
        lr=cfg.lr, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps, decay_steps=max(1, cfg.steps - cfg.warmup_steps)
    )
    engine = TorchEngine(policy, optim, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    ee = spec.control_mode == "ee"
    val_seeds = [VAL_SEED + k for k in range(cfg.val_states)]
    rows: list[dict] = []
    curve = out / "pretrain_curve.csv"

    def evaluate(step: int, loss: float) -> None:
        policy.model.eval()
        row = {"step": step, "loss": loss, "heldout_end_error": chunk_end_error(policy, heldout, ee)}
        if val_seeds:
            row["val_success"], row["val_progress"] = autonomous_success(
                policy, cfg.robot, cfg.task, val_seeds, image_size
            )
        row["wall_s"] = time.time() - t0
        policy.model.train()
        rows.append(row)
        with open(curve, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[-1]))
            w.writeheader()
            w.writerows(rows)
        say("hiors pretrain: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()))

    say(
        f"hiors pretrain: {cfg.robot}/{cfg.task}, {len(train)} samples, {cfg.steps} steps of batch {cfg.batch_size}"
        + (" (goal-state variant)" if cfg.goal_state else " (cameras only)")
    )
    evaluate(0, float("nan"))
    losses: list[float] = []
    for step in range(1, cfg.steps + 1):
        batch = [train[i] for i in rng.integers(0, len(train), cfg.batch_size)]
        losses.append(engine.train_step(batch)["loss"])
        if step % cfg.eval_every == 0 or step == cfg.steps:
            evaluate(step, float(np.mean(losses[-cfg.eval_every :])))
    policy.model.eval()
    policy.save(out / "policy")
    say(f"hiors pretrain: base policy saved to {out / 'policy'} ({time.time() - t0:.0f} s)")
    return rows[-1]


def run_pretrain(args) -> int:
    from hiors_core.tasks import task_or_default

    cfg = PretrainConfig(
        robot=args.robot,
        task=task_or_default(args.robot, args.task or "").name,  # a ConfigError naming the robot's tasks
        demos=args.demos,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        goal_state=args.goal_state,
        seed=args.seed,
        eval_every=args.eval_every,
        val_states=args.val_states,
    )
    out = Path(args.out or f"runs/pretrain-{cfg.robot}-{cfg.task}-{time.strftime('%Y%m%d-%H%M%S')}")
    pretrain(cfg, out)
    return 0
