"""The actor: Observation -> ActionChunk with a pi0 policy, and hot-swapping of new weights between chunks.

Callbacks only move data. A worker thread runs inference on the newest Observation (older unprocessed ones are
skipped and counted), for every observation or, with infer_on=request, when the arbiter asks for the next chunk
(chunk_request), and applies verified new weights between two chunks. A second thread decodes and checks
incoming weight blobs (sha256 by the receiver, then keys/shapes/finiteness), so a large blob never stalls inference.

Weight messages may be forged (anyone on the graph can publish): only a version swapped in raises the version floor,
the bytes waiting or held for incomplete transfers are bounded (max_weight_bytes), incomplete transfers expire, and
every refused or ignored message is counted and logged once by reason (hiors_core.weight_sync.REASONS).
"""

from __future__ import annotations

import array
import os
import threading
import time
import traceback
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from std_msgs.msg import Header

from hiors_core import topics
from hiors_core.convert import frame_from_observation, stamp_to_ns
from hiors_core.errors import BadInputError, HiorsError
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.weight_sync import (
    OVERHEAD,
    REFUSED,
    WeightReceiver,
    trim_heap,
    weight_bytes_limit,
)
from hiors_msgs.msg import ActionChunk, Observation, PolicyUpdate, PolicyWeights

from .checkpoint import make_policy
from .params import POLICY
from .policy import CheckpointError, Pi0Policy, PolicyInput


def lower_thread_priority(nice: int, logger=None) -> None:
    """Add `nice` to the calling thread's niceness (Linux keeps it per thread; threads it starts inherit it)."""
    if nice <= 0:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError) as e:  # not Linux, or refused: run at the process's priority
        if logger is not None:
            logger.warning(f"weights_loader_nice {nice} not applied: {e}")


TRIM_AFTER_BYTES = 256 << 20


def free_gradually(tensors: dict, yield_bytes: int = 64 << 20) -> int:
    """Drop the weights a swap replaced one tensor at a time, yielding the GIL after every `yield_bytes` freed:
    unmapping the real pi0's 7 GB takes about 0.4 s, all of it holding the GIL, which in one go stalls the
    inference thread (a small model is freed in one go: yielding costs more than its frees). Returns the bytes."""
    total = since_yield = 0
    while tensors:
        _, t = tensors.popitem()
        n = t.numel() * t.element_size()
        del t
        total, since_yield = total + n, since_yield + n
        if since_yield >= yield_bytes:
            time.sleep(0)
            since_yield = 0
    return total


def _kv(k, v) -> KeyValue:
    return KeyValue(key=str(k), value=str(v))


class PolicyNode(Node):
    def __init__(self, policy: Pi0Policy | None = None, **kwargs):
        super().__init__("policy", **kwargs)
        p = self.p = declare(self, POLICY)
        if p["diagnostics_period"] <= 0:
            raise HiorsError("diagnostics_period must be positive")
        if int(p["max_weight_bytes"]) < 0 or not float(p["weight_transfer_timeout_s"]) > 0:
            raise HiorsError("max_weight_bytes must be >= 0 and weight_transfer_timeout_s positive")
        if policy is None:
            policy = make_policy(str(p["checkpoint"]), device=str(p["device"]), seed=int(p["seed"]))
            if policy.load_info is not None:  # a converted lerobot / openpi checkpoint: say which copies it used
                self.get_logger().info(f"checkpoint {p['checkpoint']}: {policy.load_info.describe()}")
            if p["dtype"]:
                import torch

                policy.model.to({"float32": torch.float32, "bfloat16": torch.bfloat16}[p["dtype"]])
        if int(p["num_steps"]) > 0:
            policy.num_steps = int(p["num_steps"])
        self.policy = policy
        self.robot = str(p["robot"]) or policy.config.robot
        if self.robot != policy.config.robot:
            raise HiorsError(f"policy is for robot {policy.config.robot!r}, node configured for {self.robot!r}")
        self.version = 0
        self.on_request = p["infer_on"] == "request"
        self.stats = {
            "chunks": 0,
            "requests": 0,
            "refused_inputs": 0,
            "skipped_observations": 0,
            "weight_updates": 0,
            "weight_refusals": 0,  # every reason in weight_sync.REFUSED
            "stale_versions": 0,
            "duplicate_weights": 0,
        }
        self.last_refusal = ""
        self.last_weight_error = ""
        # The last version's (or transfer's last message's) read and check, its wait for the chunk in progress and
        # the swap itself (between two chunks)
        self.weight_timing = {"load_s": 0.0, "swap_wait_s": 0.0, "swap_s": 0.0}
        self.latencies: deque[float] = deque(maxlen=100)
        num_params = sum(t.numel() for t in policy.model.state_dict().values())
        self.max_weight_bytes = int(p["max_weight_bytes"]) or weight_bytes_limit(num_params)
        self.receiver = WeightReceiver(
            use_local_path=bool(p["use_local_weights"]),
            max_blob_bytes=self.max_weight_bytes,
            timeout_s=float(p["weight_transfer_timeout_s"]),
            floor=0,
            report=self._weight_event,
            read_file=policy.read_weights_file,  # tensors straight from the file, hashed as they are read
        )

        self._cv = threading.Condition()
        self._pending_obs: Observation | None = None
        self._requested = False  # infer_on=request: the arbiter asked and no chunk has answered yet
        self._floor_ns = 0  # the oldest observation the request takes
        self._weight_msgs: deque = deque()  # PolicyUpdate / PolicyWeights for the loader thread
        self._queued_bytes = 0  # what _weight_msgs holds (data, and OVERHEAD a message), at most 2 * max_weight_bytes
        self._trim_due = False
        self._reaper: threading.Thread | None = None  # frees the weights the last swap replaced
        self._staged: tuple[int, dict, float] | None = None  # (version, tensors, when staged)
        self._stop = False

        self.chunk_pub = self.create_publisher(ActionChunk, topics.ACTION_CHUNK, topics.qos(topics.ACTION_CHUNK))
        # What every chunk repeats, set once: _handle fills in the rest of this one message (publish copies it,
        # and only the inference thread publishes chunks).
        cfg = policy.config
        self._chunk = ActionChunk(
            control_mode=int(cfg.control_mode), action_names=list(cfg.action_names), dt=float(cfg.dt)
        )
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, topics.qos(topics.DIAGNOSTICS))
        self.create_subscription(Observation, topics.OBSERVATION, self._on_observation, topics.qos(topics.OBSERVATION))
        if self.on_request:
            self.create_subscription(Header, topics.CHUNK_REQUEST, self._on_request, topics.qos(topics.CHUNK_REQUEST))
        self.create_subscription(PolicyUpdate, topics.POLICY_UPDATE, self._on_update, topics.qos(topics.POLICY_UPDATE))
        # Transient-local: a policy node started after the learner published gets the current version's chunks.
        self.create_subscription(
            PolicyWeights, topics.POLICY_WEIGHTS, self._on_weights, topics.qos(topics.POLICY_WEIGHTS)
        )
        self.create_timer(float(p["diagnostics_period"]), self._publish_diagnostics)
        self._worker = threading.Thread(target=self._inference_loop, name="policy-inference", daemon=True)
        self._loader = threading.Thread(target=self._weights_loop, name="policy-weights", daemon=True)
        self._worker.start()
        self._loader.start()
        self.get_logger().info(
            f"policy ready: {policy.config.robot}/{policy.config.task}, H={policy.horizon}, D={policy.action_dim}, "
            f"cameras={list(policy.config.camera_names)}, steps={policy.num_steps}, device={policy.device}"
        )

    # ---------------------------------------------------------------- callbacks (move data only)
    def _on_observation(self, msg: Observation) -> None:
        with self._cv:
            if self._pending_obs is not None and not self.on_request:  # asked-for inference skips most by design
                self.stats["skipped_observations"] += 1
            self._pending_obs = msg
            self._cv.notify_all()

    def _on_request(self, msg: Header) -> None:
        """The next chunk from the newest observation not used yet (the next one to come if it was), and not older
        than the request's stamp (the arbiter would refuse a chunk from before it: the scene was reset)."""
        with self._cv:
            self.stats["requests"] += 1
            self._requested = True
            self._floor_ns = stamp_to_ns(msg.stamp)
            self._cv.notify_all()

    def _on_update(self, msg: PolicyUpdate) -> None:
        self._queue_weights(msg, len(msg.path) + len(msg.sha256))

    def _on_weights(self, msg: PolicyWeights) -> None:
        self._queue_weights(msg, len(msg.data) + len(msg.sha256))

    def _queue_weights(self, msg, size: int) -> None:
        """Reading the announced file, reassembly and the sha256 check take seconds for a real pi0: the loader
        thread does them, so that this single-threaded executor keeps taking observations meanwhile. What waits
        for it is bounded: beyond twice max_weight_bytes a message is dropped as a flood (counted, logged)."""
        cost = size + OVERHEAD
        with self._cv:
            full = self._queued_bytes + cost > 2 * self.max_weight_bytes
            if not full:
                self._weight_msgs.append((msg, cost))
                self._queued_bytes += cost
                self._cv.notify_all()
        if full:
            self.receiver.note("flood", int(msg.version), f"{self._queued_bytes} bytes of weight messages wait already")

    def _weight_event(self, reason: str, version: int, line: str | None) -> None:
        """Every refused or ignored weight message, once (from the receiver's tally; `line` None: counted only)."""
        if reason in REFUSED:
            self.stats["weight_refusals"] += 1
            self.last_weight_error = f"version {version}: {reason}"
            self._trim_due = True
        else:
            self.stats["stale_versions" if reason == "stale" else "duplicate_weights"] += 1
        if line is None:
            return
        if reason in REFUSED:
            self.get_logger().error(f"{line}; keeping version {self.version}")
        else:
            self.get_logger().info(line)

    # ---------------------------------------------------------------- worker threads
    def _weights_loop(self) -> None:
        lower_thread_priority(int(self.p["weights_loader_nice"]), self.get_logger())
        rx = self.receiver  # touched by this thread only (its tally is thread-safe)
        while True:
            with self._cv:
                deadline = rx.assembler.next_deadline()
                self._cv.wait_for(
                    lambda: self._stop or self._weight_msgs or self.version > rx.floor,
                    None if deadline is None else max(0.01, deadline - time.monotonic()),
                )
                if self._stop:
                    return
                msg, cost = self._weight_msgs.popleft() if self._weight_msgs else (None, 0)
                self._queued_bytes -= cost
                swapped, idle = self.version, not self._weight_msgs
            if swapped > rx.floor:
                rx.commit(swapped)  # the floor moves only with a swapped-in version; older transfers go
            if msg is not None:
                self._take(msg)
            del msg
            if idle:  # caught up: an incomplete transfer with no chunk for the timeout is really stuck
                rx.expire()
                if self._trim_due:
                    self._trim_due = False
                    trim_heap()  # give what refused transfers held back to the OS

    def _take(self, msg) -> None:
        """One weight message (loader thread): a complete, verified and usable version is staged for the swap; what
        is refused is dropped here, so that nothing of it outlives this call."""
        t0 = time.monotonic()
        got = self.receiver.on_update(msg) if isinstance(msg, PolicyUpdate) else self.receiver.on_chunk(msg)
        if got is None:
            return
        version, payload = got  # a blob from chunks, or the tensors read from an announced file
        try:
            if isinstance(payload, dict):
                sd = self.policy.check_weights(payload, f"weights v{version}")
            else:
                sd = self.policy.parse_blob(payload, f"weights v{version}")
        except CheckpointError as e:
            self.receiver.refuse(version, "bad_weights", str(e))
            return
        with self._cv:
            waiting = None if self._staged is None else self._staged[0]
            if waiting is None or waiting < version:
                self._staged = (version, sd, time.monotonic())
                self.weight_timing["load_s"] = self._staged[2] - t0
                self._cv.notify_all()
        if waiting is not None and waiting >= version:
            self.receiver.refuse(version, "stale", f"version {waiting} is already waiting to be swapped in")

    def _apply_staged(self) -> None:
        with self._cv:
            staged, self._staged = self._staged, None
        if staged is None:
            return
        if staged[0] <= self.version:
            self.receiver.note("stale", staged[0], f"not newer than the running version {self.version}")
            return
        t0 = time.monotonic()
        try:
            retired = self.policy.apply_state_dict(staged[1])
        except (RuntimeError, CheckpointError) as e:  # parse_blob checked it; be safe anyway
            self.receiver.note("bad_weights", staged[0], str(e))
            return
        # Freed by a thread of their own: off this one, and at once even while the weight thread reads a next version
        self._reaper = threading.Thread(target=self._free, args=(retired,), name="policy-free", daemon=True)
        self._reaper.start()
        del retired
        with self._cv:
            self.version = staged[0]
            self.weight_timing["swap_wait_s"] = t0 - staged[2]
            self.weight_timing["swap_s"] = time.monotonic() - t0
            self._cv.notify_all()  # the loader raises the receiver's floor
        self.stats["weight_updates"] += 1
        self.get_logger().info(f"swapped in policy version {self.version}")

    def _free(self, retired: dict) -> None:
        lower_thread_priority(int(self.p["weights_loader_nice"]))
        # Tensors below glibc's mmap threshold (32 MB) go back to the heap they came from: a large model's are
        # handed back to the OS (a small one's are not worth the trim's time)
        if free_gradually(retired) >= TRIM_AFTER_BYTES:
            trim_heap()

    def _inference_loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._stop or self._ready() or self._staged is not None)
                if self._stop:
                    return
                msg = None
                if self._ready():
                    msg, self._pending_obs, self._requested = self._pending_obs, None, False
            self._apply_staged()  # between chunks only
            if msg is None:
                continue
            try:
                self._handle(msg)
            except BadInputError as e:
                self.stats["refused_inputs"] += 1
                self.last_refusal = f"seq {msg.sequence}: {e}"
                self.get_logger().warning(f"observation refused, no chunk: {self.last_refusal}")
            except Exception:  # keep the actor alive; report it
                self.stats["refused_inputs"] += 1
                self.last_refusal = f"seq {msg.sequence}: internal error"
                self.get_logger().error(f"inference failed: {traceback.format_exc()}")

    def _ready(self) -> bool:
        """An observation to infer from now (under self._cv)."""
        obs = self._pending_obs
        if obs is None or not self.on_request:
            return obs is not None
        return self._requested and stamp_to_ns(obs.header.stamp) >= self._floor_ns

    def to_input(self, msg: Observation) -> PolicyInput:
        """Observation -> PolicyInput, refusing anything the policy cannot use (raises BadInputError)."""
        if msg.robot and msg.robot != self.robot:
            raise BadInputError(f"observation is for robot {msg.robot!r}, this policy is for {self.robot!r}")
        w, h = int(self.p["image_width"]), int(self.p["image_height"])
        for name, im in zip(msg.camera_names, msg.images, strict=False):
            if im.encoding not in ("rgb8", "bgr8"):
                raise BadInputError(f"camera {name!r}: encoding {im.encoding!r}, expected rgb8")
            if len(im.data) != im.height * im.step or im.step < im.width * 3:
                raise BadInputError(
                    f"camera {name!r}: {len(im.data)} bytes for {im.width}x{im.height} (step {im.step})"
                )
            if (w and im.width != w) or (h and im.height != h):
                raise BadInputError(f"camera {name!r}: image {im.width}x{im.height}, expected {w}x{h}")
        frame = frame_from_observation(msg)
        return PolicyInput(frame.images, frame.state, frame.instruction, frame.state_names)

    def _handle(self, msg: Observation) -> None:
        obs = self.to_input(msg)
        t0 = time.perf_counter()
        actions = self.policy.infer(obs)
        latency = time.perf_counter() - t0
        if self._stop:  # destroy_node waited for this inference as long as it does and is destroying the publisher
            return
        actions = np.ascontiguousarray(actions, dtype=np.float32)  # checked as published: finite in float32 too
        if not np.all(np.isfinite(actions)):
            raise BadInputError("policy produced non-finite actions")
        self.latencies.append(latency)
        out = self._chunk
        out.header = msg.header
        out.policy_version = int(self.version)
        out.horizon, out.action_dim = int(actions.shape[0]), int(actions.shape[1])
        out.observation_sequence = int(msg.sequence)
        out.inference_latency = float(latency)
        out.actions = array.array("f", actions.tobytes())  # one copy, no Python float per value
        self.chunk_pub.publish(out)
        self.stats["chunks"] += 1

    # ---------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        st = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: policy", hardware_id=str(self.policy.device))
        st.level = DiagnosticStatus.OK
        st.message = f"version {self.version}, {self.stats['chunks']} chunks"
        if self.stats["refused_inputs"] or self.stats["weight_refusals"]:
            st.level = DiagnosticStatus.WARN
            st.message += f"; last refusal: {self.last_refusal or self.last_weight_error}"
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        st.values = [_kv("policy_version", self.version), _kv("checkpoint", self.p["checkpoint"])]
        st.values += [_kv(k, v) for k, v in self.stats.items()]
        st.values += [
            _kv("latency_last_s", f"{lat[-1]:.4f}"),
            _kv("latency_mean_s", f"{lat.mean():.4f}"),
            _kv("num_steps", self.policy.num_steps),
            _kv("last_refusal", self.last_refusal),
            _kv("last_weight_error", self.last_weight_error),
            _kv("weight_limit_bytes", self.max_weight_bytes),
            _kv("weight_pending_bytes", self.receiver.assembler.held),
            _kv("weight_queued_bytes", self._queued_bytes),
            *(_kv(f"weight_{k}", f"{v:.3f}") for k, v in self.weight_timing.items()),
        ]
        st.values += [_kv(f"weights_{r}", n) for r, n in sorted(self.receiver.tally.snapshot().items())]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def destroy_node(self):
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._worker.join(timeout=5.0)
        self._loader.join(timeout=5.0)
        if self._reaper is not None:
            self._reaper.join(timeout=5.0)
        return super().destroy_node()


def main(args=None):
    # One executor thread: every callback only hands data over (inference and weight loading have their own
    # threads), and a second executor thread would add a thread hand-off (~0.25 ms here) to every observation.
    return run_node(PolicyNode, args, threads=1)


if __name__ == "__main__":
    main()
