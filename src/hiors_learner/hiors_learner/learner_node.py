"""learner: the asynchronous Hi-ORS learner node.

Callbacks only move data: the episodes the filter passed go into a queue; a training thread converts them and
judges them at its m (the learner owns m; LearnerStatus announces it), trains continuously while there is data
(or up to an update-to-data cap, `utd_target`), publishes weights every N steps (chunked over a reliable,
transient-local topic whose history keeps the latest version for actors that start later, plus a local file for a
shared disk), checkpoints, and publishes LearnerStatus (latched; its utd_ratio is gradient steps / samples received).

DeepSpeed ZeRO-2: launch every rank with torchrun / the deepspeed launcher and `-p engine:=deepspeed`, e.g.
    torchrun --nproc_per_node 2 -m hiors_learner.learner_node --ros-args -p engine:=deepspeed -p run_dir:=...
Rank 0 owns the ROS node and sends each minibatch to the other ranks with torch.distributed broadcasts; the
other ranks get the node parameters from rank 0 the same way and never touch ROS.
"""

from __future__ import annotations

import importlib
import os
import queue
import threading
import time

from rclpy.node import Node

from hiors_core import topics
from hiors_core.episode_msg import samples_from_msg
from hiors_core.errors import HiorsError
from hiors_core.node_main import run_node
from hiors_core.params import declare
from hiors_core.weight_sync import weight_messages
from hiors_msgs.msg import Episode, LearnerStatus, PolicyUpdate, PolicyWeights

from .engine import DeepSpeedEngine, TorchEngine
from .learner import Learner, LearnerConfig
from .optim import OptimConfig
from .params import LEARNER, filter_config, return_config, threshold_config


def make_policy(p: dict):
    if p["policy_path"]:
        from hiors_policy import Pi0Policy

        return Pi0Policy.load(p["policy_path"])
    mod, _, fn = str(p["policy_factory"]).partition(":")
    return getattr(importlib.import_module(mod), fn)(robot=p["robot"], task=p["task"], seed=int(p["seed"]))


def optim_config(p: dict) -> OptimConfig:
    return OptimConfig(
        lr=float(p["lr"]),
        min_lr=float(p["min_lr"]),
        warmup_steps=int(p["warmup_steps"]),
        decay_steps=int(p["decay_steps"]),
        schedule=str(p["lr_schedule"]),
        cycle_steps=int(p["cycle_steps"]),
        grad_clip=float(p["grad_clip"]),
        weight_decay=float(p["weight_decay"]),
    )


def make_engine(p: dict):
    policy = make_policy(p)
    if p["engine"] == "deepspeed":
        return DeepSpeedEngine(policy, optim_config(p), int(p["batch_size"]), int(p["seed"]), bool(p["bf16"]))
    if p["engine"] == "torch":
        return TorchEngine(policy, optim_config(p), str(p["device"]), int(p["seed"]))
    raise HiorsError(f"engine {p['engine']!r} unknown; known: ['torch', 'deepspeed']")


def _policy_horizon(policy) -> int:
    cfg = getattr(getattr(policy, "model", None), "config", None)
    return int(getattr(cfg, "chunk_size", 0) or getattr(policy, "horizon", 0) or 50)


def learner_config(p: dict, policy) -> LearnerConfig:
    """The learner core's configuration from the node's parameters (also used by offline runs of the core)."""
    return LearnerConfig(
        run_dir=str(p["run_dir"]),
        log_dir=str(p["log_dir"]),
        demo_log_dir=str(p["demo_log_dir"]),
        horizon=int(p["horizon"]) or _policy_horizon(policy),
        batch_size=int(p["batch_size"]),
        utd_target=float(p["utd_target"]),
        utd_cap=float(p["utd_cap"]),
        idle_after_s=float(p["idle_after_s"]),
        publish_every=int(p["publish_every"]),
        checkpoint_every=int(p["checkpoint_every"]),
        local_weights=bool(p["local_weights"]),
        max_steps=int(p["max_steps"]),
        seed=int(p["seed"]),
        filters=filter_config(p),
        threshold=threshold_config(p),
        returns=return_config(p),
        return_time_limit_s=float(p["return_time_limit_s"]),
    )


class LearnerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("learner", **kwargs)
        p = declare(self, LEARNER)
        self.p = p
        if p["engine"] == "deepspeed":
            import deepspeed
            import torch.distributed as dist

            deepspeed.init_distributed()
            dist.broadcast_object_list([p], src=0)  # the other ranks build the same policy and engine
        self.engine = make_engine(p)
        self.cfg = learner_config(p, self.engine.policy)
        self.chunk_bytes = int(p["chunk_bytes"])
        self.status_pub = self.create_publisher(LearnerStatus, topics.LEARNER_STATUS, topics.qos(topics.LEARNER_STATUS))
        self.update_pub = self.create_publisher(PolicyUpdate, topics.POLICY_UPDATE, topics.qos(topics.POLICY_UPDATE))
        # Created with the first blob: its history (transient-local) holds exactly one version's chunks, so an actor
        # that starts later still gets the current version (hiors_core.topics, POLICY_WEIGHTS).
        self.weights_pub = None
        self.weights_depth = 0
        self._weights_lock = threading.Lock()
        self.learner = Learner(self.cfg, self.engine, publish=self.publish_weights, logger=self.get_logger().info)
        self.inbox: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.create_subscription(Episode, topics.EPISODE_ACCEPTED, self.inbox.put, topics.qos(topics.EPISODE_ACCEPTED))
        self.status_period = float(p["status_period"])
        self.thread = threading.Thread(target=self.run, name="learner-train", daemon=True)
        self.thread.start()

    # --- worker thread ----------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.learner.restore()
            self.learner.publish_weights()  # the actor gets this learner's weights as a new version at once
            self.publish_status()  # and the episode filter its m, before the episode data is read
            self.learner.load_data()
            self.publish_status()
            last_status = time.monotonic()
            while not self.stop.is_set():
                self.drain()
                trained = False
                if self.learner.ready():
                    self.learner.train_once()
                    trained = True
                if time.monotonic() - last_status >= self.status_period:
                    self.publish_status()
                    last_status = time.monotonic()
                if not trained:
                    self.stop.wait(0.02)
        except Exception as e:  # a dead trainer must be loud, not silent
            if self.stop.is_set() or not self.context.ok():
                return  # shutting down
            self.get_logger().fatal(f"training thread died: {type(e).__name__}: {e}")
            raise

    def drain(self) -> None:
        while True:
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                return
            try:
                samples = samples_from_msg(msg)
                bad = [s for s in samples if s.action_label.shape[0] != self.cfg.horizon]
                if bad:
                    raise HiorsError(
                        f"label horizon {bad[0].action_label.shape[0]} != learner horizon {self.cfg.horizon}"
                    )
            except HiorsError as e:
                self.get_logger().error(f"episode {msg.episode_id}: not trainable: {e}")
                self.learner.buffer.mark_seen(msg.episode_id)
                continue
            mode = int(msg.samples[0].control_mode) if msg.samples else 0
            res = self.learner.offer(msg.episode_id, samples, float(msg.episode_return), mode, prefiltered=True)
            if res is None:
                self.get_logger().info(f"episode {msg.episode_id}: already in the buffer, ignored")

    def publish_weights(
        self, version: int, step: int, blob: bytes | None, path: str, digest: str = "", size: int = 0
    ) -> None:
        update, chunks = weight_messages(blob, version, step, path, self.chunk_bytes, digest=digest, total_bytes=size)
        now = self.get_clock().now().to_msg()
        update.header.stamp = now
        with self._weights_lock:
            if self.weights_pub is None or len(chunks) > self.weights_depth:
                if self.weights_pub is not None:
                    self.destroy_publisher(self.weights_pub)
                self.weights_depth = len(chunks)
                self.weights_pub = self.create_publisher(
                    PolicyWeights, topics.POLICY_WEIGHTS, topics.qos(topics.POLICY_WEIGHTS, depth=self.weights_depth)
                )
            self.update_pub.publish(update)
            for c in chunks:
                c.header.stamp = now
                self.weights_pub.publish(c)

    def publish_status(self) -> None:
        s = self.learner.status()
        msg = LearnerStatus(
            step=int(s["step"]),
            loss=float(s["loss"]),
            threshold=float(s["threshold"]),
            episodes_total=int(s["episodes_total"]),
            episodes_accepted=int(s["episodes_accepted"]),
            episodes_rejected=int(s["episodes_rejected"]),
            buffer_samples=int(s["buffer_samples"]),
            utd_ratio=float(s["utd"]),
            samples_per_second=float(s["samples_per_second"]),
            policy_version=int(s["policy_version"]),
            engine=str(s["engine"]),
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(msg)

    def shutdown(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30.0)
        if not self.thread.is_alive():  # (a step still running would race the checkpoint)
            try:
                ckpt = self.learner.final_checkpoint()  # a clean stop loses no steps
                if ckpt is not None:
                    self.get_logger().info(f"checkpoint {ckpt} at step {self.engine.step} on stopping")
            except OSError as e:
                self.get_logger().error(f"no checkpoint on stopping: {e}")
        self.learner.close()
        self.engine.close()


def follower_main() -> None:
    """Ranks > 0 of a DeepSpeed job: receive the parameters, build the same engine, follow rank 0."""
    import deepspeed
    import torch.distributed as dist

    deepspeed.init_distributed()
    box = [None]
    dist.broadcast_object_list(box, src=0)
    engine = make_engine(box[0])
    engine.follow()


def main(args=None):
    if int(os.environ.get("RANK", "0")) > 0:
        follower_main()  # DeepSpeed ranks > 0 follow rank 0's steps; only rank 0 owns the ROS node
        return 0
    return run_node(LearnerNode, args)


if __name__ == "__main__":
    main()
