"""Latency of one chunk through the ROS graph (publish Observation -> receive ActionChunk) vs a direct `infer`
with the same model, interleaved in one run. `python -m hiors_bench.plumbing_bench` prints the result as JSON."""

from __future__ import annotations

import json
import statistics
import threading
import time


def run(
    robot: str = "tora_one", task: str = "raise_hand", n: int = 20, warmup: int = 3, checkpoint: str = "", policy=None
) -> dict:
    """`policy`: a loaded Pi0Policy (else `checkpoint`, else the tiny one). The per-chunk overhead is reported two
    ways: graph round trip minus a direct call's median, and minus the node's own inference time for that chunk
    (the latter holds where one inference takes a minute and varies by more than the overhead).

    Both sides time the same call: the direct time and the node's `inference_latency` each cover exactly
    `policy.infer(obs)` (input checks, image resizing, the model, unnormalising). So graph_minus_node_inference_s is
    all the rest: the probe's publish, DDS, the node executor's take, deserialisation and callback, the hand-off to
    the inference thread, the node's Observation -> PolicyInput conversion, the ActionChunk's building and publish,
    and the probe's take of it. The probe shares the node's process (and GIL), as two processes would not.
    node_minus_direct_inference_s shows plumbing work moved into the inference window instead of removed (it would
    lower graph_minus_node_inference_s alone): it should stay near 0 (here within a few tenths of a ms of noise)."""
    import rclpy  # noqa: F401  (the graph half needs ROS)
    from rclpy.node import Node

    from hiors_core import topics
    from hiors_core.convert_ros import image_msg
    from hiors_msgs.msg import ActionChunk, Observation
    from hiors_policy.checkpoint import build_tiny_policy
    from hiors_policy.policy import Pi0Policy, PolicyInput
    from hiors_policy.policy_node import PolicyNode
    from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

    if policy is None:
        policy = Pi0Policy.load(checkpoint) if checkpoint else build_tiny_policy(robot, task, seed=0)
    import numpy as np

    rng = np.random.default_rng(0)
    images = {c: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for c in policy.config.camera_names}
    state = rng.normal(size=policy.state_dim).astype(np.float32)
    obs = PolicyInput(images, state, policy.config.instruction, policy.config.state_names)
    direct, graph, node_latency = [], [], []
    with ros_context() as ctx:
        node = PolicyNode(policy=policy, context=ctx)
        probe = Node("bench_probe", context=ctx)
        got = threading.Event()
        received = []

        def on_chunk(m):
            received.append((time.perf_counter(), m))
            got.set()

        probe.create_subscription(ActionChunk, topics.ACTION_CHUNK, on_chunk, topics.qos(topics.ACTION_CHUNK))
        pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION, depth=10))
        try:
            # Each on the executor its process would have (run_node: one thread each), as two processes would.
            with spinning([node], context=ctx, threads=1), spinning([probe], context=ctx, threads=1):
                wait_for_subscribers(pub)
                for i in range(warmup + n):
                    t0 = time.perf_counter()
                    policy.infer(obs)
                    d = time.perf_counter() - t0
                    msg = Observation(robot=policy.config.robot, task=policy.config.task, sequence=i)
                    msg.instruction = obs.instruction
                    msg.camera_names = list(images)
                    msg.images = [image_msg(im, 0, c) for c, im in images.items()]
                    msg.state_names = list(obs.state_names)
                    msg.state = state.tolist()
                    got.clear()
                    t0 = time.perf_counter()
                    pub.publish(msg)
                    wait_for(got.is_set, 60, f"chunk {i}")
                    g = received[-1][0] - t0
                    if i >= warmup:
                        direct.append(d)
                        graph.append(g)
                        node_latency.append(received[-1][1].inference_latency)
        finally:
            node.destroy_node()
            probe.destroy_node()
    md, mg = statistics.median(direct), statistics.median(graph)
    return {
        "model": policy.config.preset,
        "robot": policy.config.robot,
        "cameras": len(images),
        "image": "224x224 rgb8 (resized inside)",
        "horizon": policy.horizon,
        "num_steps": policy.num_steps,
        "device": str(policy.device),
        "n": n,
        "direct_infer_median_s": round(md, 5),
        "graph_median_s": round(mg, 5),
        "node_reported_inference_median_s": round(statistics.median(node_latency), 5),
        "node_minus_direct_inference_s": round(statistics.median(node_latency) - md, 5),
        "graph_over_direct": round(mg / md, 3),
        "graph_overhead_s": round(mg - md, 5),
        "graph_minus_node_inference_s": round(
            statistics.median(g - i for g, i in zip(graph, node_latency, strict=True)), 5
        ),
        "within_5_percent": mg <= 1.05 * md,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
