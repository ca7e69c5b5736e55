"""Throughput of the twins: `python -m hiors_bench.sim_bench` (or `hiors_bench.sim_bench.run()`), printed as a table.

Per robot: physics steps/s, control steps/s, the real-time factor of the control loop with cameras rendered at
`camera_rate_hz` (sim time), and rendered frame pairs/s (two 224x224 cameras).
"""

from __future__ import annotations

import time

from hiors_sim.env import SimRobot
from hiors_sim.expert import ScriptedExpert

DEFAULT_TASKS = {"tora_one": "pack_detergent", "xtrainer": "insert_moisturizer"}


def run(
    seconds: float = 4.0, camera_rate_hz: float = 10.0, size=(224, 224), robots=("tora_one", "xtrainer")
) -> list[dict]:
    rows = []
    for robot in robots:
        env = SimRobot(robot, DEFAULT_TASKS[robot])
        cams = env.spec.cameras[:2]
        expert = ScriptedExpert(env.task)
        env.reset(0)
        steps = int(seconds / env.control_dt)
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step()
        physics_wall = time.perf_counter() - t0
        env.render(cams, size)  # create the renderer outside the timing
        t0 = time.perf_counter()
        n_pairs = 20
        for _ in range(n_pairs):
            env.render(cams, size)
        pairs_s = n_pairs / (time.perf_counter() - t0)
        # Control loop as the node runs it: expert action + step every control period, cameras at the camera rate.
        st = env.reset(1)
        expert.reset()
        next_cam = 0.0
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(expert.act(st))
            st = env.task_state()
            if env.time >= next_cam:
                next_cam += 1.0 / camera_rate_hz
                env.render(cams, size)
        loop_wall = time.perf_counter() - t0
        env.close()
        rows.append(
            {
                "robot": robot,
                "physics_steps_per_s": steps * env.n_substeps / physics_wall,
                "control_steps_per_s": steps / physics_wall,
                "physics_rtf": steps * env.control_dt / physics_wall,
                "loop_rtf": steps * env.control_dt / loop_wall,
                "camera_rate_hz": camera_rate_hz,
                "render_pairs_per_s": pairs_s,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    head = (
        f"{'robot':10} {'physics steps/s':>16} {'physics RTF':>12} {'loop RTF (cams)':>16} {'cam Hz':>7} {'pairs/s':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['robot']:10} {r['physics_steps_per_s']:16.0f} {r['physics_rtf']:12.1f} {r['loop_rtf']:16.1f} "
            f"{r['camera_rate_hz']:7.1f} {r['render_pairs_per_s']:8.1f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--camera-rate", type=float, default=10.0)
    a = ap.parse_args()
    print(table(run(a.seconds, a.camera_rate)))
