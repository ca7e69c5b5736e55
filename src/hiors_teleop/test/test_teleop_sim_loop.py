"""Integration: the real MuJoCo twin (sim_node), capture, arbiter, recorder and the simulated operator in one process
on a private ROS domain, on simulated time. No policy: a test publisher sends deliberately bad ActionChunks (towards
a pose far from the target, partly outside the workspace), so the operator takes over and drives through the Quest
topics. The episode is started, ended and labelled through the recorder's services, then the bag it wrote is read
back: human segments carry human authority, samples are dense while the human drives and sparse (one per chunk)
while the policy drives, every executed command is inside the limits, the label is stored."""

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Joy

from hiors_core import topics
from hiors_core.episode_log import STATUS_COMPLETE, EpisodeLog
from hiors_core.robots import MODE_EE_POSE, TORA_ONE
from hiors_core.schema import AUTHORITY_HUMAN, AUTHORITY_POLICY
from hiors_msgs.msg import ActionChunk, ExecutedCommand
from hiors_msgs.srv import EndEpisode, LabelEpisode, ResetSim, StartEpisode
from hiors_policy.capture_node import CaptureNode
from hiors_sim.operator_node import SimOperatorNode
from hiors_sim.sim_node import SimNode
from hiors_teleop.arbiter import Arbiter
from hiors_teleop.recorder import Recorder
from hiors_teleop.safety import Limits, layout_for, step_ok, within_limits
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

pytestmark = [pytest.mark.node, pytest.mark.e2e]
WAIT = 30.0
# Waits on the simulated scene (several sim seconds of driving): bounds, not timings; generous because a loaded 2-core
# CI machine can run this six-node process well below real time.
SCENE_WAIT = 120.0
ROBOT, TASK = "tora_one", "raise_hand"
LIMITS = Limits.for_robot(TORA_ONE, layout_for(TORA_ONE, "ee", "left"))
K_AUTO = 12  # actions executed per chunk
CHUNK_EVERY = 0.32  # s of sim time between bad chunks (8 control steps): one sample per chunk while the policy drives
BAD_XYZ = (0.2, 0.55, 0.3)  # far from every raise_hand target, and below the workspace (z >= 0.6): clamped
POLICY_VERSION = 3
SIM_TIME = [Parameter("use_sim_time", value=True)]
COMMON = [*SIM_TIME, Parameter("robot", value=ROBOT), Parameter("task", value=TASK)]


class BadPolicy(Node):
    """Publishes chunks that drive the hand away from the target while `active`, stamped with the sim clock."""

    def __init__(self, context):
        super().__init__("bad_policy", context=context, parameter_overrides=SIM_TIME)
        self.active = False
        self.sent = 0
        self.quat = None
        self.executed: list[ExecutedCommand] = []
        self.engaged_at: list[int] = []  # sim-clock stamps of the operator's Joy messages with the clutch held
        self.pub = self.create_publisher(ActionChunk, topics.ACTION_CHUNK, topics.qos(topics.ACTION_CHUNK))
        self.create_subscription(
            PoseStamped, topics.EE_POSE.format(arm="left"), self.on_pose, topics.qos(topics.EE_POSE)
        )
        self.create_subscription(ExecutedCommand, topics.EXECUTED, self.executed.append, topics.qos(topics.EXECUTED))
        self.create_subscription(Joy, topics.TELEOP_JOY, self.on_joy, topics.qos(topics.TELEOP_JOY, depth=100))
        self.create_timer(CHUNK_EVERY, self.send)
        self.reset = self.create_client(ResetSim, topics.RESET)
        self.start = self.create_client(StartEpisode, topics.START_EPISODE)
        self.end = self.create_client(EndEpisode, topics.END_EPISODE)
        self.label = self.create_client(LabelEpisode, topics.LABEL_EPISODE)

    def on_joy(self, msg: Joy) -> None:
        if msg.buttons and msg.buttons[0]:
            self.engaged_at.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)

    def on_pose(self, msg: PoseStamped) -> None:
        o = msg.pose.orientation
        self.quat = [o.x, o.y, o.z, o.w]

    def send(self) -> None:
        if not self.active or self.quat is None:
            return
        h = 16
        actions = np.tile(np.r_[BAD_XYZ, self.quat, 1.0], (h, 1)).astype(np.float32)
        msg = ActionChunk(policy_version=POLICY_VERSION, control_mode=MODE_EE_POSE, horizon=h, action_dim=8, dt=0.04)
        msg.action_names = list(LIMITS.names)
        msg.actions = actions.reshape(-1).tolist()
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(msg)
        self.sent += 1

    def call(self, client, request, what):
        wait_for(client.service_is_ready, WAIT, f"{what} service")
        fut = client.call_async(request)
        wait_for(fut.done, WAIT, f"{what} response")
        return fut.result()


def segments(authorities):
    """[(authority, first index, length)] of runs of equal authority."""
    out = []
    for i, a in enumerate(authorities):
        if out and out[-1][0] == a:
            out[-1][2] += 1
        else:
            out.append([a, i, 1])
    return out


@pytest.mark.timeout(300)
def test_operator_takes_over_from_a_bad_policy_and_the_bag_says_so(tmp_path):
    with ros_context() as ctx:
        sim = SimNode(
            context=ctx,
            parameter_overrides=[
                *COMMON,
                Parameter("seed", value=1),
                Parameter("image_width", value=32),
                Parameter("image_height", value=32),
                Parameter("real_time_factor", value=2.0),  # twice real time; all nodes run on its /clock
            ],
        )
        capture = CaptureNode(context=ctx, parameter_overrides=[*COMMON, Parameter("rate_hz", value=25.0)])
        arbiter = Arbiter(
            context=ctx,
            parameter_overrides=[
                *COMMON,
                Parameter("k_auto", value=K_AUTO),
                Parameter("teleop_timeout_s", value=1.0),  # sim seconds; generous for a loaded machine
                Parameter("marker_rate_hz", value=0.0),
            ],
        )
        recorder = Recorder(
            context=ctx,
            parameter_overrides=[
                *COMMON,
                Parameter("log_dir", value=str(tmp_path)),
                Parameter("horizon", value=16),
                Parameter("resend_period_s", value=0.0),
            ],
        )
        operator = SimOperatorNode(
            context=ctx,
            parameter_overrides=[
                *COMMON,
                Parameter("mode", value="intervene"),
                Parameter("reaction_delay_s", value=0.2),
                Parameter("min_takeover_s", value=0.6),
                Parameter("seed", value=0),
            ],
        )
        rig = BadPolicy(ctx)
        nodes = [sim, capture, arbiter, recorder, operator, rig]
        try:
            with spinning(nodes, context=ctx, threads=4):
                wait_for_subscribers(rig.pub, timeout=WAIT)
                wait_for(lambda: recorder.latest_obs is not None, WAIT, "observations at the recorder")
                wait_for(lambda: len(rig.executed) > 3 and rig.quat is not None, WAIT, "the arbiter holding")
                # A fresh scene (the operator and the arbiter follow it), then the episode.
                assert rig.call(rig.reset, ResetSim.Request(seed=2, task="", cell=-1), "reset").success
                started = rig.call(rig.start, StartEpisode.Request(task=TASK), "start_episode")
                assert started.success
                eid = started.episode_id
                n0 = len(rig.executed)  # commands from here on belong to the episode
                rig.active = True

                def enough():
                    runs = segments([m.authority for m in rig.executed[n0:]])
                    human = [r for r in runs if r[0] == AUTHORITY_HUMAN]
                    policy_after = [r for r in runs if r[0] == AUTHORITY_POLICY and human and r[1] > human[0][1]]
                    return sum(r[2] for r in human) >= 20 and sum(r[2] for r in policy_after) >= 2 * K_AUTO

                wait_for(enough, SCENE_WAIT, "a takeover by the operator and the bad policy driving again")
                rig.active = False
                ended = rig.call(rig.end, EndEpisode.Request(episode_id=eid, has_label=False), "end_episode")
                assert ended.success and "waiting for a label" in ended.message
                req = LabelEpisode.Request(episode_id=eid, reward=1.0, success=True, source="human")
                assert rig.call(rig.label, req, "label_episode").success
                wait_for(lambda: eid in recorder.published, WAIT, "the episode closed and handed over")
            live = list(rig.executed)
            engaged_at = np.array(sorted(rig.engaged_at), dtype=np.int64)
        finally:
            recorder.shutdown()
            for n in nodes:
                n.destroy_node()

    log = EpisodeLog(tmp_path)
    entry = log.entries()[eid]
    assert entry.status == STATUS_COMPLETE and entry.reward == 1.0 and entry.success
    data = log.read(eid)
    ex = data.executed

    # The label is stored in the bag.
    assert data.label is not None
    assert (data.label.reward, data.label.success, data.label.source) == (1.0, True, "human")
    assert data.meta.robot == ROBOT and data.meta.task == TASK and data.meta.action_names == LIMITS.names

    # What the bag holds is what the arbiter sent, step for step (the same stream, as the test's node received it).
    assert [e.step for e in ex] == list(range(len(ex)))

    def same(e, m):
        stamp = m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec
        # Stamps as sent, or a few ns later where the arbiter sent two commands at one sim-clock reading (the
        # recorder keeps recorded stamps strictly increasing).
        return (
            abs(e.stamp_ns - stamp) < 1000
            and (e.authority, e.source, e.is_sample, e.clamped)
            == (
                m.authority,
                m.source,
                m.is_sample,
                m.clamped,
            )
            and np.array_equal(e.action, np.asarray(m.action, np.float32))
        )

    start = next(i for i, m in enumerate(live) if same(ex[0], m))
    assert len(live) >= start + len(ex)
    for e, m in zip(ex, live[start : start + len(ex)], strict=True):
        assert same(e, m), (e, m)

    # Human segments are marked: human authority, from the Quest device the operator drives; and the human drove
    # towards the target while the policy drove towards its bad pose.
    human = data.human_mask
    assert human.sum() >= 20 and data.interventions >= 1
    assert {e.source for e in ex if e.is_human} == {"quest3"}
    for e in ex:  # ... and only while the operator held the clutch (a Joy saying so within the teleop timeout)
        if e.is_human:
            i = np.searchsorted(engaged_at, e.stamp_ns, side="right")
            assert i > 0 and e.stamp_ns - engaged_at[i - 1] <= 1_000_000_000, e.step
    policy = np.array([e.authority == AUTHORITY_POLICY for e in ex])
    assert policy.sum() >= 2 * K_AUTO
    assert {e.policy_version for e in ex if e.authority == AUTHORITY_POLICY} == {POLICY_VERSION}
    assert any(policy[i] and human[:i].any() for i in range(len(ex))), "no policy segment after a takeover"
    bad = np.array(BAD_XYZ[:2])
    for a, first, n in segments([e.authority for e in ex]):
        if a == AUTHORITY_POLICY and n >= 8:  # the policy's chunks pull the hand towards the bad pose
            xy = [ex[first].action[:2], ex[first + n - 1].action[:2]]
            assert np.linalg.norm(xy[1] - bad) < np.linalg.norm(xy[0] - bad)

    # Dual frequency: every step is a sample while the human drives, one per chunk while the policy drives.
    sample_steps = [e.step for e in ex if e.is_sample]
    assert [f.step for f in data.frames] == sample_steps  # a recorded observation for every sample
    samples = np.array([e.is_sample for e in ex])
    human_rate = samples[human].mean()
    policy_rate = samples[policy].mean()
    assert human_rate == 1.0
    assert 0 < policy_rate <= 1.0 / 4
    assert human_rate > 3 * policy_rate
    assert all(e.authority in (AUTHORITY_HUMAN, AUTHORITY_POLICY) for e in ex if e.is_sample)

    # Every executed command is inside the limits and one control step from the previous one; the bad pose below
    # the workspace was clamped, never forwarded.
    for i, e in enumerate(ex):
        assert within_limits(e.action, LIMITS, tol=1e-6), (i, e.action)
        if i:
            assert step_ok(e.action, ex[i - 1].action, LIMITS, tol=1e-5), (i, e.action, ex[i - 1].action)
    assert min(float(e.action[2]) for e in ex) >= LIMITS.lower[2] - 1e-6
    assert any(e.clamped for e in ex if e.authority == AUTHORITY_POLICY)
    first_frame = data.frames[0]
    assert set(first_frame.images) == set(TORA_ONE.cameras)
    assert all(im.shape == (32, 32, 3) for im in first_frame.images.values())
