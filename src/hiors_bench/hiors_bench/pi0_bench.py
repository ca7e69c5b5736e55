"""`hiors bench pi0`: the real-size pi0 (random weights, bfloat16, 3.5 B parameters, 7 GB) on this machine's CPU,
through the paths a real checkpoint takes. Not in `all` and not in CI: it needs about 16 GB of free memory and
tens of minutes on 2 cores. Three tables, side by side in one run:

  pi0_load          build (random init, built in bfloat16), save (streamed), load (project layout, meta device +
                    assignment): seconds and peak memory against the model's size
  pi0_chunk         one chunk through a live policy node vs a direct `infer`, two 224x224 cameras; the graph's cost
                    per chunk (round trip minus the node's own inference time for that chunk)
  pi0_weight_sync   publish-to-swap at a live, inferring policy node over the shared-disk path vs plain safetensors
                    serialisation (`save_file`) of the same weights, interleaved, with the node's weight loader at
                    its own priority and below it (`weights_loader_nice`); the node's peak memory during a swap,
                    the longest gap in its chunks while a transfer runs (against its inference when none runs),
                    the longest stall (a gap minus the inference inside it) and how much the transfer slowed
                    inference; the topic path at this size
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from hiors_core.errors import ConfigError

from .bench_table import format_table, ratio, write_figure, write_provenance

GB = 1e9
NEEDS_FREE_GIB = 16  # model (7 GB) + a verified copy during a swap (7 GB) + ROS, torch and the probe
PAPER_GPU_CHUNK_S = 0.160  # the paper's pi0 inference per chunk on a GPU, for the graph overhead's share
LOADER_NICE = (0, 10)  # the weight loader at the node's priority, and below it (policy param weights_loader_nice)


class PeakRSS:
    """The process's peak resident memory while the block runs, sampled every `period_s` by a thread: `rss` (all
    resident pages, including file pages mapped in, such as a memory-mapped checkpoint) and `anon` (rss minus
    shared pages: the process's own memory)."""

    def __init__(self, period_s: float = 0.02):
        import psutil

        self.proc, self.period_s = psutil.Process(), period_s
        self.rss = self.anon = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        m = self.proc.memory_info()
        self.rss, self.anon = max(self.rss, m.rss), max(self.anon, m.rss - m.shared)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def __enter__(self) -> PeakRSS:
        self._sample()
        self.t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self._sample()


def check_memory(need_gib: float = NEEDS_FREE_GIB, wait_s: float = 0.0) -> float:
    """Available memory in GiB, waiting up to `wait_s` for `need_gib`; ConfigError if it never comes (the run would
    push other processes on this machine out of memory)."""
    import psutil

    deadline = time.monotonic() + wait_s
    while True:
        free = psutil.virtual_memory().available / 2**30
        if free >= need_gib:
            return free
        if time.monotonic() >= deadline:
            raise ConfigError(f"hiors bench pi0 needs {need_gib} GiB of available memory, {free:.1f} GiB are")
        time.sleep(60)


def _release() -> None:
    from hiors_core.weight_sync import trim_heap

    gc.collect()
    trim_heap()


def load_row(step: str, m: PeakRSS, model_bytes: int, base_anon: int) -> dict:
    """One row of pi0_load (pure): the step's peak above the process's memory before the model existed."""
    own = m.anon - base_anon
    return {
        "step": step,
        "seconds": m.seconds,
        "model_GB": model_bytes / GB,
        "peak_rss_GB": m.rss / GB,
        "peak_own_GB": own / GB,
        "peak_own_over_model": ratio(own, model_bytes),
    }


def chunk_gaps(arrivals: list[float], start: float, end: float) -> float:
    """The longest interval between consecutive chunks that overlaps [start, end], counting the wait from the last
    chunk before `end` to `end` if none came after it (pure)."""
    times = sorted(arrivals)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > start and a < end]
    before = [t for t in times if t < end]
    if before and not any(t >= end for t in times):
        gaps.append(end - before[-1])
    return max(gaps, default=end - start)


def chunk_stalls(chunks: list[tuple[float, float]], start: float, end: float) -> float:
    """The longest time the actor spent not inferring around [start, end] (pure): for consecutive chunks whose
    interval overlaps it, the interval minus the later chunk's own inference latency (0 when none)."""
    cs = sorted(chunks)
    return max(
        (max(0.0, b - a - lat) for (a, _), (b, lat) in zip(cs, cs[1:], strict=False) if b > start and a < end),
        default=0.0,
    )


def split_latencies(chunks: list[tuple[float, float]], windows: list[tuple[float, float]]):
    """(latencies of inferences that overlapped no transfer, of those that overlapped one) (pure)."""
    quiet, busy = [], []
    for t, lat in chunks:
        (busy if any(t - lat < e and t > s for s, e in windows) else quiet).append(lat)
    return quiet, busy


def sync_rows(model_bytes: int, base_anon: int, transfers: list[dict], chunks, topic_note: str) -> list[dict]:
    """The pi0_weight_sync rows (pure). `transfers`: one dict each (measure_sync): loader `nice`; the save_file
    before it (`serialise_s`, `serialise_peak` anon bytes, `serialise_at` (start, end)); the transfer: `t0` (the
    learner starts writing), `t_written`, `fsync_s` (its flush, not counted), `t_announced` (after the next chunk:
    the wait is not counted), `t1`
    (swapped in), `peak` anon bytes, and the node's `load_s` (read and check), `swap_wait_s` (wait for the
    chunk in progress) and `swap_s` (the swap itself, between two chunks). `chunks`: (arrival, the node's
    inference latency) of every chunk. A transfer takes its write plus announce-to-swap; times over serialisation
    are medians of each transfer over the save_file just before it, also without the wait for the chunk in
    progress (up to one inference: 10-30 s on this CPU, a fraction of a second on a GPU). Gaps, stalls and slowdown are read from announce to swap (in a deployment the learner writes on its
    own machine) against the median inference that overlapped neither a transfer nor a save_file (the actor's own
    pace)."""
    med = statistics.median
    quiet, _ = split_latencies(chunks, [t["serialise_at"] for t in transfers] + [(t["t0"], t["t1"]) for t in transfers])
    inference_s = med(quiet or [lat for _, lat in chunks] or [0.0])
    arrivals = [t for t, _ in chunks]
    rows = [
        {
            "path": "serialise only (save_file)",
            "GB": model_bytes / GB,
            "versions": len(transfers),
            "median_s": med(t["serialise_s"] for t in transfers),
            "over_serialise": 1.0,
            "peak_own_over_model": ratio(max(t["serialise_peak"] for t in transfers) - base_anon, model_bytes),
            "note": "safetensors save_file of the same weights, before each transfer",
        }
    ]
    for nice in sorted({t["nice"] for t in transfers}):
        ts = [t for t in transfers if t["nice"] == nice]
        node_at = [(t["t_announced"], t["t1"]) for t in ts]
        total = [t["t_written"] - t["t0"] + t["t1"] - t["t_announced"] for t in ts]
        _, busy = split_latencies(chunks, node_at)
        gap = max(chunk_gaps(arrivals, s, e) for s, e in node_at)
        rows.append(
            {
                "path": f"shared disk, loader nice {nice}",
                "GB": model_bytes / GB,
                "versions": len(ts),
                "median_s": med(total),
                "over_serialise": med(s / t["serialise_s"] for s, t in zip(total, ts, strict=True)),
                "over_serialise_without_wait": med(
                    (s - t["swap_wait_s"]) / t["serialise_s"] for s, t in zip(total, ts, strict=True)
                ),
                "write_s": med(t["t_written"] - t["t0"] for t in ts),
                "fsync_s": med(t.get("fsync_s", 0.0) for t in ts),
                "load_s": med(t["load_s"] for t in ts),
                "swap_wait_s": med(t["swap_wait_s"] for t in ts),
                "swap_s": med(t.get("swap_s", 0.0) for t in ts),
                "read_check_over_serialise": med(t["load_s"] / t["serialise_s"] for t in ts),
                "peak_own_over_model": ratio(max(t["peak"] for t in ts) - base_anon, model_bytes),
                "longest_chunk_gap_s": gap,
                "gap_over_inference": ratio(gap, inference_s),
                "longest_stall_s": max(chunk_stalls(chunks, s, e) for s, e in node_at),
                "inference_slowdown": ratio(med(busy), inference_s) if busy else "",
                "note": "streamed write + announce + streamed verified read + swap",
            }
        )
    rows.append({"path": "topic chunks", "GB": model_bytes / GB, "versions": 0, "note": topic_note})
    columns = [
        "path", "GB", "versions", "median_s", "over_serialise", "over_serialise_without_wait", "write_s", "fsync_s", "load_s", "swap_wait_s", "swap_s",
        "read_check_over_serialise", "peak_own_over_model", "longest_chunk_gap_s", "gap_over_inference",
        "longest_stall_s", "inference_slowdown", "note",
    ]  # fmt: skip
    return [{c: r.get(c, "") for c in columns} for r in rows]


TOPIC_NOTE = (
    "not carried at this size: the learner would hold the blob, its chunk messages and DDS's transient-local "
    "history (3 more copies of the weights); above weight_sync.MAX_TOPIC_BYTES a version with a path goes by the file alone"
)


def measure_sync(policy, obs, d: Path, versions: int, loader_nice: tuple[int, ...]):
    """Weight sync at a live policy node that infers all along (a new observation for every chunk): `versions`
    rounds, each a transfer at every loader niceness in turn (a node each: its weight thread takes its niceness as
    it starts, and alternating keeps the machine's changing load out of the comparison), each transfer after a
    save_file of the same weights. Returns sync_rows' transfers and chunks."""
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from safetensors.torch import save_file

    from hiors_core import topics
    from hiors_msgs.msg import ActionChunk, Observation, PolicyUpdate
    from hiors_policy.policy_node import PolicyNode
    from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

    transfers: list[dict] = []
    chunks: list[tuple[float, float]] = []  # (arrival, the node's inference latency for it), every node's
    with ros_context() as ctx:
        probe = Node("pi0_bench_probe", context=ctx)
        obs_pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION))
        feeding = threading.Event()  # cleared before a node is destroyed: no inference is then left running

        def next_observation(msg=None):
            now = time.perf_counter()
            if feeding.is_set():
                obs.sequence += 1
                obs_pub.publish(obs)
            if msg is not None:  # counted once the next observation is out: next_chunk's callers rely on it
                chunks.append((now, msg.inference_latency))

        def next_chunk(what: str) -> None:
            n = len(chunks)
            wait_for(lambda: len(chunks) > n, 1800, what)

        def transfer(version: int, nice: int, node, up) -> dict:
            """A save_file, then one version from the learner's write to the node's swap, at a node that infers."""
            wait_for_subscribers(obs_pub, timeout=60)
            wait_for_subscribers(up, timeout=60)
            feeding.set()
            next_observation()
            next_chunk("the first chunk")
            with PeakRSS() as base:  # the baseline, under the same inference load
                save_file(policy.model.state_dict(), str(d / "plain.safetensors"))
            (d / "plain.safetensors").unlink()
            _release()
            path = d / f"policy-v{version:08d}.safetensors"
            with PeakRSS() as m:  # what the learner does at this size, then the node's part
                t0 = time.perf_counter()
                sha, size = policy.write_weights_file(path, durable=False)
                t_written = time.perf_counter()
                # In a deployment the learner writes on its own machine, and durably (fsync) before it announces:
                # flushed here too, so that 7 GB of dirty pages do not compete with the node's read for this
                # machine's memory. Not counted against save_file (it does not flush either); the node's part
                # starts with a chunk the write did not slow down.
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
                t_flushed = time.perf_counter()
                next_chunk("a chunk after the write")
                t_announced = time.perf_counter()
                up.publish(
                    PolicyUpdate(version=version, learner_step=version, sha256=sha, total_bytes=size, path=str(path))
                )
                wait_for(lambda: node.version == version, 1800, f"version {version}")
                t1 = time.perf_counter()
            next_chunk("a chunk after the swap")
            feeding.clear()
            next_chunk("the chunk in flight")
            print(
                f"loader nice {nice}, version {version}: save_file {base.seconds:.1f} s, "
                f"write {t_written - t0:.1f} s, announce to swap {t1 - t_announced:.1f} s, "
                f"gap {chunk_gaps([c[0] for c in chunks], t_announced, t1):.1f} s",
                flush=True,
            )
            path.unlink()
            _release()
            return {
                "nice": nice,
                "serialise_s": base.seconds,
                "serialise_peak": base.anon,
                "serialise_at": (base.t0, base.t0 + base.seconds),
                "t0": t0,
                "t_written": t_written,
                "fsync_s": t_flushed - t_written,
                "t_announced": t_announced,
                "t1": t1,
                "peak": m.anon,
                **node.weight_timing,
            }

        probe.create_subscription(ActionChunk, topics.ACTION_CHUNK, next_observation, topics.qos(topics.ACTION_CHUNK))
        try:
            with spinning([probe], context=ctx, threads=1):
                for version, nice in enumerate([n for _ in range(versions) for n in loader_nice], start=1):
                    # an announcement topic each: a new node would get the last one's latched announcement
                    topic = f"{topics.POLICY_UPDATE}_{version}"
                    up = probe.create_publisher(PolicyUpdate, topic, topics.qos(topics.POLICY_UPDATE))
                    node = PolicyNode(
                        policy=policy,
                        context=ctx,
                        parameter_overrides=[Parameter("weights_loader_nice", value=nice)],
                        cli_args=["--ros-args", "-r", f"{topics.POLICY_UPDATE}:={topic}"],
                    )
                    try:
                        with spinning([node], context=ctx, threads=1):
                            transfers.append(transfer(version, nice, node, up))
                    finally:
                        node.destroy_node()
                        probe.destroy_publisher(up)
        finally:
            probe.destroy_node()
    return transfers, chunks


def run_pi0(
    out: Path,
    command: str,
    robot: str = "tora_one",
    task: str = "raise_hand",
    versions: int = 2,
    chunks: int = 4,
    preset: str = "pi0",
    loader_nice: tuple[int, ...] = LOADER_NICE,
) -> int:
    """The three tables at `preset` (`tiny` runs the same code in seconds, for tests)."""
    import numpy as np

    from hiors_core.convert_ros import image_msg
    from hiors_msgs.msg import Observation
    from hiors_policy.checkpoint import build_policy
    from hiors_policy.policy import Pi0Policy

    from .plumbing_bench import run as plumbing

    # A domain of its own, as the tests have: another graph on this machine (hiors up, a test run) would otherwise
    # send this node its observations and weights.
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start, load_before = time.perf_counter(), os.getloadavg()[0]
    if preset == "pi0":
        free = check_memory(wait_s=600)
        print(f"pi0 bench: {free:.1f} GiB available", flush=True)
    _release()
    base = PeakRSS()
    base._sample()
    base_anon = base.anon
    rows = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".pi0-") as d:
        d = Path(d)
        with PeakRSS() as m:
            policy = build_policy(robot, task, preset, dtype="bfloat16" if preset == "pi0" else None)
        dtype = str(policy.dtype).removeprefix("torch.")
        model_bytes = sum(t.numel() * t.element_size() for t in policy.model.state_dict().values())
        rows.append(load_row(f"build (random init, {dtype})", m, model_bytes, base_anon))
        print(format_table(rows[-1:], list(rows[0])), flush=True)
        with PeakRSS() as m:
            policy.save(d / "ckpt")
        rows.append(load_row("save (project layout, streamed)", m, model_bytes, base_anon))
        print(format_table(rows[-1:], list(rows[0])), flush=True)
        del policy
        _release()
        with PeakRSS() as m:
            policy = Pi0Policy.load(d / "ckpt")
        rows.append(load_row("load (meta device + assignment)", m, model_bytes, base_anon))
        print(format_table(rows[-1:], list(rows[0])), flush=True)
        (d / "ckpt" / "model.safetensors").unlink()

        pl = plumbing(robot, task, n=chunks, warmup=1, policy=policy)
        over_s = pl["graph_minus_node_inference_s"]
        chunk_rows = [
            {
                "model": f"{preset} ({dtype}, CPU)",
                "cameras": pl["cameras"],
                "chunks": pl["n"],
                "direct_s": pl["direct_infer_median_s"],
                "graph_s": pl["graph_median_s"],
                "graph_over_direct": pl["graph_over_direct"],
                "overhead_ms": 1e3 * over_s,
                "overhead_over_gpu_chunk": ratio(over_s, PAPER_GPU_CHUNK_S),
            }
        ]
        print(format_table(chunk_rows, list(chunk_rows[0])), flush=True)

        rng = np.random.default_rng(0)
        images = {c: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for c in policy.config.camera_names}
        obs = Observation(robot=robot, task=task, instruction=policy.config.instruction)
        obs.camera_names = list(images)
        obs.images = [image_msg(im, 0, c) for c, im in images.items()]
        obs.state_names = list(policy.config.state_names)
        obs.state = rng.normal(size=policy.state_dim).astype(np.float32).tolist()
        sync_runs = measure_sync(policy, obs, d, versions, loader_nice)
    sync = sync_rows(model_bytes, base_anon, *sync_runs, TOPIC_NOTE)
    files = []
    files += write_figure(out, "pi0_load", rows, list(rows[0]), ("step", "peak_own_over_model"))
    files += write_figure(out, "pi0_chunk", chunk_rows, list(chunk_rows[0]), ("model", "overhead_ms"))
    files += write_figure(out, "pi0_weight_sync", sync, list(sync[0]), ("path", "over_serialise"))
    files.append(write_provenance(out, "pi0", command, time.perf_counter() - t_start, load_before))
    for name, table in (("pi0_load", rows), ("pi0_chunk", chunk_rows), ("pi0_weight_sync", sync)):
        print(f"\n== {name}\n{format_table(table, list(table[0]))}")
    print("written: " + ", ".join(str(f) for f in files), flush=True)
    return 0
