"""`hiors bench learning`: does Hi-ORS make the policy better? Autonomous success before and after online
post-training, against behaviour cloning at the same operator budget, on the twins.

Per task (default: `raise_hand` on the Tora One, `insert_moisturizer` on the X-Trainer):
  1. base policy: `pretrain` (behaviour cloning on scripted demonstrations), once per task, reused by every seed and
     variant, as the paper post-trains one fine-tuned pi0;
  2. per seed and variant, from the base policy:
       hiors     online episodes with the simulated operator (`online_loop.run_online`: the nodes' own cores in
                 one process), the learner training `utd` gradient steps per recorded sample;
       bc        offline behaviour cloning on demonstrations only, with as many operator-driven samples as the
                 hiors run of that seed used in all (the base's demonstrations + its intervention samples: more
                 demonstrations are recorded to match) and the same number of gradient steps;
       --full adds the ablations on the same base: no_human (the operator never steps in), constant_m (m stays
       at its initial value), binary_return (0/1 returns), fixed_high / fixed_low (sampling rates);
  3. every policy is evaluated without the operator on the same `eval_states` initial states per seed (all grid
     cells, train and test), one long attempt each: success within the task's time limit (the headline) and within
     1.5x and 2x of it (test-time scaling: the policy keeps acting after an intermediate failure).
The hiors runs also evaluate the actor every `curve_every` episodes (autonomous success vs online episodes and vs
wall time) and record the operator's share of control per episode.

Initial-state seeds, disjoint by construction: demonstrations 10000+ / held-out 20000+ / validation 30000+
(`pretrain`), online episodes 40000 + 1000 * seed, BC's extra demonstrations 50000 + 1000 * seed, evaluation
900000 + 1000 * seed. Only the validation seeds were looked at while choosing sizes and hyperparameters.

The twin's tasks are learned here by the goal-state variant of the tiny pi0 (its state also carries the task's goal
pose, read from the twin): at this scale (0.4 M parameters, 56 px cameras, minutes of CPU training) the camera-only
policy does not learn to read a 6-DoF goal from pixels (see docs/RESULTS.md, where its base is reported beside).
`--camera-only` runs the benchmark with it.

Written to the run folder: learning_runs.csv (one row per task, seed and variant), learning_episodes.csv (one row
per online episode), learning_curve.csv (the checkpoints' success), learning_tts.csv (success vs time budget),
learning_summary.csv (mean and range over seeds) and learning.png; with `--camera-only` the same files are named
learning_camera_* (both can share one run folder, and docs/RESULTS.md shows both).
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hiors_bringup.evaluate import COMPARE_BUDGETS, eval_seeds
from hiors_core.errors import ConfigError

from .bench_table import format_table, write_provenance

ONLINE_SEED, BC_SEED = 40_000, 50_000
BUDGETS = COMPARE_BUDGETS  # evaluation time budgets, multiples of the task's time limit


@dataclass(frozen=True)
class TaskSize:
    robot: str
    task: str
    demos: int  # the base policy's demonstrations
    pretrain_steps: int
    episodes: int  # online episodes per seed
    # Learner steps over which m rises from its initial to its final value: about a run's length, so that m rises
    # over the run (the config's ramp suits the graph's slower learner; here utd * samples steps are taken).
    ramp_steps: int = 1000


@dataclass(frozen=True)
class LearningSize:
    name: str
    tasks: tuple[TaskSize, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    variants: tuple[str, ...] = ("hiors", "bc")
    eval_states: int = 20
    curve_every: int = 0  # online episodes between checkpoint evaluations (0: none besides base and final)
    curve_states: int = 10
    utd: float = 2.0
    # Learner overrides for the tiny pi0 (the config's are the graph's defaults).
    learner: tuple[tuple[str, object], ...] = (
        ("batch_size", 16),
        ("lr", 3e-4),
        ("min_lr", 3e-5),
        ("warmup_steps", 20),
        ("publish_every", 10),
    )


SMALL = LearningSize(
    name="small",
    tasks=(
        TaskSize("tora_one", "raise_hand", demos=16, pretrain_steps=300, episodes=16, ramp_steps=700),
        TaskSize("xtrainer", "insert_moisturizer", demos=40, pretrain_steps=1000, episodes=12, ramp_steps=1500),
    ),
    curve_every=8,
)
FULL = replace(
    SMALL,
    name="full",
    tasks=(
        *SMALL.tasks,
        TaskSize("tora_one", "pack_detergent", demos=40, pretrain_steps=800, episodes=16, ramp_steps=1500),
    ),
    variants=("hiors", "bc", "no_human", "constant_m", "binary_return", "fixed_high", "fixed_low"),
    eval_states=30,
)
SIZES = {"small": SMALL, "full": FULL}

# Each ablation as node parameter overrides of the online run (as `hiors up --set`).
ABLATIONS: dict[str, tuple[tuple[str, str, object], ...]] = {
    "hiors": (),
    "no_human": (("sim_operator", "mode", "never"),),
    "constant_m": (("learner", "threshold_kind", "constant"),),  # the learner owns m
    # R's parameters are the filter's; the learner takes the same ones (graph.robot_graph) for what it re-reads
    "binary_return": tuple((n, "return_mode", "binary") for n in ("episode_filter", "learner")),
    "fixed_high": (("arbiter", "sampling_mode", "fixed_high"),),
    "fixed_low": (("arbiter", "sampling_mode", "fixed_low"),),
}


def evaluate(policy, robot: str, task: str, seeds, budgets=BUDGETS) -> dict:
    """`evaluate.evaluate_policy` at this benchmark's time budgets."""
    from hiors_bringup.evaluate import evaluate_policy

    return evaluate_policy(policy, robot, task, seeds, budgets)


def base_policy(ts: TaskSize, out: Path, goal_state: bool, say=print) -> Path:
    """The task's base policy folder (pretrained once, then reused)."""
    from hiors_bringup.pretrain import PretrainConfig, pretrain

    d = out / "base" / (ts.task if goal_state else f"{ts.task}-camera_only")
    if (d / "policy" / "hiors_policy.json").exists():
        return d
    if d.exists():
        shutil.rmtree(d)  # an interrupted pretraining: start it again
    cfg = PretrainConfig(
        robot=ts.robot,
        task=ts.task,
        demos=ts.demos,
        steps=ts.pretrain_steps,
        goal_state=goal_state,
        eval_every=max(1, ts.pretrain_steps // 4),
    )
    pretrain(cfg, d, say=say)
    return d


def online_config(size: LearningSize, ts: TaskSize, variant: str, seed: int):
    from .online_loop import OnlineConfig

    ramp = (("learner", "threshold_ramp_steps", ts.ramp_steps),)
    params = tuple(("learner", k, v) for k, v in size.learner) + ramp + ABLATIONS[variant]
    return OnlineConfig(episodes=ts.episodes, utd=size.utd, seed=seed, params=params)


def bc_budget(hiors_run: dict, demo_samples: int) -> tuple[int, int]:
    """(operator-driven samples, gradient steps) of a hiors run: the base's `demo_samples` demonstration samples
    plus the run's intervention samples, and the learner's steps."""
    return demo_samples + int(hiors_run["human_samples"]), int(hiors_run["learner_steps"])


def run_bc(policy, ts: TaskSize, seed: int, base_dir: Path, budget: int, steps: int, out: Path, size) -> dict:
    """Behaviour cloning from the base policy on demonstrations only: the base's plus more (seeds BC_SEED + ...)
    up to `budget` operator-driven samples, trained `steps` steps with the online learner's optimiser settings."""
    from hiors_bringup.demos import record_demos
    from hiors_bringup.pretrain import load_samples
    from hiors_learner.engine import TorchEngine
    from hiors_learner.optim import OptimConfig

    from .online_loop import node_params

    size_px, horizon = policy.config.image_size, policy.horizon
    samples = load_samples(base_dir / "demos", horizon, size_px)
    extra_dir, k = out / "bc_demos", 0
    while len(samples) < budget:
        d = extra_dir / f"batch-{k}"
        per_demo = max(1, len(samples) // max(1, ts.demos))
        n = max(1, int(np.ceil((budget - len(samples)) / per_demo)))
        record_demos(ts.robot, ts.task, n, d, seed=BC_SEED + 1000 * seed + 100 * k, image_size=size_px)
        samples += load_samples(d, horizon, size_px)
        k += 1
    samples = samples[:budget]
    lp = node_params(ts.robot, ts.task, online_config(size, ts, "hiors", seed))["learner"]
    optim = OptimConfig(
        lr=float(lp["lr"]),
        min_lr=float(lp["min_lr"]),
        warmup_steps=int(lp["warmup_steps"]),
        decay_steps=int(lp["decay_steps"]),
    )
    engine = TorchEngine(policy, optim, seed=seed)
    rng = np.random.default_rng(seed)
    batch = int(lp["batch_size"])
    for _ in range(steps):
        engine.train_step([samples[i] for i in rng.integers(0, len(samples), batch)])
    policy.model.eval()
    return {"operator_samples": len(samples), "learner_steps": steps}


def _fresh(base_dir: Path, seed: int):
    from hiors_policy.policy import Pi0Policy

    return Pi0Policy.load(base_dir / "policy", seed=seed)


def run_hiors(ts, variant, seed, base_dir, out: Path, size: LearningSize, say=print):
    """One online run; returns (summary row, episode rows, curve rows, the trained actor)."""
    from .online_loop import run_online

    actor, learner_policy = _fresh(base_dir, seed), _fresh(base_dir, seed)
    run_dir = out / "runs" / base_dir.name / f"{variant}-seed{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.time()
    curve, episodes = [], []
    cfg = online_config(size, ts, variant, seed)

    def on_episode(s) -> None:
        episodes.append(
            {"task": ts.task, "seed": seed, "variant": variant, **_episode_row(s), "wall_s": time.time() - t0}
        )
        say(
            f"  {ts.task} {variant} seed {seed} episode {s.index}: {'success' if s.success else 'failure'}, "
            f"human share {s.human_share:.2f}, R {s.episode_return:.2f} {'accepted' if s.accepted else 'rejected'}, "
            f"learner step {s.learner_step}"
        )
        n = s.index + 1
        if size.curve_every and n % size.curve_every == 0 and n < ts.episodes:
            r = evaluate(actor, ts.robot, ts.task, eval_seeds(seed, size.curve_states), budgets=(1.0,))
            curve.append(_curve_row(ts, variant, seed, n, time.time() - t0, r["success"], size.curve_states))

    summaries = run_online(
        ts.robot,
        ts.task,
        actor,
        learner_policy,
        run_dir,
        cfg,
        [ONLINE_SEED + 1000 * seed + k for k in range(ts.episodes)],
        demos_dir=base_dir / "demos",
        on_episode=on_episode,
    )
    wall = time.time() - t0
    row = {
        "episodes": len(summaries),
        "online_success": float(np.mean([s.success for s in summaries])),
        "human_share": float(np.mean([s.human_share for s in summaries])),
        "human_share_first_half": float(np.mean([s.human_share for s in summaries[: len(summaries) // 2]])),
        "human_share_second_half": float(np.mean([s.human_share for s in summaries[len(summaries) // 2 :]])),
        "failed_without_intervention": sum(1 for s in summaries if not s.success and s.interventions == 0),
        "human_samples": sum(s.human_samples for s in summaries),
        "learner_steps": summaries[-1].learner_step if summaries else 0,
        "online_wall_s": wall,
    }
    # The actor ends with the learner's last published weights; take the learner's latest for the final policy.
    actor.load_safetensors_bytes(learner_policy.to_safetensors_bytes())
    return row, episodes, curve, actor


def _episode_row(s) -> dict:
    keep = ("index", "success", "episode_return", "accepted", "human_share", "interventions", "samples")
    return {k: getattr(s, k) for k in keep} | {"human_samples": s.human_samples, "learner_step": s.learner_step}


def _curve_row(ts, variant, seed, episodes, wall_s, success, states) -> dict:
    return {
        "task": ts.task,
        "seed": seed,
        "variant": variant,
        "episodes": episodes,
        "wall_s": round(wall_s, 1),
        "success": success,
        "states": states,
    }


def spread(xs) -> tuple[float, float, float]:
    xs = [float(x) for x in xs if x == x]
    return (float(np.mean(xs)), min(xs), max(xs)) if xs else (float("nan"),) * 3


def summarise(runs: list[dict]) -> list[dict]:
    """Mean and range over seeds per task and variant; `gain` is final minus base success (points of rate)."""
    out = []
    keys = sorted({(r["task"], r["variant"]) for r in runs}, key=lambda k: (k[0], k[1] != "hiors", k[1]))
    for task, variant in keys:
        rs = [r for r in runs if r["task"] == task and r["variant"] == variant]
        row = {"task": task, "variant": variant, "seeds": len(rs)}
        for col in ("base_success", "success", "gain", "success_2x", "human_share_first_half"):
            m, lo, hi = spread(r.get(col, float("nan")) for r in rs)
            row[col] = round(m, 3)
            row[f"{col}_range"] = f"{lo:.2f}..{hi:.2f}"
        row["human_share_second_half"] = round(spread(r.get("human_share_second_half", np.nan) for r in rs)[0], 3)
        row["operator_samples"] = round(spread(r.get("operator_samples", np.nan) for r in rs)[0], 1)
        row["learner_steps"] = round(spread(r.get("learner_steps", np.nan) for r in rs)[0], 1)
        out.append(row)
    return out


SUMMARY_COLUMNS = [
    "task",
    "variant",
    "seeds",
    "base_success",
    "success",
    "success_range",
    "gain",
    "gain_range",
    "success_2x",
    "human_share_first_half",
    "human_share_second_half",
    "operator_samples",
    "learner_steps",
]


def write_csv(path: Path, rows: list[dict]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    def num(v):
        try:
            return float(v)
        except ValueError:
            return v

    with open(path, newline="") as f:
        return [{k: num(v) for k, v in r.items()} for r in csv.DictReader(f)]


def plot(out: Path, runs: list[dict], episodes: list[dict], curve: list[dict], name: str = "learning") -> Path:
    """learning.png: per task, autonomous success vs online episodes (base at 0, checkpoints, final; bc and the
    ablations at their end), the operator's share per episode, and success vs time budget; one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in runs})
    fig, axes = plt.subplots(len(tasks), 4, figsize=(20, 4 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        ax_s, ax_w, ax_h, ax_t = axes[i]
        for variant in sorted({r["variant"] for r in runs if r["task"] == task}):
            rs = [r for r in runs if r["task"] == task and r["variant"] == variant]
            # BC and the camera-only base have no online episodes: shown at the hiors run's length (equal budget).
            n_ep = max(float(r.get("episodes") or 0) for r in runs if r["task"] == task)
            pts = {0: [r["base_success"] for r in rs], n_ep: [r["success"] for r in rs]}
            for c in curve:
                if c["task"] == task and c["variant"] == variant:
                    pts.setdefault(int(c["episodes"]), []).append(c["success"])
            xs = sorted(pts)
            ax_s.plot(xs, [np.mean(pts[x]) for x in xs], marker="o", label=variant)
            ax_s.fill_between(xs, [min(pts[x]) for x in xs], [max(pts[x]) for x in xs], alpha=0.15)
            # The same against the online run's wall time (base at 0, checkpoints, final at the run's end).
            walls = {0.0: pts[0]}
            for c in curve:
                if c["task"] == task and c["variant"] == variant:
                    walls.setdefault(float(c["wall_s"]), []).append(c["success"])
            if any(r.get("online_wall_s") == r.get("online_wall_s") and r.get("online_wall_s") for r in rs):
                walls[float(np.mean([r["online_wall_s"] for r in rs]))] = [r["success"] for r in rs]
                ws = sorted(walls)
                ax_w.plot(ws, [np.mean(walls[w]) for w in ws], marker="o", label=variant)
            eps = [e for e in episodes if e["task"] == task and e["variant"] == variant]
            if eps:
                idx = sorted({int(e["index"]) for e in eps})
                ax_h.plot(
                    idx, [np.mean([e["human_share"] for e in eps if e["index"] == k]) for k in idx], label=variant
                )
            budgets = [b for b in BUDGETS]
            ax_t.plot(
                budgets, [np.mean([r[f"success_{b:g}x"] for r in rs]) for b in budgets], marker="o", label=variant
            )
        ax_s.set(title=f"{task}: autonomous success", xlabel="online episodes", ylabel="success", ylim=(-0.02, 1.02))
        ax_h.set(title=f"{task}: operator share per episode", xlabel="episode", ylabel="share", ylim=(-0.02, 1.02))
        ax_t.set(title=f"{task}: success vs time budget", xlabel="budget (x time limit)", ylim=(-0.02, 1.02))
        ax_w.set(
            title=f"{task}: autonomous success (online runs)", xlabel="wall time of the run (s)", ylim=(-0.02, 1.02)
        )
        for ax in (ax_s, ax_w, ax_h, ax_t):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"{name}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def run_learning(
    out: str | Path,
    full: bool = False,
    seeds: tuple[int, ...] = (),
    variants: tuple[str, ...] = (),
    tasks: tuple[str, ...] = (),
    camera_only: bool = False,
    size: LearningSize | None = None,
    command: str = "",
    say=print,
) -> int:
    from hiors_bringup.pretrain import load_samples

    size = size or (FULL if full else SMALL)
    if seeds:
        size = replace(size, seeds=tuple(seeds))
    if variants:
        unknown = [v for v in variants if v != "bc" and v not in ABLATIONS]
        if unknown:
            raise ConfigError(f"unknown variant {unknown[0]!r}; known: bc, {', '.join(ABLATIONS)}")
        size = replace(size, variants=tuple(variants))
    if tasks:
        known = {t.task: t for t in (*FULL.tasks,)}
        missing = [t for t in tasks if t not in known]
        if missing:
            raise ConfigError(f"unknown task {missing[0]!r}; the benchmark knows: {', '.join(known)}")
        size = replace(size, tasks=tuple(known[t] for t in tasks))
    if "bc" in size.variants and "hiors" not in size.variants:
        size = replace(size, variants=("hiors", *size.variants))  # bc takes its budget from the hiors run
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = "learning_camera" if camera_only else "learning"
    t_start, load = time.time(), os.getloadavg()[0]
    runs, episodes, curve = [], [], []
    say(
        f"hiors bench learning ({size.name}): {', '.join(t.task for t in size.tasks)}; seeds {list(size.seeds)}; "
        f"variants {list(size.variants)}; {size.eval_states} evaluation states per seed; "
        + ("camera-only policy" if camera_only else "goal-state policy")
    )
    for ts in size.tasks:
        base_dir = base_policy(ts, out, goal_state=not camera_only, say=say)
        # The base's demonstration samples, part of every run's operator budget (counted once per task).
        demo_samples = len(load_samples(base_dir / "demos", _fresh(base_dir, 0).horizon, image_size=0))
        if not camera_only:
            # The goal stays camera-only: its base, trained the same way, is reported beside (first seed's states).
            cam = evaluate(
                _fresh(base_policy(ts, out, goal_state=False, say=say), 0),
                ts.robot,
                ts.task,
                eval_seeds(size.seeds[0], size.eval_states),
            )
            runs.append(
                {
                    "task": ts.task,
                    "robot": ts.robot,
                    "seed": size.seeds[0],
                    "variant": "camera_only_base",
                    "base_success": cam["success"],
                    "gain": 0.0,
                }
                | cam
            )
            say(f"{ts.task}: camera-only base policy success {cam['success']:.2f}")
        for seed in size.seeds:
            states = eval_seeds(seed, size.eval_states)
            base_eval = evaluate(_fresh(base_dir, seed), ts.robot, ts.task, states)
            say(f"{ts.task} seed {seed}: base policy success {base_eval['success']:.2f}")
            hiors_row = None
            for variant in size.variants:
                t0 = time.time()
                if variant == "bc":
                    budget, steps = bc_budget(hiors_row, demo_samples)
                    policy = _fresh(base_dir, seed)
                    info = run_bc(
                        policy, ts, seed, base_dir, budget, steps, out / "runs" / base_dir.name / f"bc-seed{seed}", size
                    )
                else:
                    info, eps, cv, policy = run_hiors(ts, variant, seed, base_dir, out, size, say=say)
                    info["operator_samples"] = bc_budget(info, demo_samples)[0]
                    episodes += eps
                    curve += cv
                final = evaluate(policy, ts.robot, ts.task, states)
                row = {"task": ts.task, "robot": ts.robot, "seed": seed, "variant": variant}
                row |= {"base_success": base_eval["success"], "gain": final["success"] - base_eval["success"]}
                row |= final | info | {"wall_s": round(time.time() - t0, 1)}
                if variant == "hiors":
                    hiors_row = row
                runs.append(row)
                say(
                    f"{ts.task} seed {seed} {variant}: success {base_eval['success']:.2f} -> {final['success']:.2f} "
                    f"(within 2x the time limit {final['success_2x']:.2f}), {row.get('learner_steps')} gradient "
                    f"steps, {row.get('operator_samples')} operator samples, {row['wall_s']:.0f} s"
                )
                write_csv(out / f"{name}_runs.csv", runs)
                if episodes:
                    write_csv(out / f"{name}_episodes.csv", episodes)
                if curve:
                    write_csv(out / f"{name}_curve.csv", curve)
    summary = summarise(runs)
    write_csv(out / f"{name}_summary.csv", summary)
    tts = [
        {
            "task": s["task"],
            "variant": s["variant"],
            "budget": b,
            "success": round(float(np.mean(v)), 3),
            "range": f"{min(v):.2f}..{max(v):.2f}",
        }
        for s in summary
        for b in BUDGETS
        for v in [[r[f"success_{b:g}x"] for r in runs if r["task"] == s["task"] and r["variant"] == s["variant"]]]
    ]
    write_csv(out / f"{name}_tts.csv", tts)
    png = plot(out, runs, episodes, curve, name)
    write_provenance(out, name, command or "hiors bench learning", time.time() - t_start, load)
    say("\n" + format_table(summary, SUMMARY_COLUMNS))
    say(f"\nwritten: {out}/{name}_runs.csv, _summary.csv, _episodes.csv, _tts.csv, {png}")
    return 0
