"""`hiors bench <figure>`: each figure measures its alternatives side by side in one run and reports ratios
(these machines are shared and noisy: absolute times vary, ratios much less). Each prints a table and writes
<figure>.csv and <figure>.png under the run folder. `all` runs every micro benchmark (not `paper`).

  plumbing     chunk latency through the ROS graph vs a direct `infer` call (same model, same inputs)
  recording    the recorder node driven with observations + sampled commands at 1x..16x the sensor rate and
               unthrottled: frames on disk per second vs offered; the episode-log writer alone as the ceiling
  async        learner steps/s training alongside data collection vs collect-then-train alternation; achieved
               update-to-data ratio (gradient steps per sample) vs the target with the learner's own pacer
  weight_sync  weights publish-to-swap time at a live policy node (topic chunks; shared-disk fast path) vs
               plain safetensors serialisation of the same weights
  sim          twin physics and control-loop real-time factors, render rate vs the camera rate
  paper        the paper's comparisons on the twins (see `paper_bench.py`)
  pi0          the real-size pi0 on the CPU: build/save/load, a chunk through the graph, weight sync at 7 GB
               (see `pi0_bench.py`; needs 16 GB of free memory, not part of `all`)
  hold         how much of the policy's time the robot waits for a chunk, per chunk schedule, from real `hiors up`
               runs in turns (see `hold_bench.py`; minutes of the whole graph, not part of `all`)

Sizes: `small` (default, CPU minutes), `full` (`--full`, longer runs for a quiet or GPU machine), `tiny` (tests).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiors_core.errors import ConfigError

from .bench_table import bench_command, format_table, median, ratio, write_figure, write_provenance

MICRO = ("plumbing", "recording", "async", "weight_sync", "sim")


@dataclass(frozen=True)
class MicroSize:
    plumbing_chunks: int
    recording_frames: int  # per offered rate
    recording_multiples: tuple[float, ...]  # offered rates as multiples of the sensor rate
    recording_repeats: int  # sweeps over the rates; each rate reports its median sweep
    async_rounds: int
    async_seconds: float  # robot seconds collected per round (real time)
    weight_versions: int  # per path
    sim_seconds: float


SIZES = {
    "tiny": MicroSize(3, 12, (1.0, 8.0), 1, 1, 0.5, 1, 0.5),
    "small": MicroSize(20, 60, (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), 3, 3, 2.0, 4, 3.0),
    "full": MicroSize(60, 250, (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), 5, 6, 4.0, 10, 8.0),
}

Figure = tuple[list[dict], list[str], tuple[str, str]]  # rows, CSV columns, (bar label column, bar value column)


# --- plumbing -----------------------------------------------------------------------------------------------------
def bench_plumbing(size: MicroSize) -> Figure:
    from hiors_bench.plumbing_bench import run

    r = run(n=size.plumbing_chunks)
    row = {
        "model": r["model"],
        "chunks": r["n"],
        "direct_ms": 1e3 * r["direct_infer_median_s"],
        "graph_ms": 1e3 * r["graph_median_s"],
        "overhead_ms": 1e3 * r["graph_overhead_s"],
        # per chunk, round trip minus the node's own inference of it: the graph's fixed cost, as pi0_chunk reports it
        "graph_minus_node_inference_ms": 1e3 * r["graph_minus_node_inference_s"],
        "graph_over_direct": ratio(r["graph_median_s"], r["direct_infer_median_s"]),
    }
    return [row], list(row), ("model", "graph_over_direct")


# --- recording ----------------------------------------------------------------------------------------------------
SENSOR_HZ = 25.0  # f_high: a sample every control step of the twins (tora_one, xtrainer) while the human drives
CAMERAS = ("top", "left_wrist")


def _bench_images(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for c in CAMERAS}


def median_row(rows: list[dict], key: str) -> dict:
    """The row holding the median of `key` (the lower one of the middle two), and how many rows there were: every
    column of the result comes from the same measurement (pure)."""
    if not rows:
        raise ValueError("no measurements")
    ranked = sorted(rows, key=lambda r: r[key])
    return {**ranked[(len(ranked) - 1) // 2], "repeats": len(rows)}


def recording_row(
    label: str, offered_hz: float, frames_offered: int, frames_written: int, fresh: int, wall_s: float, frame_bytes: int
) -> dict:
    """One row of the recording figure (pure). Achieved rate = distinct observations on disk per second (a frame
    recorded twice because its successor never arrived does not count twice), against the offered and the
    sensor rate."""
    achieved = ratio(fresh, wall_s)
    return {
        "offered": label,
        "offered_hz": offered_hz,
        "frames": frames_written,
        "achieved_hz": achieved,
        "achieved_over_offered": ratio(achieved, offered_hz),
        "fresh_fraction": ratio(fresh, frames_offered),
        "achieved_over_sensor": ratio(achieved, SENSOR_HZ),
        "MB_per_s": achieved * frame_bytes / 1e6,
    }


def _writer_ceiling(frames: int, images: dict, state: np.ndarray) -> dict:
    """The episode-log writer alone (no DDS, no node): the storage path's ceiling."""
    import tempfile

    from hiors_core.episode_log import EpisodeLog
    from hiors_core.robots import MODE_EE_POSE
    from hiors_core.schema import AUTHORITY_HUMAN, EpisodeMeta, Executed, Frame

    names = tuple(f"s{i}" for i in range(state.size))
    with tempfile.TemporaryDirectory() as d:
        meta = EpisodeMeta(
            "bench-000000",
            "tora_one",
            "raise_hand",
            "raise the left hand",
            MODE_EE_POSE,
            tuple(f"a{i}" for i in range(8)),
            names,
            CAMERAS,
            SENSOR_HZ,
        )
        writer = EpisodeLog(d).open_writer(meta)
        t0 = time.perf_counter()
        for k in range(frames):
            stamp = k * int(1e9 / SENSOR_HZ)
            writer.write_frame(Frame(k, stamp, images, state, names, meta.instruction, k))
            writer.write_executed(Executed(k, stamp, np.zeros(8, np.float32), AUTHORITY_HUMAN, "bench", 0, False, True))
        writer.close()
        wall = time.perf_counter() - t0
    frame_bytes = sum(im.nbytes for im in images.values())
    return recording_row("writer only", frames / wall, frames, frames, frames, wall, frame_bytes)


def _drive_recorder(rec, obs_pub, exec_pub, images, state, frames: int, rate_hz: float, seq0: int) -> dict:
    """One episode: `frames` observations, each followed by a sampled command, offered at `rate_hz` (as far as
    this thread can publish that fast: the offered rate is the one measured). Time runs from the first publish
    until the recorder's writer has taken the last frame off its queue; the frames on disk and the distinct
    observations among them come from the bag."""
    from hiors_core.convert_ros import image_msg, time_msg
    from hiors_core.episode_log import EpisodeLog
    from hiors_core.schema import AUTHORITY_HUMAN, Label
    from hiors_msgs.msg import ExecutedCommand, Observation
    from hiors_testing.ros import wait_for

    ok, eid, why = rec.start(task="raise_hand", instruction="bench")
    if not ok:
        raise RuntimeError(f"recorder refused to start an episode: {why}")
    step0 = rec.step
    obs = Observation(robot="tora_one", task="raise_hand", instruction="bench", camera_names=list(images))
    obs.images = [image_msg(im, 0, c) for c, im in images.items()]
    obs.state_names = [f"s{i}" for i in range(state.size)]
    obs.state = state.tolist()
    cmd = ExecutedCommand(
        episode_id=eid,
        authority=AUTHORITY_HUMAN,
        source="bench",
        action_names=[f"a{i}" for i in range(8)],
        action=[0.0] * 8,
        is_sample=True,
    )
    period = 1.0 / rate_hz
    base_ns = time.time_ns()
    t0 = time.perf_counter()
    for k in range(frames):
        delay = t0 + k * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        stamp = base_ns + k * 1_000_000
        obs.header.stamp = time_msg(stamp)
        obs.sequence = seq0 + k
        obs_pub.publish(obs)
        cmd.header.stamp = time_msg(stamp + 1)
        cmd.step = k
        exec_pub.publish(cmd)
    offered_wall = time.perf_counter() - t0
    # Every command handled (reliable; or none more for 2 s), then the writer done with the frames: a no-op job
    # queued behind them has been taken off the queue.
    last = [-1, time.monotonic()]

    def commands_in() -> bool:
        n = rec.step - step0
        if n != last[0]:
            last[:] = [n, time.monotonic()]
        return n >= frames or time.monotonic() - last[1] > 2.0

    wait_for(commands_in, 120, f"{frames} sampled commands at the recorder")
    rec.jobs.put(("ack", ""))
    wait_for(lambda: rec.jobs.qsize() == 0, 120, "recorder writer drained")
    wall = time.perf_counter() - t0
    rec.end(Label(reward=1.0, success=True, source="bench", stamp_ns=time.time_ns()))
    wait_for(lambda: eid in rec.published, 120, f"episode {eid} closed")
    data = EpisodeLog(rec.log.root).read(eid)
    fresh = len({f.sequence for f in data.frames})
    offered_hz = frames / offered_wall
    label = f"{rate_hz / SENSOR_HZ:g}x"
    frame_bytes = sum(im.nbytes for im in images.values())
    return recording_row(label, offered_hz, frames, len(data.frames), fresh, wall, frame_bytes)


def bench_recording(size: MicroSize) -> Figure:
    import tempfile

    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from hiors_core import topics
    from hiors_msgs.msg import ExecutedCommand, Observation
    from hiors_teleop.recorder import Recorder
    from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

    images, state = _bench_images(), np.random.default_rng(1).normal(size=15).astype(np.float32)
    rows = []
    with ros_context() as ctx, tempfile.TemporaryDirectory() as d:
        rec = Recorder(
            context=ctx,
            parameter_overrides=[
                Parameter("log_dir", value=d),
                Parameter("horizon", value=16),
                Parameter("resend_period_s", value=0.0),
            ],
        )
        rig = Node("recording_bench_rig", context=ctx)
        obs_pub = rig.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, "recorder"))
        exec_pub = rig.create_publisher(ExecutedCommand, topics.EXECUTED, topics.qos(topics.EXECUTED, "recorder"))
        try:
            with spinning([rec, rig], context=ctx):
                for pub in (obs_pub, exec_pub):
                    wait_for_subscribers(pub)
                    wait_for(lambda p=pub: rec.count_publishers(p.topic_name) >= 1, what="recorder sees publishers")
                _drive_recorder(rec, obs_pub, exec_pub, images, state, 30, 2 * SENSOR_HZ, 0)  # warm-up
                seq = 100
                sweeps = {m: [] for m in size.recording_multiples}
                for _ in range(size.recording_repeats):  # whole sweeps, so that load spikes spread over the rates
                    for m in size.recording_multiples:
                        sweeps[m].append(
                            _drive_recorder(
                                rec, obs_pub, exec_pub, images, state, size.recording_frames, m * SENSOR_HZ, seq
                            )
                        )
                        seq += size.recording_frames
                rows = [median_row(runs, "achieved_over_offered") for runs in sweeps.values()]
                for r in rows:
                    r["offered"] = f"node {r['offered']}"
        finally:
            rec.shutdown()
            rec.destroy_node()
            rig.destroy_node()
    rows.append(_writer_ceiling(max(size.recording_frames, 20), images, state) | {"repeats": 1})
    return rows, list(rows[0]), ("offered", "achieved_over_offered")


# --- async --------------------------------------------------------------------------------------------------------
def _rollout(env, policy, names, limits, k_auto: int, seconds: float, on_sample=None) -> int:
    """Collect `seconds` of robot time with the policy driving (what the actor does while the learner trains):
    k_auto actions of each chunk through the arbiter's limits, one training sample per chunk (f_low). Paced at
    real time, as a robot is (the twin alone would run many times faster and only compete for the CPU)."""
    from hiors_policy.policy import PolicyInput
    from hiors_sim.policy_view import policy_state
    from hiors_teleop.safety import make_safe

    steps, samples, total = 0, 0, int(round(seconds / env.control_dt))
    prev = np.asarray(env.commanded_action(), dtype=np.float64)
    t0 = time.perf_counter()
    while steps < total:
        ahead = t0 + steps * env.control_dt - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        obs = PolicyInput(env.render(size=(224, 224)), policy_state(env, names), env.task.instruction, names)
        samples += 1
        if on_sample is not None:
            on_sample()
        for a in policy.infer(obs)[:k_auto]:
            prev = make_safe(a, prev, limits).action
            steps += 1
            if env.step(prev).done:
                env.reset(seed=steps)
                prev = np.asarray(env.commanded_action(), dtype=np.float64)
                break
    return samples


class _Trainer(threading.Thread):
    """The learner's loop in a thread of its own (in both modes, so that the thread layout is not what differs):
    train until stopped; with a pacer, only while it allows (the learner node's UTDPacer), else wait for data."""

    def __init__(self, train_step, pacer=None, until_paced: bool = False):
        super().__init__(daemon=True)
        self.train_step, self.pacer = train_step, pacer
        self.until_paced = until_paced  # stop by itself once the pacer allows no more (the target reached)
        self.stop = threading.Event()
        self.steps = 0

    def run(self) -> None:
        while not self.stop.is_set():
            if self.pacer is not None and not self.pacer.may_train(time.monotonic()):
                if self.until_paced:
                    return
                self.stop.wait(0.002)
                continue
            self.train_step()
            self.steps += 1
            if self.pacer is not None:
                self.pacer.on_step()


def bench_async(size: MicroSize, utd_targets: tuple[float, ...] = (1.0, 16.0)) -> Figure:
    """Unpaced: sync (collect a round, then train as long as that took) vs async (train while collecting).
    Paced at each UTD target (gradient steps per received sample, as the paper counts it) with the learner's
    UTDPacer, the same work in both modes (train up to the target on the round's data): wall time, and how close
    the async learner stays to the target while data arrives. The targets: one the learner holds easily here (the
    paper's natural UTD of about 1), one near what the tiny pi0's learner manages on 2 cores."""
    import torch

    from hiors_learner.pacing import UTDPacer, utd
    from hiors_policy.checkpoint import build_tiny_policy
    from hiors_policy.layout import state_layout
    from hiors_sim.env import SimRobot
    from hiors_teleop.safety import Limits, layout_for

    robot, task, batch_size, k_auto = "tora_one", "raise_hand", 8, 12
    actor, learner = build_tiny_policy(robot, task, seed=0), build_tiny_policy(robot, task, seed=1)
    rng = np.random.default_rng(0)
    samples = [
        {
            "images": {c: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for c in learner.config.camera_names},
            "state": rng.normal(size=learner.state_dim).astype(np.float32),
            "action_label": rng.normal(size=(learner.horizon, learner.action_dim)).astype(np.float32),
            "instruction": "",
        }
        for _ in range(batch_size)
    ]
    batch = learner.collate(samples)
    opt = torch.optim.AdamW(learner.model.parameters(), lr=1e-4)

    def train_step():
        opt.zero_grad()
        learner.loss(batch).mean().backward()
        opt.step()

    env = SimRobot(robot, task)
    names = state_layout(robot, task)
    limits = Limits.for_robot(env.spec, layout_for(env.spec, "ee", env.task.arm))

    def collect(k: int, on_sample=None) -> int:
        env.reset(seed=k)
        torch.manual_seed(k)
        return _rollout(env, actor, names, limits, k_auto, size.async_seconds, on_sample)

    # warm-up (first step, first render, first inference) outside the timing
    warm = _Trainer(train_step)
    warm.start()
    collect(100)
    warm.stop.set()
    warm.join()

    modes = [("sync", 0.0), ("async", 0.0)] + [(f"{m}_utd{t:g}", t) for t in utd_targets for m in ("sync", "async")]
    acc = {m: {"wall_s": 0.0, "collect_wall_s": 0.0, "learner_steps": 0, "samples": 0, "target": t} for m, t in modes}
    online = {m: [] for m, _ in modes}  # async paced: UTD achieved when a round's collection ends, over the target
    for k in range(size.async_rounds):
        # Rounds run every mode from the same start (seed), so that load drift on a shared machine hits all.
        for mode, target in modes:
            pacer = UTDPacer(target, target, idle_after_s=1e9) if target else None
            pacer_data = (lambda p=pacer: p.on_data(1, time.monotonic())) if pacer else None
            tr = _Trainer(train_step, pacer, until_paced=bool(pacer) and mode.startswith("sync"))
            t0 = time.perf_counter()
            if mode.startswith("async"):
                tr.start()
                n = collect(k, pacer_data)
                collect_wall = time.perf_counter() - t0
                if pacer:  # then the rest of the same work: train up to the target on this round's data
                    online[mode].append(ratio(utd(tr.steps, n), target))
                    tr.until_paced = True
                else:
                    tr.stop.set()
                tr.join()
            else:
                n = collect(k, pacer_data)
                collect_wall = time.perf_counter() - t0
                tr.start()
                if pacer:
                    tr.join()  # until the target is reached: the same work as the async mode at that target
                else:
                    time.sleep(collect_wall)  # train as long as collection took
                    tr.stop.set()
                    tr.join()
            a = acc[mode]
            a["wall_s"] += time.perf_counter() - t0
            a["collect_wall_s"] += collect_wall
            a["learner_steps"] += tr.steps
            a["samples"] += n
    env.close()
    for mode, ratios in online.items():
        if ratios:
            acc[mode]["online_over_target"] = median(ratios)
    return async_rows(acc)


def async_rows(acc: dict) -> Figure:
    """The async figure's rows (pure) from per-mode totals: mode -> wall_s, collect_wall_s, learner_steps, samples,
    target (UTD target in gradient steps per sample, 0 = unpaced) and, for async paced modes, online_over_target.
    Each mode is compared with the sync mode at the same target."""
    from hiors_learner.pacing import utd

    rows = []
    for mode, a in acc.items():
        target = a["target"]
        achieved = utd(a["learner_steps"], a["samples"])
        rows.append(
            {
                "mode": mode,
                "wall_s": a["wall_s"],
                "collect_wall_s": a["collect_wall_s"],
                "learner_steps": a["learner_steps"],
                "samples": a["samples"],
                "steps_per_s": ratio(a["learner_steps"], a["wall_s"]),
                "utd_target": target or "",
                "utd_achieved": achieved,
                "utd_over_target": ratio(achieved, target) if target else "",
                "utd_online_over_target": a.get("online_over_target", ""),
            }
        )
    sync = {acc[r["mode"]]["target"]: r for r in rows if r["mode"].startswith("sync")}
    for r in rows:
        base = sync[acc[r["mode"]]["target"]]
        r["steps_per_s_over_sync"] = ratio(r["steps_per_s"], base["steps_per_s"]) if base["steps_per_s"] else ""
        r["wall_over_sync"] = ratio(r["wall_s"], base["wall_s"])
    return rows, list(rows[0]), ("mode", "steps_per_s")


# --- weight sync --------------------------------------------------------------------------------------------------
def bench_weight_sync(size: MicroSize) -> Figure:
    import tempfile

    from rclpy.node import Node

    from hiors_core import topics
    from hiors_core.weight_sync import weight_messages, write_atomic
    from hiors_msgs.msg import PolicyUpdate, PolicyWeights
    from hiors_policy.checkpoint import build_tiny_policy
    from hiors_policy.policy_node import PolicyNode
    from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

    policy, other = (
        build_tiny_policy("tora_one", "raise_hand", seed=0),
        build_tiny_policy("tora_one", "raise_hand", seed=3),
    )
    n = size.weight_versions
    ser = []
    for _ in range(n + 1):
        t0 = time.perf_counter()
        blob = other.to_safetensors_bytes()
        ser.append(time.perf_counter() - t0)
    ser = ser[1:]  # the first includes one-off allocation
    _, parts0 = weight_messages(blob, 0, 0)
    topic_s, disk_s = [], []
    with ros_context() as ctx, tempfile.TemporaryDirectory() as d:
        node = PolicyNode(policy=policy, context=ctx)
        probe = Node("weight_bench_probe", context=ctx)
        # The learner node's publishers: latched PolicyUpdate, PolicyWeights with one version's chunks of history.
        up = probe.create_publisher(PolicyUpdate, topics.POLICY_UPDATE, topics.qos(topics.POLICY_UPDATE))
        w = probe.create_publisher(
            PolicyWeights, topics.POLICY_WEIGHTS, topics.qos(topics.POLICY_WEIGHTS, depth=len(parts0))
        )
        try:
            with spinning([node, probe], context=ctx):
                wait_for_subscribers(up)
                wait_for_subscribers(w)
                version = 0
                for k in range(n + 1):
                    for path in ("", "disk"):
                        version += 1
                        t0 = time.perf_counter()
                        if path:  # what the learner does with local_weights: write the file, announce its path
                            p = write_atomic(Path(d) / f"policy-v{version:08d}.safetensors", blob)
                            update, parts = weight_messages(blob, version, version, path=str(p))
                            parts = []
                        else:
                            update, parts = weight_messages(blob, version, version)
                        up.publish(update)
                        for m in parts:
                            w.publish(m)
                        wait_for(lambda v=version: node.version == v, 60, f"version {version} swapped in")
                        if k:  # round 0 is a warm-up
                            (disk_s if path else topic_s).append(time.perf_counter() - t0)
        finally:
            node.destroy_node()
            probe.destroy_node()
    return weight_rows(len(blob), median(ser), median(topic_s), median(disk_s), n)


def weight_rows(nbytes: int, serialise_s: float, topic_s: float, disk_s: float, versions: int) -> Figure:
    """The weight_sync figure's rows (pure) from median times."""
    rows = [
        {
            "path": path,
            "MB": nbytes / 1e6,
            "versions": versions,
            "median_ms": 1e3 * s,
            "over_serialise": ratio(s, serialise_s),
        }
        for path, s in (("serialise only", serialise_s), ("topic chunks", topic_s), ("shared disk", disk_s))
    ]
    return rows, list(rows[0]), ("path", "over_serialise")


# --- sim ----------------------------------------------------------------------------------------------------------
def bench_sim(size: MicroSize) -> Figure:
    from hiors_bench.sim_bench import run

    rows = run(seconds=size.sim_seconds)
    for r in rows:  # rendering vs what real time asks of it: camera_rate_hz frame pairs per second
        r["render_over_camera_rate"] = ratio(r["render_pairs_per_s"], r["camera_rate_hz"])
    return rows, list(rows[0]), ("robot", "loop_rtf")


# --- hold ---------------------------------------------------------------------------------------------------------
def bench_hold(size: MicroSize) -> Figure:
    from hiors_bench.hold_bench import figure

    return figure(next(name for name, s in SIZES.items() if s is size))


FIGURES = {
    "plumbing": bench_plumbing,
    "recording": bench_recording,
    "async": bench_async,
    "weight_sync": bench_weight_sync,
    "sim": bench_sim,
    "hold": bench_hold,
}


def run_bench(
    which: str,
    run_dir: str | Path,
    full: bool = False,
    size: str = "",
    variants: tuple[str, ...] = (),
    seeds: tuple[int, ...] = (),
    tasks: tuple[str, ...] = (),
    camera_only: bool = False,
) -> int:
    """`which`: a figure, `all` (the micro benchmarks), `paper` or `learning` (optionally only `variants`, at
    `seeds`; `learning` also only `tasks`, and `camera_only`).
    `size`: tiny/small/full (default: full with `full`, else small)."""
    out = Path(run_dir)
    size = size or ("full" if full else "small")
    command = bench_command(which, run_dir, full, size, variants, seeds, tasks, camera_only)
    if which == "paper":
        from .paper_bench import run_paper

        return run_paper(out, full=full, variants=variants, seeds=seeds, command=command)
    if which == "pi0":
        from .pi0_bench import run_pi0

        return run_pi0(out, command)
    if which == "learning":
        from .learning_bench import run_learning

        return run_learning(
            out, full=full, seeds=seeds, variants=variants, tasks=tasks, camera_only=camera_only, command=command
        )
    if variants or seeds:
        raise ConfigError("--variants and --seeds are for `hiors bench paper` and `hiors bench learning`")
    if tasks or camera_only:
        raise ConfigError("--tasks and --camera-only are for `hiors bench learning`")
    if size not in SIZES:
        raise ConfigError(f"unknown bench size {size!r}; known: {', '.join(SIZES)}")
    names = MICRO if which == "all" else (which,)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ConfigError(f"unknown benchmark {unknown[0]!r}; known: all, {', '.join(FIGURES)}, paper, learning, pi0")
    tables = []
    for name in names:
        t0, load = time.perf_counter(), os.getloadavg()[0]
        rows, columns, bar = FIGURES[name](SIZES[size])
        files = write_figure(out, name, rows, columns, bar)
        files.append(write_provenance(out, name, command, time.perf_counter() - t0, load))
        table = f"== {name} ({size}, {time.perf_counter() - t0:.0f} s)\n{format_table(rows, columns)}"
        print(f"\n{table}\nwritten: " + ", ".join(str(f) for f in files), flush=True)
        tables.append(table)
    if len(tables) > 1:
        print("\n\n" + "\n\n".join(tables))
    return 0
