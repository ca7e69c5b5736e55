"""Benchmark bookkeeping (pure): medians, ratios, a printed table, and the CSV + PNG every figure writes."""

from __future__ import annotations

import csv
import os
import statistics
import textwrap
import time
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


def write_figure(out_dir: Path, name: str, rows: list[dict], columns: list[str], bar: tuple) -> list[Path]:
    """<name>.csv with `columns`, and <name>.png: a bar per row of column bar[1] labelled by column bar[0]; with
    several value columns in bar[1] (a tuple), a group of bars per row."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{name}.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label, values = bar
    values = (values,) if isinstance(values, str) else tuple(values)
    width = 0.8 / len(values)
    fig, ax = plt.subplots(figsize=(min(14, max(4, (0.6 + 0.15 * len(values)) * len(rows) + 2)), 3.2))
    for i, v in enumerate(values):
        xs = [k + (i - (len(values) - 1) / 2) * width for k in range(len(rows))]
        ax.bar(xs, [float(r[v] if r[v] != "" else 0.0) for r in rows], width, label=v)  # "": not measured
    names = ["\n".join(textwrap.wrap(str(r[label]), 16)) or str(r[label]) for r in rows]  # long names side by side
    ax.set_xticks(
        range(len(rows)), names, rotation=30 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else "center"
    )
    if len(values) > 1:
        ax.legend(fontsize="small")
    else:
        ax.set_ylabel(values[0])
    ax.set_title(name)
    fig.tight_layout()
    png = out_dir / f"{name}.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return [csv_path, png]


def bench_command(
    which: str, run_dir, full: bool, size: str, variants=(), seeds=(), tasks=(), camera_only=False
) -> str:
    """The `hiors bench` command line that reproduces a run (the Python call where no flag gives its size)."""
    if size == "tiny":
        return f"python -c \"from hiors_bench.bench import run_bench; run_bench({which!r}, {str(run_dir)!r}, size='tiny')\""
    cmd = f"hiors bench {which} --run-dir {run_dir}" + (" --full" if full else "")
    if variants:
        cmd += " --variants " + ",".join(variants)
    if seeds:
        cmd += " --seeds " + ",".join(str(s) for s in seeds)
    if tasks:
        cmd += " --tasks " + ",".join(tasks)
    return cmd + (" --camera-only" if camera_only else "")


def write_provenance(out_dir: Path, name: str, command: str, seconds: float, load_before: float) -> Path:
    """<name>.run.txt beside a figure's CSV: the command, how long it took, the machine's load around it."""
    path = Path(out_dir) / f"{name}.run.txt"
    lines = [
        f"command: {command}",
        f"wall: {seconds:.0f} s",
        f"cpus: {os.cpu_count()}",
        f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after",
        f"finished: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_provenance(path: Path) -> dict[str, str]:
    """The fields of a <name>.run.txt ({} when there is none)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
