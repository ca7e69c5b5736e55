"""`hiors eval`: run a policy on the twin without any operator, K initial states x up to R attempts each.

The policy runs in process against `hiors_sim.env.SimRobot` the way the graph runs it: one observation per
chunk (cameras at the sim node's size, state in the policy's layout), the first k_auto actions of each chunk
made safe by the arbiter's own limits (`hiors_teleop.safety.make_safe`) and executed one per control period.
Initial states cycle over the grid's cells (train and test) so that per-cell success comes out of the same run.
A retry restarts the same initial state; the policy draws fresh noise. An attempt ends at the task's success,
failure or time limit (`--time-limit` shortens it). Written to the run folder: `attempts.csv` (one row per
attempt), `success_vs_budget.csv`, `per_cell.csv` and `eval.txt` (the printed tables).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from hiors_core.config import load_yaml, node_parameters
from hiors_core.errors import ConfigError
from hiors_core.tasks import task_or_default

from .evaluation import per_cell, success_vs_budget, table_lines
from .graph import config_dir
from .sim_io import policy_state


def load_eval_policy(robot: str, task: str, policy: str = "", run: str = ""):
    """A checkpoint folder; or a run folder's latest published weights on the policy the run started from (its
    `policy/` folder, with its normalisation statistics; the tiny policy for runs without one); or the tiny
    policy."""
    from hiors_policy.policy import make_policy

    if policy and run:
        raise ConfigError("give --policy or --run, not both")
    if policy:
        return make_policy(policy), policy
    if not run:
        return make_policy(f"tiny:{robot}:{task}"), f"tiny:{robot}:{task} (untrained)"
    start = Path(run) / "policy"
    model = make_policy(str(start) if start.is_dir() else f"tiny:{robot}:{task}")
    weights = sorted((Path(run) / "learner" / "weights").glob("policy-v*.safetensors"))
    if not weights:
        raise ConfigError(f"{run}: no learner/weights/policy-v*.safetensors (is it a `hiors up` run folder?)")
    model.load_safetensors_bytes(weights[-1].read_bytes())
    return model, str(weights[-1])


def run_attempt(env, model, limits, k_auto: int, image_size: int, seed: int, cell: int) -> tuple[bool, int, float]:
    """One attempt from (seed, cell); returns (success, control steps, the task's progress in [0, 1] at the end:
    how far a failed attempt got, which moves long before success does)."""
    from hiors_policy.layout import state_layout
    from hiors_policy.policy import PolicyInput
    from hiors_teleop.safety import make_safe

    env.reset(seed=seed, cell=cell)
    names = state_layout(env.spec.name, env.task.name)
    prev = np.asarray(env.commanded_action(), dtype=np.float64)
    steps = 0
    while True:
        obs = PolicyInput(
            env.render(size=(image_size, image_size)), policy_state(env, names), env.task.instruction, names
        )
        for action in model.infer(obs)[:k_auto]:
            safe = make_safe(action, prev, limits)
            prev = safe.action
            result = env.step(safe.action)
            steps += 1
            if result.done:
                return bool(result.success), steps, float(env.task_state().get("progress", float(result.success)))


def run_eval(args) -> int:
    from hiors_sim.env import SimRobot
    from hiors_teleop.safety import Limits, layout_for

    robot = args.robot
    spec = task_or_default(robot, args.task or "")  # a ConfigError naming the robot's tasks
    task = spec.name
    if args.episodes < 1 or args.retries < 1:
        raise ConfigError("--episodes and --retries must be at least 1")
    time_limit = float(getattr(args, "time_limit", 0.0) or 0.0)
    if time_limit < 0:
        raise ConfigError("--time-limit must be positive (0: the task's own)")
    cfg_path = config_dir() / f"{robot}.yaml"
    cfg = load_yaml(cfg_path)
    arbiter = node_parameters(cfg, "arbiter", str(cfg_path))
    sim = node_parameters(cfg, "sim", str(cfg_path))
    k_auto, image_size = int(arbiter.get("k_auto", 12)), int(sim.get("image_width", 224))
    model, source = load_eval_policy(robot, task, args.policy or "", getattr(args, "run", "") or "")
    run_dir = Path(args.run_dir or f"runs/eval-{robot}-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    env = SimRobot(robot, task, time_limit=time_limit or None)
    limits = Limits.for_robot(env.spec, layout_for(env.spec, spec.control_mode, env.task.arm))
    grid = env.task.grid
    outcomes, cells, train, first_progress = [], [], [], []
    print(f"hiors eval: {robot}/{task}, policy {source}, {args.episodes} initial states x up to {args.retries} tries")
    try:
        with open(run_dir / "attempts.csv", "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["episode", "seed", "cell", "split", "attempt", "success", "steps", "progress"])
            for i in range(args.episodes):
                seed, cell = args.seed + i, i % grid.n_cells
                attempts = []
                for r in range(args.retries):
                    ok, steps, progress = run_attempt(env, model, limits, k_auto, image_size, seed, cell)
                    attempts.append(ok)
                    if r == 0:
                        first_progress.append(progress)
                    split = "train" if grid.is_train(cell) else "test"
                    out.writerow([i, seed, cell, split, r, int(ok), steps, f"{progress:.3f}"])
                    f.flush()
                    if ok:
                        break  # later tries cannot change this episode's outcome
                outcomes.append(attempts)
                cells.append(cell)
                train.append(grid.is_train(cell))
                print(
                    f"  episode {i}: seed {seed} cell {cell}: {'success' if any(attempts) else 'failure'} after {len(attempts)} tries (first try's progress {first_progress[-1]:.2f})"
                )
    finally:
        env.close()
    curve = success_vs_budget(outcomes, args.retries)
    with open(run_dir / "success_vs_budget.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["budget", "success_rate"])
        w.writerows([b + 1, f"{s:.3f}"] for b, s in enumerate(curve))
    rows = per_cell(outcomes, cells, train)
    with open(run_dir / "per_cell.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["cell", "split", "episodes", "first_try", "any_try"])
        w.writerows([r.cell, r.split, r.episodes, f"{r.first_try:.3f}", f"{r.any_try:.3f}"] for r in rows)
    lines = [f"{robot}/{task}, policy {source}, time limit {env.task.time_limit:g} s, k_auto {k_auto}", ""]
    lines += table_lines(curve, rows)
    lines += ["", f"mean progress of the first try: {float(np.mean(first_progress)):.3f}"]
    (run_dir / "eval.txt").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines[2:]))
    print(f"\nwritten: {run_dir}/attempts.csv, success_vs_budget.csv, per_cell.csv, eval.txt")
    return 0
