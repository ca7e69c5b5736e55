"""The `bc` baseline of `hiors bench paper`: behaviour cloning, offline, on scripted demonstrations only, with the
operator budget and the gradient steps of the Hi-ORS run of the same seed.

Budget: every operator-driven sample that Hi-ORS run recorded (its demonstrations plus the samples the operator
drove during online episodes, accepted or not: the operator's time is spent either way) and its learner's last
step. BC gets exactly that many demonstration samples: the Hi-ORS run's own demonstrations first, then further
scripted ones from seeds no run or evaluation uses, the last one cut to fit. Failed demonstrations count against
the budget (the operator spent them) but are never trained on.

Training is the learner core in process (hiors_learner.learner.Learner with the engine the learner node builds),
with the Hi-ORS learner's own parameters (its `params/learner.yaml`), from the policy it started from, unpaced
up to the step count; BC keeps every successful demonstration (a constant threshold of 0, no rising m: that is
Hi-ORS's rejection sampling, not BC). Its weights are published into `learner/weights` at start and every
`publish_every` steps as the node publishes them, so `hiors eval --run` evaluates it exactly as the other variants.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import yaml

from hiors_core.episode_log import EpisodeLog
from hiors_core.labelling import training_samples

# First seed of BC's extra demonstrations, per run seed: far from the Hi-ORS runs' demonstrations (10000 + seed
# onwards), their online episodes and the evaluation's initial states (5000 + seed onwards).
EXTRA_DEMO_SEED = 100_000
EXTRA_DEMO_SEED_STRIDE = 10_000


def take_budget(counts: list[int], budget: int) -> list[int]:
    """How many samples to take from each episode, in order, so that they add up to `budget` exactly (pure):
    whole episodes while they fit, the first that does not cut to the rest, none after it."""
    if budget < 0 or any(c < 0 for c in counts):
        raise ValueError(f"negative budget or count: {budget}, {counts}")
    if sum(counts) < budget:
        raise ValueError(f"{sum(counts)} samples in {len(counts)} episodes, fewer than the budget of {budget}")
    out, left = [], budget
    for c in counts:
        out.append(min(c, left))
        left -= out[-1]
    return out


def demos_needed(have: int, budget: int, recorded: list[int]) -> int:
    """How many more demonstrations to record to reach `budget` samples from `have` (pure), estimated from the
    mean length of those recorded so far (at least one while short, none when there)."""
    if have >= budget:
        return 0
    mean = sum(recorded) / len(recorded) if recorded and sum(recorded) > 0 else 1.0
    return max(1, math.ceil((budget - have) / mean))


def operator_samples(episode) -> int:
    """Training samples of one episode whose step the operator drove (what the budget counts)."""
    return sum(s.is_human for s in training_samples(episode, 1))  # the count does not depend on the horizon


def operator_budget(run: Path) -> tuple[int, int]:
    """(operator-driven samples in the run's demonstrations, in its online episodes) of a `hiors up` run folder."""
    out = []
    for sub in ("demos", "episodes"):
        log = EpisodeLog(run / sub) if (run / sub).is_dir() else None
        out.append(sum(operator_samples(ep) for ep in log.iter_episodes()) if log else 0)
    return out[0], out[1]


def learner_parameters(run: Path) -> dict:
    """The parameters a run's learner node ran with (every declared default, then its params file)."""
    from hiors_core.params import defaults
    from hiors_learner.params import LEARNER

    p = defaults(LEARNER)
    given = yaml.safe_load((run / "params" / "learner.yaml").read_text())
    return p | given["learner"]["ros__parameters"]


def bc_parameters(hiors: dict, run: Path, steps: int) -> dict:
    """BC's learner parameters from the Hi-ORS learner's (pure): its own folders, no log to backfill, unpaced up
    to `steps`, a constant threshold of 0 (every successful demonstration kept), the start policy under `run`."""
    return hiors | {
        "run_dir": str(run / "learner"),
        "log_dir": "",
        "demo_log_dir": "",
        "policy_path": str(run / "policy") if hiors["policy_path"] else "",
        "utd_target": 0.0,
        "max_steps": int(steps),
        "threshold_kind": "constant",
        "threshold_initial": 0.0,
    }


def _image_size(log: EpisodeLog) -> dict:
    """record_demos' image size argument: that of the log's first episode (none: its default)."""
    for ep in log.iter_episodes():
        if ep.frames:
            return {"image_size": int(next(iter(ep.frames[0].images.values())).shape[0])}
    return {}


def record_bc_demos(robot: str, task: str, hiors_run: Path, out: Path, budget: int, seed: int) -> list[int]:
    """BC's demonstrations in `out`: the Hi-ORS run's, then more scripted ones until `budget` operator-driven
    samples; returns each one's operator-driven sample count, in recording order."""
    from hiors_bringup.demos import record_demos

    if (hiors_run / "demos").is_dir():
        shutil.copytree(hiors_run / "demos", out)
    log = EpisodeLog(out)
    counts = [operator_samples(log.read(eid)) for eid in log.trainable_ids()]
    size = _image_size(log)
    next_seed = EXTRA_DEMO_SEED + EXTRA_DEMO_SEED_STRIDE * seed
    while n := demos_needed(sum(counts), budget, counts):
        before = set(log.trainable_ids())
        record_demos(robot, task, n, out, seed=next_seed, **size)
        next_seed += n
        new = [eid for eid in log.trainable_ids() if eid not in before]
        if not new:
            raise RuntimeError(f"{out}: recording {n} demonstration(s) wrote none")
        counts += [operator_samples(log.read(eid)) for eid in new]
    return counts


def run_bc(robot: str, task: str, seed: int, hiors_run: Path, run: Path, log=print) -> dict:
    """Train BC at the Hi-ORS run's budget into `run` (a folder `hiors eval --run` reads); returns its budget,
    learner steps and achieved UTD."""
    from hiors_learner.learner import Learner
    from hiors_learner.learner_node import learner_config, make_engine

    from .paper_bench import learner_stats

    demos, interventions = operator_budget(hiors_run)
    budget = demos + interventions
    steps, _ = learner_stats(hiors_run / "learner" / "metrics.csv")
    run.mkdir(parents=True, exist_ok=True)
    hiors = learner_parameters(hiors_run)
    p = bc_parameters(hiors, run, steps)
    if hiors["policy_path"]:
        shutil.copytree(hiors["policy_path"], run / "policy")  # the policy the Hi-ORS run started from
    counts = record_bc_demos(robot, task, hiors_run, run / "demos", budget, seed)
    takes = take_budget(counts, budget)
    engine = make_engine(p)
    learner = Learner(learner_config(p, engine.policy), engine, logger=log)
    try:
        learner.publish_weights()  # version 1 = the start, as the node publishes it
        demo_log = EpisodeLog(run / "demos")
        for eid, take in zip(demo_log.trainable_ids(), takes, strict=True):
            if take == 0:
                break
            ep = demo_log.read(eid)
            if not (ep.label is not None and ep.label.success):
                continue  # a failed demonstration: counted in the budget, never trained on
            samples = training_samples(ep, learner.cfg.horizon)[:take]
            learner.offer(eid, samples, ep.episode_return, ep.meta.control_mode, source="demo")
        while learner.ready():
            learner.train_once()
        status = learner.status()
    finally:
        learner.close()
        engine.close()
    log(
        f"bc: {budget} operator samples ({demos} demonstration + {interventions} intervention in {hiors_run.name}) "
        f"as {len(counts)} demonstrations, {status['buffer_samples']} trained on; {status['step']} of {steps} steps"
    )
    return {
        "operator_samples": sum(takes),
        "learner_steps": int(status["step"]),
        "learner_utd": float(status["utd"]),
    }
