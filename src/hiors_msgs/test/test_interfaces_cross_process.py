"""Every hiors_msgs message and service crosses a process boundary over DDS intact."""

import subprocess
import sys
import textwrap

import pytest

rclpy = pytest.importorskip("rclpy")

import hiors_msgs.msg as m  # noqa: E402
import hiors_msgs.srv as s  # noqa: E402
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_publishers  # noqa: E402

MESSAGES = [
    "Observation",
    "ActionChunk",
    "ControlState",
    "EpisodeLabel",
    "ExecutedCommand",
    "Sample",
    "Episode",
    "EpisodeVerdict",
    "PolicyUpdate",
    "PolicyWeights",
    "LearnerStatus",
]
SERVICES = ["StartEpisode", "EndEpisode", "LabelEpisode", "ResetSim"]

# The peer process: one publisher per message type, carrying a marker in a string or number field,
# and one server per service that answers with the request echoed back.
PEER = textwrap.dedent(
    """
    import sys, time, rclpy
    from rclpy.node import Node
    from hiors_core import topics
    import hiors_msgs.msg as m, hiors_msgs.srv as s
    from sensor_msgs.msg import Image
    rclpy.init()
    node = Node("peer")
    pubs = {}
    for name in sys.argv[1].split(","):
        msg = getattr(m, name)()
        (msg.header if hasattr(msg, "header") else msg.observation.header).frame_id = "marker-" + name
        if name == "Observation":
            msg.images = [Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(range(12)))]
            msg.state = [1.5, -2.0]
        if name == "Episode":
            sample = m.Sample(horizon=2, action_dim=1, action_label=[0.25, 0.5])
            msg.samples = [sample]
        if name == "PolicyWeights":
            msg.data = bytes(range(256))
        pubs[name] = node.create_publisher(getattr(m, name), "x/" + name, topics.profile(topics.QOS_LATCHED))
        pubs[name].publish(msg)
    def start(req, res):
        res.success, res.episode_id = True, "echo-" + req.task
        return res
    def generic(req, res):
        res.success, res.message = True, "ok"
        return res
    node.create_service(s.StartEpisode, "x/StartEpisode", start)
    for name in ("EndEpisode", "LabelEpisode", "ResetSim"):
        node.create_service(getattr(s, name), "x/" + name, generic)
    print("ready", flush=True)
    rclpy.spin(node)
    """
)


@pytest.mark.node
def test_every_interface_crosses_processes():
    peer = subprocess.Popen([sys.executable, "-c", PEER, ",".join(MESSAGES)], stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().strip() == "ready"
        with ros_context() as ctx:
            from rclpy.node import Node

            from hiors_core import topics

            node = Node("receiver", context=ctx)
            got = {}
            subs = [
                node.create_subscription(
                    getattr(m, name),
                    "x/" + name,
                    lambda msg, n=name: got.__setitem__(n, msg),
                    topics.profile(topics.QOS_LATCHED),
                )
                for name in MESSAGES
            ]
            clients = {name: node.create_client(getattr(s, name), "x/" + name) for name in SERVICES}
            with spinning(node, ctx):
                for sub in subs:
                    wait_for_publishers(sub, timeout=20)
                wait_for(lambda: len(got) == len(MESSAGES), 20, "one message of every type")
                for name in MESSAGES:
                    msg = got[name]
                    header = msg.header if hasattr(msg, "header") else msg.observation.header
                    assert header.frame_id == "marker-" + name
                assert list(got["Observation"].images[0].data) == list(range(12))
                assert list(got["Observation"].state) == [1.5, -2.0]
                assert list(got["Episode"].samples[0].action_label) == [0.25, 0.5]
                assert bytes(got["PolicyWeights"].data) == bytes(range(256))
                for name, client in clients.items():
                    assert client.wait_for_service(timeout_sec=20), name
                    req = getattr(s, name).Request()
                    if name == "StartEpisode":
                        req.task = "raise_hand"
                    future = client.call_async(req)
                    wait_for(future.done, 20, f"{name} response")
                    assert future.result().success
                    if name == "StartEpisode":
                        assert future.result().episode_id == "echo-raise_hand"
            node.destroy_node()
    finally:
        peer.kill()
        peer.wait()
