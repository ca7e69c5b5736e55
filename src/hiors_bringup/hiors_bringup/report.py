"""`hiors report <run>`: learning curves and filter statistics from a run folder's CSV files."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from hiors_core.errors import HiorsError

EPISODES_CSV = "episodes.csv"  # written by `hiors up`, one row per verdict
METRICS_CSV = "learner/metrics.csv"  # written by the learner, one row per logged step


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _float(row: dict, key: str, default: float = float("nan")) -> float:
    try:
        return float(row.get(key, default))
    except (TypeError, ValueError):
        return default


def rolling(values: list[float], window: int = 5) -> list[float]:
    out = []
    for i in range(len(values)):
        w = values[max(0, i - window + 1) : i + 1]
        out.append(sum(w) / len(w))
    return out


def plot(run: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episodes = read_csv(run / EPISODES_CSV)
    metrics = read_csv(run / METRICS_CSV)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    if episodes:
        x = list(range(1, len(episodes) + 1))
        succ = [_float(r, "success", 0.0) for r in episodes]
        human = [_float(r, "human_share", 0.0) for r in episodes]
        axes[0].plot(x, rolling(succ), label="rolling success (5)")
        axes[0].plot(x, human, label="human share of steps", alpha=0.7)
        acc = [i for i, r in zip(x, episodes, strict=True) if r.get("accepted") == "1"]
        axes[0].scatter(acc, [1.02] * len(acc), marker="|", color="green", label="accepted")
        axes[0].set_xlabel("episode")
        axes[0].set_ylim(-0.05, 1.1)
        axes[0].legend(fontsize=8)
        axes[2].step(x, [_float(r, "threshold") for r in episodes], where="post", label="threshold m")
        axes[2].set_xlabel("episode")
        axes[2].legend(fontsize=8)
    if metrics:
        axes[1].plot([_float(r, "step") for r in metrics], [_float(r, "loss") for r in metrics])
        axes[1].set_xlabel("learner step")
        axes[1].set_ylabel("flow-matching loss")
    axes[0].set_title("episodes")
    axes[1].set_title("learner")
    axes[2].set_title("rejection threshold")
    fig.tight_layout()
    out = run / "learning_curve.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def unattended_failures(episodes: list[dict]) -> int:
    """Failed episodes (episodes.csv rows) in which the operator never stepped in: a failure that taught nothing.
    Rows without an interventions column (older runs) are not counted."""
    return sum(r.get("success") == "0" and r.get("interventions") == "0" for r in episodes)


def summary_lines(run: Path) -> list[str]:
    episodes = read_csv(run / EPISODES_CSV)
    metrics = read_csv(run / METRICS_CSV)
    n = len(episodes)
    acc = sum(r.get("accepted") == "1" for r in episodes)
    succ = sum(r.get("success") == "1" for r in episodes)
    reasons = Counter(r.get("reason", "") for r in episodes)
    human = [_float(r, "human_share", 0.0) for r in episodes]
    lines = [
        f"run: {run}",
        f"episodes: {n}   success: {succ}/{n}   accepted: {acc}/{n}   rejected: {n - acc}/{n}",
        "verdicts: " + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none"),
    ]
    if human:
        lines.append(f"human share of control steps: mean {sum(human) / len(human):.2f}")
    if n:
        lines.append(f"failed without any intervention: {unattended_failures(episodes)}/{n - succ} failed episodes")
    if n >= 2:
        half = n // 2
        first = sum(r.get("success") == "1" for r in episodes[:half]) / half
        second = sum(r.get("success") == "1" for r in episodes[half:]) / (n - half)
        lines.append(f"success rate: first half {first:.2f}, second half {second:.2f}")
    if metrics:
        last = metrics[-1]
        lines.append(
            f"learner: {last.get('step')} steps, last loss {_float(last, 'loss'):.4f}, policy version {last.get('policy_version', '?')}"
        )
    return lines


def report(run: str | Path) -> list[str]:
    run = Path(run)
    if not run.is_dir():
        raise HiorsError(f"{run}: no such run folder")
    if not (run / EPISODES_CSV).exists() and not (run / METRICS_CSV).exists():
        raise HiorsError(f"{run}: neither {EPISODES_CSV} nor {METRICS_CSV} found; is this a hiors run folder?")
    png = plot(run)
    return summary_lines(run) + [f"plot: {png}"]
