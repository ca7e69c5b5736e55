"""`hiors bench paper`: the paper's comparisons on the twins, every variant at the same seeds, operator model,
episode count and evaluation budget; only the named switch differs.

Each (task, variant, seed) is one `hiors up` run (scripted initial demonstrations, then online episodes with the
simulated operator and the reward oracle; `bc` trains offline instead) followed by `hiors eval --run` on its
learner's last published weights: K initial states, each one long attempt that goes on after a recoverable
failure until success, an unrecoverable failure or the largest time budget (test-time scaling as the paper
measures it: success vs time budget), then up to R tries over resets (pass@k, a second view). Reported per
variant, mean and spread (min..max) over seeds: online success and the operator's share of control steps during
training, evaluation success within the task's time limit, within the largest time budget and within R tries over
resets, the operator-driven samples spent (demonstrations + interventions), learner steps and the learner's
achieved update-to-data ratio (gradient steps per received sample). `paper_tts.csv`/`.png` (the test-time scaling
figure): success vs time budget per variant, mean and range over seeds; `paper_retries.csv`: success vs tries over
resets 1..R.

Variants (the switch, as node parameter overrides):
  hiors            the method as configured
  bc               behaviour cloning, offline, on scripted demonstrations only: as many operator-driven samples
                   as the `hiors` run of the same seed spent in total (demonstrations + interventions) and its
                   number of gradient steps, then the same evaluation (`bc_baseline.py`); no online episodes
  no_human         no human intervention (operator mode never)
  no_noop_filter   no-op filter off
  no_short_filter  short-episode filter off
  fixed_low        samples at f_low only (also while the human drives)
  fixed_high       samples at f_high only (also while the policy drives)
  noisy_reward     reward from an oracle with 30% false positives instead of the true label
  cyclic_lr        cyclical learning-rate schedule instead of warmup + cosine decay
  constant_m       the threshold m stays at its initial value instead of rising (the learner owns m): rising vs
                   constant m, with graded returns (hiors_core/returns.py) the two keep different episodes

A HIL-SERL-style actor-critic baseline is not among them (see docs/RESULTS.md).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from hiors_bringup.evaluate import read_eval
from hiors_core.errors import ConfigError

from .bench_table import format_table, write_figure, write_provenance

FILTERS = ("episode_filter", "learner")  # both nodes apply the filters: a filter switch goes to both
SEEDED = ("learner", "policy", "sim_operator", "reward_oracle")  # nodes whose `seed` follows the run's seed

VARIANTS: dict[str, tuple] = {
    "hiors": (),
    "bc": (),  # no graph: trained offline at the hiors run's budget (bc_baseline.run_bc)
    "no_human": (("sim_operator", "mode", "never"),),
    "no_noop_filter": tuple((n, "noop_enabled", False) for n in FILTERS),
    "no_short_filter": tuple((n, "short_enabled", False) for n in FILTERS),
    "fixed_low": (("arbiter", "sampling_mode", "fixed_low"),),
    "fixed_high": (("arbiter", "sampling_mode", "fixed_high"),),
    "noisy_reward": (("reward_oracle", "false_positive_rate", 0.3),),
    "cyclic_lr": (("learner", "lr_schedule", "cyclic"),),  # its period: Size.schedule's cycle_steps
    "constant_m": (("learner", "threshold_kind", "constant"),),  # m (the learner's) = threshold_initial throughout
}


@dataclass(frozen=True)
class Size:
    tasks: tuple[tuple[str, str], ...]  # (robot, task)
    episodes: int
    demos: int
    seeds: tuple[int, ...]
    eval_episodes: int
    eval_retries: int
    eval_time_limit: float = 0.0  # s of sim time per evaluation try; 0 = the task's own
    # the long attempt's time budgets, in multiples of that time limit (the first one, 1x, gives eval_success_1)
    eval_budgets: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    # Learning-rate schedule sized to the run's learner steps, the same for every variant (the learner's defaults,
    # 1000 warm-up steps and 30000 decay steps, would keep a short run inside its warm-up, where the cosine and
    # the cyclical schedules are the same). cycle_steps only matters to the cyclical one.
    schedule: tuple = ()


# About 10 minutes on 2 CPU cores (~30 s per run: graph start, 3 demos, 2 online episodes, 2 initial states x one
# evaluation attempt of up to 10 s, no tries over resets; 18 runs): every switch run end to end at 2 seeds. A smoke
# test of the comparisons, not a learning result.
SMALL = Size(
    (("tora_one", "raise_hand"),),
    episodes=2,
    demos=3,
    seeds=(0, 1),
    eval_episodes=2,
    eval_retries=0,
    eval_time_limit=5.0,
    eval_budgets=(1.0, 1.5, 2.0),
    schedule=(("learner", "warmup_steps", 5), ("learner", "decay_steps", 100), ("learner", "cycle_steps", 20)),
)
# Every sim task, 3 seeds: hours, for a GPU machine.
FULL = Size(
    (("tora_one", "raise_hand"), ("tora_one", "pack_detergent"), ("xtrainer", "insert_moisturizer")),
    episodes=40,
    demos=10,
    seeds=(0, 1, 2),
    eval_episodes=20,
    eval_retries=4,
    schedule=(("learner", "warmup_steps", 100), ("learner", "decay_steps", 3000), ("learner", "cycle_steps", 300)),
)

METRICS = (
    "online_success",
    "human_share",
    "failed_no_intervention",  # online episodes that failed without the operator ever stepping in
    "eval_success_1",
    "eval_success_T",  # within the largest time budget of the long attempt
    "eval_success_R",  # within R tries over resets (pass@R)
    "eval_progress_1",  # the task's progress at the time limit: it moves long before success does
    "operator_samples",  # operator-driven samples spent: demonstrations + interventions (bc: its demonstrations)
    "learner_steps",
    "learner_utd",
)


def spread(values: list[float]) -> tuple[float, float, float]:
    """(mean, min, max)."""
    if not values:
        raise ValueError("no values")
    return sum(values) / len(values), min(values), max(values)


def run_overrides(variant: str, seed: int, device: str = "", common: tuple = ()) -> tuple:
    """The parameter overrides of one run: the run's seed for every seeded node, what every variant shares (the
    size's schedule), the device, then the variant's switch."""
    if variant not in VARIANTS:
        raise ConfigError(f"unknown paper variant {variant!r}; known: {', '.join(VARIANTS)}")
    out = tuple((n, "seed", seed) for n in SEEDED) + tuple(common)
    if device:
        out += (("learner", "device", device), ("policy", "device", device))
    return out + VARIANTS[variant]


def summarise(results: list[dict]) -> list[dict]:
    """One row per (task, variant) from per-seed results, variants in VARIANTS order."""
    rows = []
    tasks = list(dict.fromkeys(r.get("task", "") for r in results))
    for task in tasks:
        for name in VARIANTS:
            mine = [r for r in results if r["variant"] == name and r.get("task", "") == task]
            if not mine:
                continue
            row = {"task": task, "variant": name, "seeds": len(mine)}
            for m in METRICS:
                mean, lo, hi = spread([float(r.get(m, "nan")) for r in mine])  # (nan: a row without that column)
                row[m] = round(mean, 3)
                row[f"{m}_range"] = f"{lo:.2f}..{hi:.2f}"
            rows.append(row)
    return rows


def _curve_rows(results: list[dict], curve: str, x: str, xs) -> list[dict]:
    """Mean and range over seeds of one curve per (task, variant), one row per point; xs(run) = its x values."""
    rows = []
    for s in summarise(results):
        mine = [r for r in results if r["variant"] == s["variant"] and r.get("task", "") == s["task"]]
        points = [xs(r) for r in mine]
        if any(p != points[0] for p in points):
            raise ValueError(f"{s['task']} {s['variant']}: the seeds' {x} differ: {points}")
        for i, b in enumerate(points[0]):
            mean, lo, hi = spread([r[curve][i] for r in mine])
            rows.append(
                {
                    "task": s["task"],
                    "variant": s["variant"],
                    x: b,
                    "success": round(mean, 3),
                    "range": f"{lo:.2f}..{hi:.2f}",
                }
            )
    return rows


def tts_rows(results: list[dict]) -> list[dict]:
    """Test-time scaling as the paper measures it: mean success within each time budget (s) over seeds, per
    (task, variant) and budget (pure)."""
    return _curve_rows(results, "time_curve", "budget_s", lambda r: list(r["time_budgets"]))


def retry_rows(results: list[dict]) -> list[dict]:
    """The second view, pass@k over resets: mean success within k tries over seeds (pure)."""
    return _curve_rows(results, "retry_curve", "tries", lambda r: list(range(1, len(r["retry_curve"]) + 1)))


def online_stats(episodes_csv: Path) -> tuple[float, float, int]:
    """(success rate, mean operator share, failed episodes without any intervention) over a run's online episodes."""
    from hiors_bringup.report import unattended_failures

    with open(episodes_csv) as f:
        rows = list(csv.DictReader(f))
    return (
        sum(int(r["success"]) for r in rows) / max(len(rows), 1),
        sum(float(r["human_share"]) for r in rows) / max(len(rows), 1),
        unattended_failures(rows),
    )


def learner_stats(metrics_csv: Path) -> tuple[int, float]:
    """(last step, achieved UTD at it) from a learner's metrics.csv; (0, 0.0) when it never trained."""
    try:
        with open(metrics_csv) as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return 0, 0.0
    return (int(rows[-1]["step"]), float(rows[-1]["utd"])) if rows else (0, 0.0)


def bc_first(variants: tuple[str, ...]) -> tuple[str, ...]:
    """`bc` takes its budget from the `hiors` run of the same seed: `hiors` runs before it, added if not asked
    for (pure)."""
    if "bc" not in variants or ("hiors" in variants and variants.index("hiors") < variants.index("bc")):
        return variants
    rest = tuple(v for v in variants if v != "hiors")
    i = rest.index("bc")
    return rest[:i] + ("hiors",) + rest[i:]


def keep_previous_runs(runs: Path) -> Path | None:
    """Every run starts from nothing: `hiors up` on an existing run folder resumes it (its learner from its last
    checkpoint, its episodes.csv appended to), which would mix an earlier invocation into this one. Earlier runs
    are moved aside (runs.<time>), never overwritten."""
    if not runs.exists():
        return None
    aside = runs.with_name(f"{runs.name}.{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while aside.exists():
        aside, n = runs.with_name(f"{runs.name}.{time.strftime('%Y%m%d-%H%M%S')}-{n}"), n + 1
    runs.rename(aside)
    print(f"paper: earlier runs moved to {aside}")
    return aside


def run_one(robot: str, task: str, variant: str, seed: int, size: Size, out: Path, device: str = "") -> dict:
    from hiors_bringup.evaluate import run_eval
    from hiors_bringup.up import UpOptions, run_up

    run = out / "runs" / f"{robot}-{task}-{variant}-seed{seed}"
    if variant == "bc":  # offline, at the budget of the hiors run of the same seed (run before it: bc_first)
        from .bc_baseline import run_bc

        bc = run_bc(robot, task, seed, out / "runs" / f"{robot}-{task}-hiors-seed{seed}", run)
        online, human, unattended = float("nan"), float("nan"), float("nan")  # no online episodes
        operator, steps, achieved_utd = bc["operator_samples"], bc["learner_steps"], bc["learner_utd"]
    else:
        from .bc_baseline import operator_budget

        rc = run_up(
            UpOptions(
                robot=robot,
                task=task,
                episodes=size.episodes,
                demos=size.demos,
                run_dir=str(run),
                seed=seed,
                overrides=run_overrides(variant, seed, device, size.schedule),
            ),
            quiet=True,
        )
        if rc != 0:
            raise RuntimeError(f"{task} {variant} seed {seed}: hiors up failed (rc {rc}); logs in {run / 'logs'}")
        online, human, unattended = online_stats(run / "episodes.csv")
        operator = sum(operator_budget(run))
        steps, achieved_utd = learner_stats(run / "learner" / "metrics.csv")
    ev = argparse.Namespace(
        robot=robot,
        task=task,
        policy="",
        run=str(run),
        episodes=size.eval_episodes,
        retries=size.eval_retries,
        budgets=size.eval_budgets,
        seed=5000 + seed,
        time_limit=size.eval_time_limit,
        run_dir=str(run / "eval"),
    )
    run_eval(ev)
    return {
        "task": f"{robot}/{task}",
        "variant": variant,
        "seed": seed,
        "online_success": online,
        "human_share": human,
        "failed_no_intervention": unattended,
        **read_eval(run / "eval"),
        "operator_samples": operator,
        "learner_steps": steps,
        "learner_utd": achieved_utd,
    }


# A run's curves (lists) and their paper_runs.csv columns (space-separated numbers).
CURVES = {"time_budgets": "time_budgets_s", "time_curve": "success_vs_time", "retry_curve": "success_vs_retries"}


def write_runs(path: Path, results: list[dict]) -> None:
    """paper_runs.csv: one row per run, its curves as space-separated numbers."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[k for k in results[0] if k not in CURVES] + list(CURVES.values()))
        w.writeheader()
        for r in results:
            w.writerow(
                {k: v for k, v in r.items() if k not in CURVES}
                | {col: " ".join(map(str, r[k])) for k, col in CURVES.items()}
            )


def read_runs(path: Path) -> list[dict]:
    """paper_runs.csv back into per-run results (to re-tabulate a finished run without re-running it)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        if "success_vs_budget" in r:  # a row without the time curve: its one curve is pass@k over resets
            r["success_vs_retries"] = r.pop("success_vs_budget")
        curves = {k: [float(x) for x in r.pop(col, "").split()] for k, col in CURVES.items()}
        out.append({**r, "seed": int(r["seed"]), **curves})
    return out


COLUMNS = [
    "task",
    "variant",
    "seeds",
    "online_success",
    "online_success_range",
    "human_share",
    "human_share_range",
    "failed_no_intervention",
    "eval_success_1",
    "eval_success_R",
    "eval_success_T",
    "eval_success_T_range",
    "eval_success_R_range",
    "eval_progress_1",
    "eval_progress_1_range",
    "operator_samples",
    "learner_steps",
    "learner_steps_range",
    "learner_utd",
]
BARS = ("online_success", "human_share", "eval_success_1", "eval_success_T", "eval_success_R")
CURVE_COLUMNS = {
    "paper_tts": ["task", "variant", "budget_s", "success", "range"],
    "paper_retries": ["task", "variant", "tries", "success", "range"],
}


def write_tts_figure(out: Path, rows: list[dict]) -> Path:
    """paper_tts.png: success vs time budget, one line per variant (range over seeds shaded), a panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for variant in dict.fromkeys(r["variant"] for r in rows if r["task"] == task):
            mine = [r for r in rows if r["task"] == task and r["variant"] == variant]
            xs = [float(r["budget_s"]) for r in mine]
            lo, hi = zip(*(map(float, r["range"].split("..")) for r in mine), strict=True)
            (line,) = ax.plot(xs, [r["success"] for r in mine], marker="o", label=variant)
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set(title=task, xlabel="test-time budget (s of one attempt)", ylabel="success rate", ylim=(-0.03, 1.03))
    axes[0][-1].legend(fontsize="small")
    fig.suptitle("paper_tts: success vs time budget")
    fig.tight_layout()
    png = out / "paper_tts.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def report(out: Path, results: list[dict], title: str) -> list[Path]:
    """Print and write the paper tables from per-run results: paper.csv/.png (per variant), paper_tts.csv/.png
    (success vs time budget: the test-time scaling figure), paper_retries.csv (success vs tries over resets)."""
    rows = summarise(results)
    print(f"\n== {title}\n{format_table(rows, COLUMNS)}")
    several = len({r["task"] for r in rows}) > 1
    for r in rows:  # the bar group's label: the variant, with its task when there are several
        r["label"] = f"{r['task']} {r['variant']}" if several else r["variant"]
    files = write_figure(out, "paper", rows, COLUMNS, ("label", BARS))
    curves = {"paper_tts": tts_rows(results), "paper_retries": retry_rows(results)}
    titles = {
        "paper_tts": "success vs time budget (test-time scaling)",
        "paper_retries": "success vs tries over resets",
    }
    for name, table in curves.items():
        if not table:  # no pass@k view was run
            continue
        print(f"\n== paper: {titles[name]}\n" + format_table(table, CURVE_COLUMNS[name]))
        with open(out / f"{name}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CURVE_COLUMNS[name])
            w.writeheader()
            w.writerows(table)
        files.append(out / f"{name}.csv")
        if name == "paper_tts":
            files.append(write_tts_figure(out, table))
    return files


def run_paper(
    out: Path, full: bool = False, variants: tuple[str, ...] = (), seeds: tuple[int, ...] = (), command: str = ""
) -> int:
    t0, load = time.perf_counter(), os.getloadavg()[0]
    size = FULL if full else SMALL
    if seeds:
        size = replace(size, seeds=tuple(seeds))
    variants = bc_first(tuple(variants) or tuple(VARIANTS))
    for v in variants:
        run_overrides(v, 0)  # an unknown name fails before the first run
    device = ""
    if full:
        import torch

        device = "cuda" if torch.cuda.is_available() else ""
    out.mkdir(parents=True, exist_ok=True)
    keep_previous_runs(out / "runs")
    results = []
    per_run = out / "paper_runs.csv"
    for robot, task in size.tasks:
        for variant in variants:
            for seed in size.seeds:
                r = run_one(robot, task, variant, seed, size, out, device)
                results.append(r)
                print(
                    f"paper: {task} {variant:16s} seed {seed}: online success {r['online_success']:.2f}, "
                    f"human {r['human_share']:.2f}, eval {r['eval_success_1']:.2f} / {r['eval_success_T']:.2f} "
                    f"in time, {r['eval_success_R']:.2f} in tries "
                    f"(progress {r['eval_progress_1']:.2f}), operator samples {r['operator_samples']}, "
                    f"learner {r['learner_steps']} steps, UTD {r['learner_utd']:.2f}",
                    flush=True,
                )
                write_runs(per_run, results)
    title = (
        f"paper ({'full' if full else 'small'}: {', '.join(f'{r}/{t}' for r, t in size.tasks)}, "
        f"{size.episodes} episodes, {size.demos} demos, seeds {list(size.seeds)}, eval {size.eval_episodes} "
        f"initial states x one attempt of {'/'.join(f'{x:g}' for x in size.eval_budgets)}x the time limit"
        + (f", then up to {size.eval_retries} tries over resets)" if size.eval_retries else ")")
    )
    files = report(out, results, title)
    files.append(write_provenance(out, "paper", command or "hiors bench paper", time.perf_counter() - t0, load))
    print("written: " + ", ".join(str(f) for f in files + [per_run]))
    return 0
