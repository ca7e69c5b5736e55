"""Benchmark bookkeeping (pure): medians, ratios, a printed table, and the CSV + PNG every figure writes."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path


def median(xs) -> float:
    xs = list(xs)
    if not xs:
        raise ValueError("no measurements")
    return float(statistics.median(xs))


def ratio(numerator: float, denominator: float) -> float:
    if not denominator > 0:
        raise ValueError(f"cannot take a ratio over {denominator!r}")
    return numerator / denominator


def format_table(rows: list[dict], columns: list[str]) -> str:
    def cell(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    widths = [max(len(c), *(len(cell(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(cell(r.get(c, "")).rjust(w) for c, w in zip(columns, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def write_figure(out_dir: Path, name: str, rows: list[dict], columns: list[str], bar: tuple[str, str]) -> list[Path]:
    """<name>.csv with `columns`, and <name>.png: a bar per row of column bar[1] labelled by column bar[0]."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{name}.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label, value = bar
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows) + 2), 3))
    ax.bar([str(r[label]) for r in rows], [float(r[value]) for r in rows])
    ax.set_ylabel(value)
    ax.set_title(name)
    fig.tight_layout()
    png = out_dir / f"{name}.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return [csv_path, png]
