"""Evaluation arithmetic (pure): test-time scaling and per-cell success from evaluation outcomes.

Two views of test-time scaling:
- **success vs time budget** (the paper's curve, the main one): each initial state gets one long attempt that
  goes on after a recoverable failure (a missed grasp, a knocked-over bottle) until success, an unrecoverable
  failure or the largest budget; with a budget of b seconds an initial state counts as a success if the attempt's
  first success came at or before b. One long run gives the whole curve.
- **success vs retries over resets** (pass@k, a second view): an initial state is tried up to R times from a reset;
  `outcomes[i][r]` says whether try r of initial state i succeeded; with k tries it counts as a success if any of
  its first k did.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class TimedOutcome:
    """How one long attempt ended."""

    success_time: float | None  # s of sim time at its first success; None: it never succeeded
    end_time: float  # s of sim time when it ended
    unrecoverable: bool = False  # it ended early on a failure no budget can repair


def success_vs_time(outcomes: list[TimedOutcome], budgets: list[float]) -> list[float]:
    """Success rate within each budget (s, ascending): the fraction whose first success came at or before it.
    A failed attempt must have run to the largest budget (or ended unrecoverably): a shorter one says nothing about
    the larger budgets."""
    if not budgets or any(b <= 0 for b in budgets) or list(budgets) != sorted(set(budgets)):
        raise ValueError(f"the time budgets must be positive, distinct and ascending, got {list(budgets)}")
    if not outcomes:
        raise ValueError("no evaluation episodes")
    for i, o in enumerate(outcomes):
        if o.success_time is None and not o.unrecoverable and o.end_time < budgets[-1]:
            raise ValueError(f"episode {i} ended at {o.end_time:g} s, before the largest budget {budgets[-1]:g} s")
    return [sum(o.success_time is not None and o.success_time <= b for o in outcomes) / len(outcomes) for b in budgets]


def success_vs_retries(outcomes: list[list[bool]], max_retries: int) -> list[float]:
    """pass@k over resets: success rate for k = 1..max_retries tries; non-decreasing by construction."""
    if max_retries < 1:
        raise ValueError(f"the retry budget must be at least 1, got {max_retries}")
    if not outcomes:
        raise ValueError("no evaluation episodes")
    for i, attempts in enumerate(outcomes):
        if len(attempts) < max_retries and not any(attempts):
            raise ValueError(f"episode {i} has {len(attempts)} attempts, fewer than the budget {max_retries}")
    return [sum(any(a[:b]) for a in outcomes) / len(outcomes) for b in range(1, max_retries + 1)]


@dataclass(frozen=True)
class CellRow:
    cell: int
    split: str  # "train" or "test"
    episodes: int
    smallest_budget: float  # success rate within the smallest time budget
    largest_budget: float  # success rate within the largest time budget


def per_cell(smallest: list[bool], largest: list[bool], cells: list[int], train: list[bool]) -> list[CellRow]:
    """One row per grid cell visited, sorted by cell, from each initial state's success within the smallest and
    the largest time budget."""
    if not len(smallest) == len(largest) == len(cells) == len(train):
        raise ValueError("successes, cells and train flags differ in length")
    by_cell: dict[int, list[tuple[bool, bool]]] = defaultdict(list)
    split: dict[int, str] = {}
    for first, last, c, t in zip(smallest, largest, cells, train, strict=True):
        if first and not last:
            raise ValueError(f"cell {c}: a success within the smallest budget is one within the largest")
        by_cell[c].append((first, last))
        s = "train" if t else "test"
        if split.setdefault(c, s) != s:
            raise ValueError(f"cell {c} is marked both train and test")
    return [
        CellRow(
            cell=c,
            split=split[c],
            episodes=len(eps),
            smallest_budget=sum(f for f, _ in eps) / len(eps),
            largest_budget=sum(la for _, la in eps) / len(eps),
        )
        for c, eps in sorted(by_cell.items())
    ]


def table_lines(
    budgets: list[float], time_curve: list[float], retry_curve: list[float], rows: list[CellRow]
) -> list[str]:
    """The tables `hiors eval` prints and writes: success rate by time budget (the main curve), by retries over
    resets (when run), then one line per cell (with the train/test split totals)."""
    lines = ["time budget (s)  success rate"]
    lines += [f"{b:15g}  {s:12.2f}" for b, s in zip(budgets, time_curve, strict=True)]
    if retry_curve:
        lines += ["", "tries (resets)  success rate"]
        lines += [f"{k:14d}  {s:12.2f}" for k, s in enumerate(retry_curve, 1)]
    small, large = f"within {budgets[0]:g} s", f"within {budgets[-1]:g} s"
    w1, w2 = len(small), len(large)
    lines += ["", f"cell  split  episodes  {small}  {large}"]
    lines += [
        f"{r.cell:4d}  {r.split:5s}  {r.episodes:8d}  {r.smallest_budget:{w1}.2f}  {r.largest_budget:{w2}.2f}"
        for r in rows
    ]
    for split in ("train", "test"):
        part = [r for r in rows if r.split == split]
        n = sum(r.episodes for r in part)
        if n:
            first = sum(r.smallest_budget * r.episodes for r in part) / n
            last = sum(r.largest_budget * r.episodes for r in part) / n
            lines.append(f" all  {split:5s}  {n:8d}  {first:{w1}.2f}  {last:{w2}.2f}")
    return lines
