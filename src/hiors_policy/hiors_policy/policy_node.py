"""The actor: Observation -> ActionChunk with a pi0 policy, and hot-swapping of new weights between chunks.

Callbacks only move data. A worker thread runs inference on the newest Observation (older unprocessed ones are
skipped and counted) and applies verified new weights between two chunks. A second thread decodes and checks
incoming weight blobs (sha256 by the receiver, then keys/shapes/finiteness), so a large blob never stalls inference.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from hiors_core import topics
from hiors_core.convert import frame_from_observation
from hiors_core.errors import BadInputError, HiorsError
from hiors_core.node_main import run_node
from hiors_core.weight_sync import WeightReceiver, WeightSyncError, weights_qos
from hiors_msgs.msg import ActionChunk, Observation, PolicyUpdate, PolicyWeights

from .checkpoint import make_policy
from .policy import CheckpointError, Pi0Policy, PolicyInput

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# PolicyWeights: reliable, keep-all, transient-local (hiors_core.weight_sync.weights_qos): a policy node started after
# the learner published gets the current version's chunks from the learner's history. Publishers in tests and
# benchmarks use the same profile (a volatile publisher does not match a transient-local subscription).
WEIGHTS_QOS = weights_qos()
RELIABLE_ALL = WEIGHTS_QOS
OBS_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
CHUNK_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

POLICY_PARAMS = {
    "checkpoint": (
        "tiny:tora_one:raise_hand",
        "checkpoint folder (project or lerobot+hiors_policy.json layout), or tiny:<robot>:<task>",
    ),
    "robot": ("", "expected robot name; observations for another robot are refused ('' = the checkpoint's)"),
    "task": ("", "expected task name (informational; '' = the checkpoint's)"),
    "num_steps": (0, "denoising steps (0 = the checkpoint's, 10 for pi0)"),
    "device": ("cpu", "torch device: cpu, cuda, cuda:1, ..."),
    "dtype": ("", "model dtype override: '', float32, bfloat16"),
    "seed": (0, "noise seed (and tiny-policy init seed)"),
    "image_width": (0, "required camera image width (0 = any)"),
    "image_height": (0, "required camera image height (0 = any)"),
    "use_local_weights": (True, "read PolicyUpdate.path directly when it is readable and its sha256 matches"),
    "diagnostics_period": (1.0, "seconds between /diagnostics messages"),
}


def _kv(k, v) -> KeyValue:
    return KeyValue(key=str(k), value=str(v))


class PolicyNode(Node):
    def __init__(self, policy: Pi0Policy | None = None, **kwargs):
        super().__init__("policy", **kwargs)
        p = {}
        for name, (default, desc) in POLICY_PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=desc))
            p[name] = self.get_parameter(name).value
        self.p = p
        if p["diagnostics_period"] <= 0:
            raise HiorsError("diagnostics_period must be positive")
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
        self.stats = {
            "chunks": 0,
            "refused_inputs": 0,
            "skipped_observations": 0,
            "weight_updates": 0,
            "weight_refusals": 0,
            "stale_versions": 0,
        }
        self.last_refusal = ""
        self.last_weight_error = ""
        self.latencies: deque[float] = deque(maxlen=100)
        self.receiver = WeightReceiver(use_local_path=bool(p["use_local_weights"]))
        self.receiver.latest_version = 0
        self.receiver.assembler.completed_version = 0

        self._cv = threading.Condition()
        self._pending_obs: Observation | None = None
        self._weight_msgs: deque = deque()  # PolicyUpdate / PolicyWeights for the loader thread
        self._staged: tuple[int, dict] | None = None
        self._stop = False

        self.chunk_pub = self.create_publisher(ActionChunk, topics.ACTION_CHUNK, CHUNK_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.create_subscription(Observation, topics.OBSERVATION, self._on_observation, OBS_QOS)
        self.create_subscription(PolicyUpdate, topics.POLICY_UPDATE, self._on_update, LATCHED)
        self.create_subscription(PolicyWeights, topics.POLICY_WEIGHTS, self._on_weights, WEIGHTS_QOS)
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
            if self._pending_obs is not None:
                self.stats["skipped_observations"] += 1
            self._pending_obs = msg
            self._cv.notify_all()

    def _on_update(self, msg: PolicyUpdate) -> None:
        if int(msg.version) == self.version:
            return  # the same update again (re-announced, or already taken from the shared-disk fast path)
        if int(msg.version) < self.version:
            self.stats["stale_versions"] += 1
            self.get_logger().warning(f"refusing policy version {msg.version}: older than current {self.version}")
            return
        self._queue_weights(msg)

    def _on_weights(self, msg: PolicyWeights) -> None:
        self._queue_weights(msg)

    def _queue_weights(self, msg) -> None:
        """Reading the announced file, reassembly and the sha256 check take seconds for a real pi0: the loader
        thread does them, so that this single-threaded executor keeps taking observations meanwhile."""
        with self._cv:
            self._weight_msgs.append(msg)
            self._cv.notify_all()

    def _receive(self, msg) -> tuple[int, bytes] | None:
        """(version, verified blob) once a weight message completes a new version (loader thread)."""
        try:
            if isinstance(msg, PolicyUpdate):
                return self.receiver.on_update(msg)
            return self.receiver.on_chunk(msg)
        except WeightSyncError as e:
            self._weight_refused(str(e))
            return None

    def _weight_refused(self, why: str) -> None:
        self.stats["weight_refusals"] += 1
        self.last_weight_error = why
        self.get_logger().error(f"new weights refused, keeping version {self.version}: {why}")

    # ---------------------------------------------------------------- worker threads
    def _weights_loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._stop or self._weight_msgs)
                if self._stop:
                    return
                msg = self._weight_msgs.popleft()
            received = self._receive(msg)
            if received is None:
                continue
            version, blob = received
            if version <= self.version:
                self.stats["stale_versions"] += 1
                continue
            try:
                sd = self.policy.parse_blob(blob, f"weights v{version}")
            except CheckpointError as e:
                self._weight_refused(str(e))
                continue
            with self._cv:
                if self._staged is None or self._staged[0] < version:
                    self._staged = (version, sd)
                self._cv.notify_all()

    def _apply_staged(self) -> None:
        with self._cv:
            staged, self._staged = self._staged, None
        if staged is None or staged[0] <= self.version:
            return
        try:
            self.policy.apply_state_dict(staged[1])
        except (RuntimeError, CheckpointError) as e:  # parse_blob checked it; be safe anyway
            self._weight_refused(str(e))
            return
        self.version = staged[0]
        self.stats["weight_updates"] += 1
        self.get_logger().info(f"swapped in policy version {self.version}")

    def _inference_loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._stop or self._pending_obs is not None or self._staged is not None)
                if self._stop:
                    return
                msg, self._pending_obs = self._pending_obs, None
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
        if not np.all(np.isfinite(actions)):
            raise BadInputError("policy produced non-finite actions")
        self.latencies.append(latency)
        cfg = self.policy.config
        out = ActionChunk(
            policy_version=int(self.version),
            control_mode=int(cfg.control_mode),
            horizon=int(actions.shape[0]),
            action_dim=int(actions.shape[1]),
            action_names=list(cfg.action_names),
            dt=float(cfg.dt),
            observation_sequence=int(msg.sequence),
            inference_latency=float(latency),
        )
        out.header = msg.header
        out.actions = actions.astype(np.float32).ravel().tolist()
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
        ]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def destroy_node(self):
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._worker.join(timeout=5.0)
        self._loader.join(timeout=5.0)
        return super().destroy_node()


def main(args=None):
    # One executor thread: every callback only hands data over (inference and weight loading have their own
    # threads), and a second executor thread would add a thread hand-off (~0.25 ms here) to every observation.
    return run_node(PolicyNode, args, threads=1)


if __name__ == "__main__":
    main()
