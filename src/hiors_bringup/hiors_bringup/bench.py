"""`hiors bench <figure>`: each figure measures its alternatives side by side in one run and reports ratios
(these machines are shared and noisy: absolute times vary, ratios much less). Each prints a table and writes
<figure>.csv and <figure>.png under the run folder. `all` runs every micro benchmark (not `paper`).

  plumbing     chunk latency through the ROS graph vs a direct `infer` call (same model, same inputs)
  recording    episode-log write throughput vs the sensor data rate (frames of two 224x224 cameras)
  async        learner steps/s when training alongside data collection vs collect-then-train alternation
  weight_sync  weights publish-to-swap time at the actor (topic chunks; shared-disk fast path) vs serialisation
  sim          twin physics and control-loop real-time factors, render rate
  paper        the paper's comparisons on the twins (see `paper_bench.py`)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from hiors_core.errors import ConfigError

from .bench_table import format_table, median, ratio, write_figure

MICRO = ("plumbing", "recording", "async", "weight_sync", "sim")


def bench_plumbing(full: bool) -> tuple[list[dict], list[str], tuple[str, str]]:
    from hiors_policy.bench import run

    r = run(n=60 if full else 20)
    row = {
        "model": r["model"],
        "direct_ms": 1e3 * r["direct_infer_median_s"],
        "graph_ms": 1e3 * r["graph_median_s"],
        "overhead_ms": 1e3 * r["graph_overhead_s"],
        "graph_over_direct": r["graph_over_direct"],
    }
    return [row], list(row), ("model", "graph_over_direct")


def bench_recording(full: bool) -> tuple[list[dict], list[str], tuple[str, str]]:
    import tempfile

    from hiors_core.episode_log import EpisodeLog
    from hiors_core.robots import MODE_EE_POSE
    from hiors_core.schema import AUTHORITY_HUMAN, EpisodeMeta, Executed, Frame

    n, rate_hz, cams = (500 if full else 150), 25.0, ("top", "left_wrist")
    rng = np.random.default_rng(0)
    images = {c: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for c in cams}
    state = rng.normal(size=15).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        meta = EpisodeMeta(
            "bench-000000",
            "tora_one",
            "raise_hand",
            "raise the left hand",
            MODE_EE_POSE,
            tuple(f"a{i}" for i in range(8)),
            tuple(f"s{i}" for i in range(15)),
            cams,
            rate_hz,
        )
        writer = EpisodeLog(d).open_writer(meta)
        t0 = time.perf_counter()
        for k in range(n):
            stamp = k * int(1e9 / rate_hz)
            writer.write_frame(Frame(k, stamp, images, state, meta.state_names, meta.instruction, k))
            writer.write_executed(Executed(k, stamp, np.zeros(8, np.float32), AUTHORITY_HUMAN, "bench", 0, False, True))
        writer.close()
        wall = time.perf_counter() - t0
    fps = n / wall
    mb_s = n * sum(im.nbytes for im in images.values()) / wall / 1e6
    row = {
        "frames": n,
        "frames_per_s": fps,
        "sensor_hz": rate_hz,
        "MB_per_s": mb_s,
        "throughput_over_rate": fps / rate_hz,
    }
    return [row], list(row), ("sensor_hz", "throughput_over_rate")


def _rollout(env, policy, names, limits, k_auto: int, seconds: float) -> int:
    """Collect `seconds` of sim time with the policy driving (what the actor does while the learner trains)."""
    from hiors_policy.policy import PolicyInput
    from hiors_teleop.safety import make_safe

    from .sim_io import policy_state

    steps, total = 0, int(round(seconds / env.control_dt))
    prev = np.asarray(env.commanded_action(), dtype=np.float64)
    while steps < total:
        obs = PolicyInput(env.render(size=(224, 224)), policy_state(env, names), env.task.instruction, names)
        for a in policy.infer(obs)[:k_auto]:
            prev = make_safe(a, prev, limits).action
            steps += 1
            if env.step(prev).done:
                env.reset(seed=steps)
                prev = np.asarray(env.commanded_action(), dtype=np.float64)
                break
    return steps


def bench_async(full: bool) -> tuple[list[dict], list[str], tuple[str, str]]:
    import torch

    from hiors_policy.layout import state_layout
    from hiors_policy.policy import build_tiny_policy
    from hiors_sim.env import SimRobot
    from hiors_teleop.safety import Limits, layout_for

    robot, task = "tora_one", "raise_hand"
    actor, learner = build_tiny_policy(robot, task, seed=0), build_tiny_policy(robot, task, seed=1)
    rng = np.random.default_rng(0)
    samples = [
        {
            "images": {c: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for c in learner.config.camera_names},
            "state": rng.normal(size=learner.state_dim).astype(np.float32),
            "action_label": rng.normal(size=(learner.horizon, learner.action_dim)).astype(np.float32),
            "instruction": "",
        }
        for _ in range(8)
    ]
    batch = learner.collate(samples)
    opt = torch.optim.AdamW(learner.model.parameters(), lr=1e-4)

    def train_step():
        opt.zero_grad()
        learner.loss(batch).mean().backward()
        opt.step()

    env = SimRobot(robot, task)
    env.reset(seed=0)
    names = state_layout(robot, task)
    limits = Limits.for_robot(env.spec, layout_for(env.spec, "ee", env.task.arm))
    rounds, seconds, k_auto = (6 if full else 3), 2.0, 12
    train_step()  # warm-up (first step, first render, first inference) outside the timing
    _rollout(env, actor, names, limits, k_auto, 0.5)
    stop = threading.Event()
    async_steps = [0]

    def trainer():
        while not stop.is_set():
            train_step()
            async_steps[0] += 1

    # Rounds alternate the two modes from the same start (seed), so that load drift on a shared machine hits both.
    sync_wall = sync_collect = async_wall = collect_wall = 0.0
    sync_steps = 0
    for k in range(rounds):
        # Synchronous alternation: collect a round, then train for as long as the collection took.
        env.reset(seed=k)
        torch.manual_seed(k)
        t0 = time.perf_counter()
        _rollout(env, actor, names, limits, k_auto, seconds)
        budget = time.perf_counter() - t0
        while time.perf_counter() - t0 < 2 * budget:
            train_step()
            sync_steps += 1
        sync_collect += budget
        sync_wall += time.perf_counter() - t0
        # Asynchronous: the learner trains in its own thread while the same round is collected.
        env.reset(seed=k)
        torch.manual_seed(k)
        stop.clear()
        th = threading.Thread(target=trainer)
        t0 = time.perf_counter()
        th.start()
        _rollout(env, actor, names, limits, k_auto, seconds)
        collect_wall += time.perf_counter() - t0
        stop.set()
        th.join()
        async_wall += time.perf_counter() - t0
    env.close()
    rows = [
        {
            "mode": "sync",
            "wall_s": sync_wall,
            "learner_steps": sync_steps,
            "steps_per_s": sync_steps / sync_wall,
            "collect_wall_s": sync_collect,
        },
        {
            "mode": "async",
            "wall_s": async_wall,
            "learner_steps": async_steps[0],
            "steps_per_s": async_steps[0] / async_wall,
            "collect_wall_s": collect_wall,
        },
    ]
    for r in rows:
        r["steps_per_s_over_sync"] = ratio(r["steps_per_s"], rows[0]["steps_per_s"])
    return rows, list(rows[0]), ("mode", "steps_per_s")


def bench_weight_sync(full: bool) -> tuple[list[dict], list[str], tuple[str, str]]:
    import tempfile

    from hiors_core import topics
    from hiors_core.ros_testing import ros_context, spinning, wait_for, wait_for_subscribers
    from hiors_core.weight_sync import weight_messages, write_atomic
    from hiors_msgs.msg import PolicyUpdate, PolicyWeights
    from hiors_policy.policy import build_tiny_policy
    from hiors_policy.policy_node import LATCHED, RELIABLE_ALL, PolicyNode

    policy, other = (
        build_tiny_policy("tora_one", "raise_hand", seed=0),
        build_tiny_policy("tora_one", "raise_hand", seed=3),
    )
    n = 10 if full else 4
    ser = []
    for _ in range(n):
        t0 = time.perf_counter()
        blob = other.to_safetensors_bytes()
        ser.append(time.perf_counter() - t0)
    topic_s, disk_s = [], []
    with ros_context() as ctx, tempfile.TemporaryDirectory() as d:
        node = PolicyNode(policy=policy, context=ctx)
        probe = node.__class__.__mro__[1]("weight_bench_probe", context=ctx)
        up = probe.create_publisher(PolicyUpdate, topics.POLICY_UPDATE, LATCHED)
        w = probe.create_publisher(PolicyWeights, topics.POLICY_WEIGHTS, RELIABLE_ALL)
        try:
            with spinning([node, probe], context=ctx):
                wait_for_subscribers(up)
                wait_for_subscribers(w)
                version = 0
                for _ in range(n):
                    for path in ("", "disk"):
                        version += 1
                        t0 = time.perf_counter()
                        if path:
                            p = write_atomic(Path(d) / f"policy-v{version}.safetensors", blob)
                            update, parts = weight_messages(blob, version, version, path=str(p))
                            parts = []
                        else:
                            update, parts = weight_messages(blob, version, version)
                        up.publish(update)
                        for m in parts:
                            w.publish(m)
                        wait_for(lambda v=version: node.version == v, 60, f"version {version} swapped in")
                        (disk_s if path else topic_s).append(time.perf_counter() - t0)
        finally:
            node.destroy_node()
            probe.destroy_node()
    s = median(ser)
    rows = [
        {"path": "serialise only", "MB": len(blob) / 1e6, "median_ms": 1e3 * s, "over_serialise": 1.0},
        {
            "path": "topic chunks",
            "MB": len(blob) / 1e6,
            "median_ms": 1e3 * median(topic_s),
            "over_serialise": ratio(median(topic_s), s),
        },
        {
            "path": "shared disk",
            "MB": len(blob) / 1e6,
            "median_ms": 1e3 * median(disk_s),
            "over_serialise": ratio(median(disk_s), s),
        },
    ]
    return rows, ["path", "MB", "median_ms", "over_serialise"], ("path", "over_serialise")


def bench_sim(full: bool) -> tuple[list[dict], list[str], tuple[str, str]]:
    from hiors_sim.bench import run

    rows = run(seconds=8.0 if full else 3.0)
    return rows, list(rows[0]), ("robot", "loop_rtf")


FIGURES = {
    "plumbing": bench_plumbing,
    "recording": bench_recording,
    "async": bench_async,
    "weight_sync": bench_weight_sync,
    "sim": bench_sim,
}


def run_bench(which: str, run_dir: str | Path, full: bool = False) -> int:
    out = Path(run_dir)
    if which == "paper":
        from .paper_bench import run_paper

        return run_paper(out, full=full)
    names = MICRO if which == "all" else (which,)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ConfigError(f"unknown benchmark {unknown[0]!r}; known: all, {', '.join(FIGURES)}, paper")
    for name in names:
        rows, columns, bar = FIGURES[name](full)
        print(f"\n== {name}\n{format_table(rows, columns)}")
        files = write_figure(out, name, rows, columns, bar)
        print("written: " + ", ".join(str(f) for f in files))
    return 0
