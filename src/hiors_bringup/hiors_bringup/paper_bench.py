"""`hiors bench paper`: the paper's comparisons on the twins, every variant at the same seeds, operator model,
episode count and evaluation budget; only the named switch differs.

Each (variant, seed) is one `hiors up` run (initial demonstrations, then online episodes) followed by
`hiors eval --run` on its learner's final weights (K initial states x R tries: test-time scaling). Reported per
variant, mean and spread (min..max) over seeds: online success and operator share during training, evaluation
success with 1 try and with R tries, learner steps.

Variants (the switch, as node parameter overrides):
  hiors            the method as configured
  bc               behaviour cloning on the initial demonstrations: the same runs, every online episode rejected
  no_human         no human intervention (operator mode never)
  no_noop_filter   no-op filter off
  no_short_filter  short-episode filter off
  fixed_low        samples at f_low only (also while the human drives)
  fixed_high       samples at f_high only (also while the policy drives)
  noisy_reward     reward from an oracle with 30% false positives instead of the true label
  cyclic_lr        cyclical learning-rate schedule instead of warmup + cosine decay
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

from .bench_table import format_table, write_figure

FILTERS = ("episode_filter", "learner")  # both nodes apply the filters: the switch goes to both

VARIANTS: dict[str, tuple] = {
    "hiors": (),
    "bc": tuple((n, k, v) for n in FILTERS for k, v in (("threshold_kind", "constant"), ("threshold_initial", 2.0)))
    + (("sim_operator", "mode", "never"),),
    "no_human": (("sim_operator", "mode", "never"),),
    "no_noop_filter": tuple((n, "noop_enabled", False) for n in FILTERS),
    "no_short_filter": tuple((n, "short_enabled", False) for n in FILTERS),
    "fixed_low": (("arbiter", "sampling_mode", "fixed_low"),),
    "fixed_high": (("arbiter", "sampling_mode", "fixed_high"),),
    "noisy_reward": (("reward_oracle", "false_positive_rate", 0.3),),
    "cyclic_lr": (("learner", "lr_schedule", "cyclic"), ("learner", "cycle_steps", 100)),
}


@dataclass(frozen=True)
class Size:
    robot: str
    episodes: int
    demos: int
    seeds: tuple[int, ...]
    eval_episodes: int
    eval_retries: int


SMALL = Size("tora_one", episodes=4, demos=4, seeds=(0,), eval_episodes=4, eval_retries=2)
FULL = Size("tora_one", episodes=40, demos=10, seeds=(0, 1, 2), eval_episodes=20, eval_retries=4)


def spread(values: list[float]) -> tuple[float, float, float]:
    """(mean, min, max)."""
    if not values:
        raise ValueError("no values")
    return sum(values) / len(values), min(values), max(values)


def summarise(results: list[dict]) -> list[dict]:
    """One row per variant from per-(variant, seed) results, in VARIANTS order."""
    rows = []
    metrics = ("online_success", "human_share", "eval_success_1", "eval_success_R", "learner_steps")
    for name in VARIANTS:
        mine = [r for r in results if r["variant"] == name]
        if not mine:
            continue
        row = {"variant": name, "seeds": len(mine)}
        for m in metrics:
            mean, lo, hi = spread([float(r[m]) for r in mine])
            row[m] = round(mean, 3)
            row[f"{m}_range"] = f"{lo:.2f}..{hi:.2f}"
        rows.append(row)
    return rows


def _online(run: Path) -> tuple[float, float]:
    with open(run / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    return (
        sum(int(r["success"]) for r in rows) / max(len(rows), 1),
        sum(float(r["human_share"]) for r in rows) / max(len(rows), 1),
    )


def _learner_steps(run: Path) -> int:
    try:
        with open(run / "learner" / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        return int(rows[-1]["step"]) if rows else 0
    except FileNotFoundError:
        return 0


def run_one(variant: str, seed: int, size: Size, out: Path) -> dict:
    from .evaluate import run_eval
    from .up import UpOptions, run_up

    run = out / "runs" / f"{variant}-seed{seed}"
    rc = run_up(
        UpOptions(
            robot=size.robot,
            episodes=size.episodes,
            demos=size.demos,
            run_dir=str(run),
            seed=seed,
            overrides=VARIANTS[variant],
        ),
        quiet=True,
    )
    if rc != 0:
        raise RuntimeError(f"{variant} seed {seed}: hiors up failed (rc {rc}); logs in {run / 'logs'}")
    online, human = _online(run)
    ev = argparse.Namespace(
        robot=size.robot,
        task="",
        policy="",
        run=str(run),
        episodes=size.eval_episodes,
        retries=size.eval_retries,
        seed=5000 + seed,
        run_dir=str(run / "eval"),
    )
    run_eval(ev)
    with open(run / "eval" / "success_vs_budget.csv") as f:
        curve = [float(r["success_rate"]) for r in csv.DictReader(f)]
    return {
        "variant": variant,
        "seed": seed,
        "online_success": online,
        "human_share": human,
        "eval_success_1": curve[0],
        "eval_success_R": curve[-1],
        "learner_steps": _learner_steps(run),
    }


def run_paper(out: Path, full: bool = False, variants: tuple[str, ...] = tuple(VARIANTS)) -> int:
    size = FULL if full else SMALL
    results = []
    per_run = out / "paper_runs.csv"
    for variant in variants:
        for seed in size.seeds:
            r = run_one(variant, seed, size, out)
            results.append(r)
            print(
                f"paper: {variant:16s} seed {seed}: online success {r['online_success']:.2f}, "
                f"human {r['human_share']:.2f}, eval {r['eval_success_1']:.2f} / {r['eval_success_R']:.2f}"
            )
            with open(per_run, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(results[0]))
                w.writeheader()
                w.writerows(results)
    rows = summarise(results)
    columns = [
        "variant",
        "seeds",
        "online_success",
        "online_success_range",
        "human_share",
        "eval_success_1",
        "eval_success_R",
        "eval_success_R_range",
        "learner_steps",
    ]
    print(
        f"\n== paper ({'full' if full else 'small'}: {size.robot}, {size.episodes} episodes, {size.demos} demos, "
        f"seeds {list(size.seeds)}, eval {size.eval_episodes} x {size.eval_retries} tries)"
    )
    print(format_table(rows, columns))
    files = write_figure(out, "paper", rows, columns, ("variant", "eval_success_R"))
    print("written: " + ", ".join(str(f) for f in files + [per_run]))
    return 0
