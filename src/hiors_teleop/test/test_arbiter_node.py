"""Node tests: the arbiter on a private ROS domain, driven by this test's own publishers (no sim)."""

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool, Header
from visualization_msgs.msg import MarkerArray

from hiors_core import topics
from hiors_core.robots import MODE_EE_POSE, TORA_ONE
from hiors_msgs.msg import ActionChunk, ControlState, ExecutedCommand
from hiors_teleop.arbiter import Arbiter
from hiors_teleop.safety import Limits, layout_for, within_limits
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

pytestmark = pytest.mark.node
LIMITS = Limits.for_robot(TORA_ONE, layout_for(TORA_ONE, "ee", "left"))
HOME = [0.3, 0.2, 1.1, 0.0, 0.0, 0.0, 1.0]


class Rig(Node):
    def __init__(self, context):
        super().__init__("arbiter_rig", context=context)
        self.executed, self.states, self.cmds, self.markers = [], [], [], []
        self.create_subscription(ExecutedCommand, topics.EXECUTED, self.executed.append, topics.qos(topics.EXECUTED))
        self.create_subscription(
            ControlState, topics.CONTROL_STATE, self.states.append, topics.qos(topics.CONTROL_STATE)
        )
        self.create_subscription(
            PoseStamped, topics.CMD_EE_POSE.format(arm="left"), self.cmds.append, topics.qos(topics.CMD_EE_POSE)
        )
        self.create_subscription(MarkerArray, topics.MARKERS, self.markers.append, topics.qos(topics.MARKERS))
        self.requests: list[Header] = []
        self.create_subscription(Header, topics.CHUNK_REQUEST, self.requests.append, topics.qos(topics.CHUNK_REQUEST))
        self.ee = self.create_publisher(PoseStamped, topics.EE_POSE.format(arm="left"), topics.qos(topics.EE_POSE))
        self.js = self.create_publisher(JointState, topics.JOINT_STATES, topics.qos(topics.JOINT_STATES))
        self.chunk = self.create_publisher(ActionChunk, topics.ACTION_CHUNK, topics.qos(topics.ACTION_CHUNK))
        self.joy = self.create_publisher(Joy, topics.TELEOP_JOY, topics.qos(topics.TELEOP_JOY))
        self.delta = self.create_publisher(
            PoseStamped, topics.TELEOP_EE_DELTA.format(arm="left"), topics.qos(topics.TELEOP_EE_DELTA)
        )
        self.estop = self.create_publisher(Bool, topics.ESTOP, topics.qos(topics.ESTOP))
        self.create_timer(0.02, self.publish_state)

    def publish_state(self):
        m = PoseStamped()
        m.pose.position.x, m.pose.position.y, m.pose.position.z = HOME[:3]
        m.pose.orientation.w = 1.0
        self.ee.publish(m)
        self.js.publish(JointState(name=["left_gripper"], position=[0.5]))

    def send_chunk(self, arbiter, x=0.32, h=50, nan=False, version=7):
        actions = np.tile(np.r_[HOME, 0.5], (h, 1)).astype(np.float32)
        actions[:, 0] = x
        if nan:
            actions[5, 2] = np.nan
        # Actions 10 s apart: on a loaded CI machine the chunk may start late, and the arbiter would (rightly)
        # skip the actions whose time has passed; this test counts steps, so none may be in the past.
        msg = ActionChunk(policy_version=version, control_mode=MODE_EE_POSE, horizon=h, action_dim=8, dt=10.0)
        msg.action_names = list(LIMITS.names)
        msg.actions = actions.reshape(-1).tolist()
        msg.header.stamp = arbiter.get_clock().now().to_msg()
        self.chunk.publish(msg)


@pytest.fixture
def rig():
    with ros_context() as ctx:
        arbiter = Arbiter(
            context=ctx,
            parameter_overrides=[
                Parameter("robot", value="tora_one"),
                Parameter("k_auto", value=20),
                Parameter("control_rate_hz", value=50.0),
                Parameter("marker_rate_hz", value=10.0),
                Parameter("policy_timeout_steps", value=250),  # 5 s: a slow CI machine is not a stale policy
            ],
        )
        rig = Rig(ctx)
        with spinning([arbiter, rig], context=ctx):
            for pub in (rig.chunk, rig.joy, rig.delta, rig.estop):
                wait_for_subscribers(pub)
                wait_for(
                    lambda t=pub.topic_name: arbiter.count_publishers(t) >= 1, what=f"arbiter sees {pub.topic_name}"
                )
            wait_for(lambda: len(rig.executed) > 2, what="hold commands once the robot state is known")
            yield arbiter, rig
        arbiter.destroy_node()
        rig.destroy_node()


def test_chunk_in_commands_out_within_limits_then_nan_refused_then_estop(rig):
    arbiter, r = rig
    # Holding with no chunk, the arbiter asks the policy for one.
    wait_for(lambda: r.requests, what="a chunk request while holding")
    r.send_chunk(arbiter, x=5.0)  # far outside the workspace: clamped, step-limited
    wait_for(lambda: any(e.authority == ControlState.AUTHORITY_POLICY for e in r.executed), what="policy commands")
    wait_for(lambda: sum(e.authority == ControlState.AUTHORITY_POLICY for e in r.executed) >= 5, what="5 steps")
    pol = [e for e in r.executed if e.authority == ControlState.AUTHORITY_POLICY]
    assert all(within_limits(np.array(e.action, np.float64), LIMITS, tol=1e-5) for e in r.executed)
    assert all(e.clamped and e.policy_version == 7 for e in pol[:5])
    assert pol[0].is_sample and not any(e.is_sample for e in pol[1:5])
    assert all(p.pose.position.x <= TORA_ONE.workspace_max[0] + 1e-6 for p in r.cmds)
    # Watchdog: with no new chunk the chunk runs on past k_auto to its horizon (50), then the arbiter holds.
    wait_for(lambda: r.executed[-1].authority == ControlState.AUTHORITY_HOLD, what="hold after the chunk ran out")
    n_pol = sum(e.authority == ControlState.AUTHORITY_POLICY for e in r.executed)
    assert n_pol == 50
    # A NaN chunk is refused and nothing of it forwarded.
    refused0 = r.states[-1].refused_commands
    r.send_chunk(arbiter, nan=True, version=8)
    wait_for(lambda: r.states and r.states[-1].refused_commands > refused0, what="refusal in ControlState")
    assert "non-finite" in r.states[-1].reason
    mark = len(r.executed)
    wait_for(lambda: len(r.executed) > mark + 10, what="more commands")
    assert not any(e.policy_version == 8 for e in r.executed)
    # E-stop: hold at once, latched until released.
    r.send_chunk(arbiter, version=9)
    wait_for(lambda: r.executed[-1].policy_version == 9, what="policy again")
    r.estop.publish(Bool(data=True))
    wait_for(lambda: r.states[-1].estop, what="estop state")
    r.send_chunk(arbiter, version=10)
    mark = len(r.executed)
    wait_for(lambda: len(r.executed) > mark + 5, what="commands during estop")
    assert all(e.authority == ControlState.AUTHORITY_HOLD for e in r.executed[mark + 1 :])
    assert r.markers and {m.ns for m in r.markers[-1].markers} >= {"executed", "authority", "target"}


def test_joy_takeover_gives_human_authority(rig):
    arbiter, r = rig
    r.send_chunk(arbiter, x=0.32, h=50)
    wait_for(lambda: r.executed[-1].authority == ControlState.AUTHORITY_POLICY, what="policy drives")

    def human_input():
        r.joy.publish(Joy(buttons=[1, 0, 0, 0], axes=[0.0]))
        d = PoseStamped()
        d.pose.position.y = 0.02
        d.pose.orientation.w = 1.0
        r.delta.publish(d)

    timer = r.create_timer(0.02, human_input)
    wait_for(lambda: r.executed[-1].authority == ControlState.AUTHORITY_HUMAN, what="human authority")
    wait_for(lambda: r.states[-1].authority == ControlState.AUTHORITY_HUMAN, what="ControlState HUMAN")
    human = [e for e in r.executed if e.authority == ControlState.AUTHORITY_HUMAN]
    assert human[0].source == "quest3" and human[0].is_sample
    assert r.states[-1].sampling_rate_hz == pytest.approx(50.0)
    timer.cancel()
    r.destroy_timer(timer)
    wait_for(lambda: r.executed[-1].authority != ControlState.AUTHORITY_HUMAN, what="stale teleop -> hold")
    assert r.executed[-1].authority == ControlState.AUTHORITY_HOLD
