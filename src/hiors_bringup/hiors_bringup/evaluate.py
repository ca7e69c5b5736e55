"""`hiors eval`: run a policy on the twin without any operator; test-time scaling as success vs time budget.

The policy runs in process against `hiors_sim.env.SimRobot` the way the graph runs it: one observation per
chunk (cameras at the sim node's size, state in the policy's layout), the first k_auto actions of each chunk
made safe by the arbiter's own limits (`hiors_teleop.safety.make_safe`) and executed one per control period.
Initial states cycle over the grid's cells (train and test) so that per-cell success comes out of the same run.

Main view, success vs time budget (the paper's test-time scaling): each of K initial states gets one long attempt
of up to the largest budget (budgets are multiples of the task's time limit, `--budgets 1,1.5,2,3`; `--time-limit`
replaces the task's). The attempt goes on after a recoverable failure (a knocked-over bottle: the policy may pick
it up again) and ends only at success, at an unrecoverable failure (the bottle off the table) or at the largest
budget; success within budget b is a first success at or before b, so one run gives the whole curve.
Second view, success vs retries over resets (pass@k; `--retries R`, 0 skips it): up to R tries per initial state,
each ending at the task's success, failure or time limit; a retry restarts the same initial state and the policy
draws fresh noise.
Written to the run folder: `long_attempts.csv` (one row per initial state), `success_vs_time.csv`,
`retry_attempts.csv` (one row per try) and `success_vs_retries.csv` when R > 0, `per_cell.csv` (success within the
smallest and the largest time budget) and `eval.txt` (the printed tables).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiors_core.config import load_yaml, node_parameters
from hiors_core.errors import ConfigError
from hiors_core.tasks import task_or_default
from hiors_sim.policy_view import policy_state

from .evaluation import TimedOutcome, per_cell, success_vs_retries, success_vs_time, table_lines
from .graph import config_dir

DEFAULT_BUDGETS = (1.0, 1.5, 2.0, 3.0)  # time budgets, in multiples of the task's time limit
# Start-vs-final comparisons (`hiors up --eval-states`, the learning benchmark): these budgets, and initial states
# from a seed range that demonstrations, online episodes and tuning never use.
COMPARE_BUDGETS = (1.0, 1.5, 2.0)
EVAL_SEED = 900_000


def eval_seeds(seed: int, n: int) -> list[int]:
    """The `n` held-out initial states of evaluation seed `seed`."""
    return [EVAL_SEED + 1000 * seed + k for k in range(n)]


def load_eval_policy(robot: str, task: str, policy: str = "", run: str = ""):
    """A checkpoint folder; or a run folder's latest published weights on the policy the run started from (its
    `policy/` folder, with its normalisation statistics; the tiny policy for runs without one); or the tiny
    policy."""
    from hiors_policy.checkpoint import make_policy

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


@dataclass(frozen=True)
class Attempt:
    """How one attempt ended."""

    success: bool
    steps: int  # control steps
    time: float  # s of sim time when it ended (at success: the time of the first success)
    progress: float  # the task's progress in [0, 1] at the end: how far a failed attempt got
    progress_at_mark: float  # the progress when the clock reached `mark` s (at the end if it ended sooner)
    failure: str  # the failure that ended it ("": success or the time limit did)


def run_attempt(
    env, model, limits, k_auto: int, image_size: int, seed: int, cell: int, mark: float | None = None
) -> Attempt:
    """One attempt from (seed, cell) until the env says done: at success, at a failure that ends its episodes
    (`SimRobot.end_on`) or at its time limit."""
    from hiors_policy.layout import state_layout
    from hiors_policy.policy import PolicyInput
    from hiors_teleop.safety import make_safe

    env.reset(seed=seed, cell=cell)
    # The whole named state, the task's goal entries included: a policy picks its own entries by name.
    names = state_layout(env.spec.name, env.task.name, goal=True)
    prev = np.asarray(env.commanded_action(), dtype=np.float64)
    steps, at_mark = 0, None
    while True:
        obs = PolicyInput(
            env.render(size=(image_size, image_size)), policy_state(env, names), env.task.instruction, names
        )
        for action in model.infer(obs)[:k_auto]:
            safe = make_safe(action, prev, limits)
            prev = safe.action
            result = env.step(safe.action)
            steps += 1
            progress = float(env.evaluation().get("progress", float(result.success)))
            if at_mark is None and mark is not None and result.time >= mark:
                at_mark = progress
            if result.done:
                at_mark = progress if at_mark is None else at_mark
                return Attempt(bool(result.success), steps, float(result.time), progress, at_mark, result.failure)


def evaluate_policy(
    policy, robot: str, task: str, seeds, budgets=(1.0,), end_on: str = "unrecoverable", image_size: int = 0
) -> dict:
    """One long attempt (the largest budget, in multiples of the task's time limit) per initial state, without the
    operator; success within each budget and the task's progress at the time limit. State k starts in grid cell
    k mod cells (train and test cells). `end_on`: which failures end an attempt (`SimRobot.end_on`);
    `image_size`: the cameras' size (0: the policy's input size)."""
    from hiors_core.config import load_yaml, node_parameters
    from hiors_core.tasks import get_task
    from hiors_sim.env import SimRobot
    from hiors_sim.tasks import make_task
    from hiors_teleop.safety import Limits, layout_for

    from .graph import config_dir

    cfg_path = config_dir() / f"{robot}.yaml"
    k_auto = int(node_parameters(load_yaml(cfg_path), "arbiter", str(cfg_path)).get("k_auto", 12))
    limit = make_task(task).time_limit
    env = SimRobot(robot, task, time_limit=limit * max(budgets), end_on=end_on)
    limits = Limits.for_robot(env.spec, layout_for(env.spec, get_task(task, robot).control_mode, env.task.arm))
    times, progress, train = [], [], []
    was_training = policy.model.training
    policy.model.eval()
    try:
        for k, seed in enumerate(seeds):
            cell = k % env.task.grid.n_cells
            size = image_size or policy.config.image_size
            a = run_attempt(env, policy, limits, k_auto, size, int(seed), cell, mark=limit)
            times.append(a.time if a.success else None)
            progress.append(a.progress_at_mark)
            train.append(env.task.grid.is_train(cell))
    finally:
        env.close()
        policy.model.train(was_training)
    out = {f"success_{b:g}x": float(np.mean([t is not None and t <= b * limit + 1e-9 for t in times])) for b in budgets}
    out["success"] = out["success_1x"]
    out["progress"] = float(np.mean(progress))
    ok1 = [t is not None and t <= limit + 1e-9 for t in times]
    out["success_train_cells"] = float(np.mean([o for o, t in zip(ok1, train, strict=True) if t] or [np.nan]))
    out["success_test_cells"] = float(np.mean([o for o, t in zip(ok1, train, strict=True) if not t] or [np.nan]))
    return out


def parse_budgets(budgets) -> tuple[float, ...]:
    """Multiples of the time limit from "1,1.5,2,3" or a sequence; positive, sorted, distinct."""
    try:
        out = [float(x) for x in (budgets.split(",") if isinstance(budgets, str) else budgets)]
    except ValueError as e:
        raise ConfigError(f"--budgets: {e} (give multiples of the time limit, e.g. 1,1.5,2,3)") from None
    if not out or any(not np.isfinite(x) or x <= 0 for x in out):
        raise ConfigError(f"--budgets must be positive multiples of the time limit, got {budgets!r}")
    return tuple(sorted(set(out)))


def run_eval(args) -> int:
    from hiors_sim.env import SimRobot
    from hiors_sim.tasks import make_task
    from hiors_teleop.safety import Limits, layout_for

    robot = args.robot
    spec = task_or_default(robot, args.task or "")  # a ConfigError naming the robot's tasks
    task = spec.name
    retries = int(args.retries)
    if args.episodes < 1 or retries < 0:
        raise ConfigError("--episodes must be at least 1 and --retries at least 0 (0: no pass@k view)")
    time_limit = float(getattr(args, "time_limit", 0.0) or 0.0)
    if time_limit < 0:
        raise ConfigError("--time-limit must be positive (0: the task's own)")
    limit = time_limit or make_task(task).time_limit
    multiples = parse_budgets(getattr(args, "budgets", None) or DEFAULT_BUDGETS)
    budgets = [round(x * limit, 6) for x in multiples]
    cfg_path = config_dir() / f"{robot}.yaml"
    cfg = load_yaml(cfg_path)
    arbiter = node_parameters(cfg, "arbiter", str(cfg_path))
    sim = node_parameters(cfg, "sim", str(cfg_path))
    k_auto, image_size = int(arbiter.get("k_auto", 12)), int(sim.get("image_width", 224))
    model, source = load_eval_policy(robot, task, args.policy or "", getattr(args, "run", "") or "")
    run_dir = Path(args.run_dir or f"runs/eval-{robot}-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"hiors eval: {robot}/{task}, policy {source}, {args.episodes} initial states, one attempt of up to "
        f"{budgets[-1]:g} s each" + (f", then up to {retries} tries of {limit:g} s" if retries else "")
    )
    # The long attempts: the largest budget is the time limit; a recoverable failure does not end them.
    env = SimRobot(robot, task, time_limit=budgets[-1], end_on="unrecoverable")
    limits = Limits.for_robot(env.spec, layout_for(env.spec, spec.control_mode, env.task.arm))
    grid = env.task.grid
    timed, cells, train, at_limit = [], [], [], []
    try:
        with open(run_dir / "long_attempts.csv", "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(
                ["episode", "seed", "cell", "split", "success", "success_time", "end_time", "end", "steps"]
                + ["progress_at_limit", "progress"]
            )
            for i in range(args.episodes):
                seed, cell = args.seed + i, i % grid.n_cells
                a = run_attempt(env, model, limits, k_auto, image_size, seed, cell, mark=limit)
                end = "success" if a.success else a.failure or "budget"
                timed.append(TimedOutcome(a.time if a.success else None, a.time, bool(a.failure)))
                cells.append(cell)
                train.append(grid.is_train(cell))
                at_limit.append(a.progress_at_mark)
                split = "train" if grid.is_train(cell) else "test"
                out.writerow(
                    [i, seed, cell, split, int(a.success), f"{a.time:.3f}" if a.success else "", f"{a.time:.3f}"]
                    + [end, a.steps, f"{a.progress_at_mark:.3f}", f"{a.progress:.3f}"]
                )
                f.flush()
                print(
                    f"  episode {i}: seed {seed} cell {cell}: {end} at {a.time:.2f} s "
                    f"(progress {a.progress_at_mark:.2f} at the time limit {limit:g} s)"
                )
    finally:
        env.close()
    time_curve = success_vs_time(timed, budgets)
    with open(run_dir / "success_vs_time.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["budget_s", "success_rate"])
        w.writerows([f"{b:g}", f"{s:.3f}"] for b, s in zip(budgets, time_curve, strict=True))
    retry_curve = (
        run_retries(args, task, retries, time_limit, run_dir, (model, limits, k_auto, image_size)) if retries else []
    )
    reached = [[o.success_time is not None and o.success_time <= b for o in timed] for b in (budgets[0], budgets[-1])]
    rows = per_cell(reached[0], reached[1], cells, train)
    with open(run_dir / "per_cell.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["cell", "split", "episodes", "success_smallest_budget", "success_largest_budget"])
        w.writerows([r.cell, r.split, r.episodes, f"{r.smallest_budget:.3f}", f"{r.largest_budget:.3f}"] for r in rows)
    lines = [
        f"{robot}/{task}, policy {source}, time limit {limit:g} s, budgets {', '.join(f'{x:g}x' for x in multiples)}"
        f" of it, k_auto {k_auto}",
        "",
    ]
    lines += table_lines(budgets, time_curve, retry_curve, rows)
    lines += ["", f"mean progress at the time limit: {float(np.mean(at_limit)):.3f}"]
    (run_dir / "eval.txt").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines[2:]))
    written = ["long_attempts.csv", "success_vs_time.csv"]
    written += ["retry_attempts.csv", "success_vs_retries.csv"] if retries else []
    print(f"\nwritten: {run_dir}/" + ", ".join(written + ["per_cell.csv", "eval.txt"]))
    return 0


def run_retries(args, task: str, retries: int, time_limit: float, run_dir: Path, policy: tuple) -> list[float]:
    """The second view, pass@k over resets: up to `retries` tries per initial state, each ending at the task's
    success, failure or time limit; writes retry_attempts.csv and success_vs_retries.csv, returns the curve."""
    from hiors_sim.env import SimRobot

    model, limits, k_auto, image_size = policy
    env = SimRobot(args.robot, task, time_limit=time_limit or None)
    grid = env.task.grid
    outcomes = []
    try:
        with open(run_dir / "retry_attempts.csv", "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["episode", "seed", "cell", "split", "attempt", "success", "steps", "progress"])
            for i in range(args.episodes):
                seed, cell = args.seed + i, i % grid.n_cells
                attempts = []
                for r in range(retries):
                    a = run_attempt(env, model, limits, k_auto, image_size, seed, cell)
                    attempts.append(a.success)
                    split = "train" if grid.is_train(cell) else "test"
                    out.writerow([i, seed, cell, split, r, int(a.success), a.steps, f"{a.progress:.3f}"])
                    f.flush()
                    if a.success:
                        break  # later tries cannot change this episode's outcome
                outcomes.append(attempts)
                print(
                    f"  episode {i}: {'success' if any(attempts) else 'failure'} after {len(attempts)} tries (resets)"
                )
    finally:
        env.close()
    curve = success_vs_retries(outcomes, retries)
    with open(run_dir / "success_vs_retries.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["retries", "success_rate"])
        w.writerows([k + 1, f"{s:.3f}"] for k, s in enumerate(curve))
    return curve


def read_eval(eval_dir: Path) -> dict:
    """A `hiors eval` run folder's numbers (the paper tables read it): success within the time limit (the time curve's
    first budget, 1x), within the largest budget and within R tries over resets (nan without that view), the
    progress at the time limit, and the curves."""
    with open(eval_dir / "success_vs_time.csv") as f:
        timed = [(float(r["budget_s"]), float(r["success_rate"])) for r in csv.DictReader(f)]
    retry_curve = []
    if (eval_dir / "success_vs_retries.csv").is_file():
        with open(eval_dir / "success_vs_retries.csv") as f:
            retry_curve = [float(r["success_rate"]) for r in csv.DictReader(f)]
    with open(eval_dir / "long_attempts.csv") as f:
        at_limit = [float(r["progress_at_limit"]) for r in csv.DictReader(f)]
    return {
        "eval_success_1": timed[0][1],
        "eval_success_T": timed[-1][1],
        "eval_success_R": retry_curve[-1] if retry_curve else float("nan"),
        "eval_progress_1": sum(at_limit) / len(at_limit),
        "time_budgets": [b for b, _ in timed],
        "time_curve": [s for _, s in timed],
        "retry_curve": retry_curve,
    }
