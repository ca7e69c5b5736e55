"""`hiors bench`: registered on the `hiors` command through the `hiors.commands` entry point (see setup.py)."""

from __future__ import annotations


def _bench(a) -> int:
    from .bench import run_bench

    variants = tuple(v for v in a.variants.split(",") if v)
    seeds = tuple(int(x) for x in a.seeds.split(",") if x)
    tasks = tuple(t for t in a.tasks.split(",") if t)
    return run_bench(
        a.which, a.run_dir, full=a.full, variants=variants, seeds=seeds, tasks=tasks, camera_only=a.camera_only
    )


def add_command(sub) -> None:
    b = sub.add_parser("bench", help="benchmarks: ratios measured side by side in one run")
    b.add_argument("which", nargs="?", default="all", help="all (the micro benchmarks), a figure, paper, or learning")
    b.add_argument("--run-dir", default="runs/bench")
    b.add_argument("--full", action="store_true", help="the full-size version (GPU machine)")
    b.add_argument("--variants", default="", help="paper: only these variants (comma-separated; default all)")
    b.add_argument("--seeds", default="", help="paper, learning: these seeds (comma-separated; default: the size's)")
    b.add_argument("--tasks", default="", help="learning: only these tasks (comma-separated)")
    b.add_argument("--camera-only", action="store_true", help="learning: the camera-only policy (no goal in state)")
    b.set_defaults(func=_bench)
