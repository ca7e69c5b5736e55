"""Evaluation arithmetic (pure): test-time scaling and per-cell success from attempt outcomes.

An evaluation episode is one initial state (seed, grid cell) tried up to R times; `outcomes[i][r]` says whether
attempt r of episode i succeeded. With a retry budget b, episode i counts as a success if any of its first b
attempts did (the paper's test-time scaling: success rate vs budget).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


def success_vs_budget(outcomes: list[list[bool]], max_budget: int) -> list[float]:
    """Success rate for budgets 1..max_budget; non-decreasing by construction."""
    if max_budget < 1:
        raise ValueError(f"the retry budget must be at least 1, got {max_budget}")
    if not outcomes:
        raise ValueError("no evaluation episodes")
    for i, attempts in enumerate(outcomes):
        if len(attempts) < max_budget and not any(attempts):
            raise ValueError(f"episode {i} has {len(attempts)} attempts, fewer than the budget {max_budget}")
    return [sum(any(a[:b]) for a in outcomes) / len(outcomes) for b in range(1, max_budget + 1)]


@dataclass(frozen=True)
class CellRow:
    cell: int
    split: str  # "train" or "test"
    episodes: int
    first_try: float  # success rate with budget 1
    any_try: float  # success rate with the whole budget


def per_cell(outcomes: list[list[bool]], cells: list[int], train: list[bool]) -> list[CellRow]:
    """One row per grid cell visited, sorted by cell."""
    if not len(outcomes) == len(cells) == len(train):
        raise ValueError("outcomes, cells and train flags differ in length")
    by_cell: dict[int, list[list[bool]]] = defaultdict(list)
    split: dict[int, str] = {}
    for attempts, c, t in zip(outcomes, cells, train, strict=True):
        by_cell[c].append(attempts)
        s = "train" if t else "test"
        if split.setdefault(c, s) != s:
            raise ValueError(f"cell {c} is marked both train and test")
    return [
        CellRow(
            cell=c,
            split=split[c],
            episodes=len(eps),
            first_try=sum(bool(e and e[0]) for e in eps) / len(eps),
            any_try=sum(any(e) for e in eps) / len(eps),
        )
        for c, eps in sorted(by_cell.items())
    ]


def table_lines(curve: list[float], rows: list[CellRow]) -> list[str]:
    """The two tables `hiors eval` prints and writes: success rate by retry budget, then one line per cell
    (with the train/test split totals)."""
    lines = ["retry budget  success rate"]
    lines += [f"{b:12d}  {s:12.2f}" for b, s in enumerate(curve, 1)]
    lines += ["", "cell  split  episodes  first try  within budget"]
    lines += [f"{r.cell:4d}  {r.split:5s}  {r.episodes:8d}  {r.first_try:9.2f}  {r.any_try:13.2f}" for r in rows]
    for split in ("train", "test"):
        part = [r for r in rows if r.split == split]
        n = sum(r.episodes for r in part)
        if n:
            first = sum(r.first_try * r.episodes for r in part) / n
            anyt = sum(r.any_try * r.episodes for r in part) / n
            lines.append(f" all  {split:5s}  {n:8d}  {first:9.2f}  {anyt:13.2f}")
    return lines
