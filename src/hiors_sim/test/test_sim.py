"""Tests of the twins, tasks, scripted expert, operator, oracle (pure) and the sim node (ROS, private domain)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hiors_core.robots import MODE_EE_POSE, ee_layout, joint_layout
from hiors_core.rotations import IDENTITY_Q, apply_delta, quat_angle, quat_from_axis_angle, quat_step_towards
from hiors_core.tasks import TASKS as REGISTRY
from hiors_sim.env import Command, SimRobot
from hiors_sim.expert import ScriptedExpert
from hiors_sim.grid import Grid
from hiors_sim.operator import OperatorConfig, QuestHand, SimOperator, ee_delta
from hiors_sim.oracle import RewardOracle
from hiors_sim.tasks import (
    BOX_CENTER,
    MOIST_HALF,
    SCENES,
    TABLE_Z,
    InsertMoisturizer,
    PackDetergent,
    RaiseHand,
    make_task,
    tasks_for,
)

TASKS = [(t.robot, t.name) for t in REGISTRY.values()]
_ENVS: dict = {}


def env_for(robot, task) -> SimRobot:
    if (robot, task) not in _ENVS:
        _ENVS[(robot, task)] = SimRobot(robot, task)
    return _ENVS[(robot, task)]


def run_episode(env, expert, seed, cell=-1):
    st = env.reset(seed=seed, cell=cell)
    expert.reset()
    traj = []
    while True:
        r = env.step(expert.act(st))
        st = env.task_state()
        traj.append(env.joint_positions())
        if r.done:
            return st, np.array(traj)


# ---------------------------------------------------------------- tasks: success checks on hand-made states
def test_raise_hand_check():
    q = [0.0, 0.0, 0.0, 1.0]
    ok = {"ee_pos": [0.3, 0.3, 1.3], "ee_quat_xyzw": q, "target_pos": [0.31, 0.3, 1.3], "target_quat_xyzw": q}
    assert RaiseHand.evaluate(ok)["success"]
    far = dict(ok, ee_pos=[0.3, 0.3, 1.1])
    assert not RaiseHand.evaluate(far)["success"]
    turned = dict(ok, ee_quat_xyzw=quat_from_axis_angle((1, 0, 0), 0.6).tolist())
    assert not RaiseHand.evaluate(turned)["success"]
    # At the target but not yet for hold_s: passing through is not reaching.
    assert not RaiseHand.evaluate(dict(ok, held_s=0.2, hold_s=0.4))["success"]
    assert RaiseHand.evaluate(dict(ok, held_s=0.4, hold_s=0.4))["success"]


def test_raise_hand_target_is_in_the_head_camera_view():
    """The policy must see where to go: the target's pixels show in the head camera at the policy's 56 px."""
    env = SimRobot("tora_one", "raise_hand")
    try:
        for seed in range(4):
            env.reset(seed=seed, split="all")
            img = env.render(cameras=["top"], size=(56, 56))["top"].astype(int)
            green = (img[..., 1] > 150) & (img[..., 0] < 100) & (img[..., 2] < 100)  # the target's sphere
            magenta = (img[..., 0] > 150) & (img[..., 2] > 120) & (img[..., 1] < 90)  # its roll bar
            assert green.sum() >= 4 and magenta.sum() >= 4, (seed, green.sum(), magenta.sum())
    finally:
        env.close()


def test_raise_hand_needs_the_hold_in_the_twin():
    env = SimRobot("tora_one", "raise_hand")
    try:
        st = env.reset(seed=3)
        expert = ScriptedExpert("raise_hand")
        expert.reset()
        first_at_target, success_at = None, None
        for _ in range(400):
            r = env.step(expert.act(st))
            st = env.task_state()
            if first_at_target is None and st["measure"]["held_s"] > 0:
                first_at_target = r.time
            if r.success:
                success_at = r.time
                break
        assert first_at_target is not None and success_at is not None
        # held_s counts from the first step at the target, which is one control period before it shows > 0
        assert success_at - first_at_target >= env.task.hold_s - env.control_dt - 1e-6
        assert set(st["goal"]) == {"goal_x", "goal_y", "goal_z", "goal_qx", "goal_qy", "goal_qz", "goal_qw"}
    finally:
        env.close()


def test_pack_detergent_check():
    up = [0.0, 0.0, 0.0, 1.0]
    inside = {
        "bottle_pos": [BOX_CENTER[0], BOX_CENTER[1], TABLE_Z + 0.06],
        "bottle_quat_xyzw": up,
        "bottle_speed": 0.0,
        "ee_pos": [0.3, 0.4, 1.0],
        "grasped": False,
        "box_center": [BOX_CENTER[0], BOX_CENTER[1], TABLE_Z],
    }
    assert PackDetergent.evaluate(inside)["success"]
    assert not PackDetergent.evaluate(dict(inside, grasped=True))["success"]  # still held
    on_belt = dict(inside, bottle_pos=[0.40, 0.0, TABLE_Z + 0.076])
    ev = PackDetergent.evaluate(on_belt)
    assert not ev["success"] and not ev["failed"]
    floor = dict(inside, bottle_pos=[0.4, 0.0, 0.05])
    assert PackDetergent.evaluate(floor)["failed"]


def test_insert_moisturizer_check():
    up = [0.0, 0.0, 0.0, 1.0]
    base = [0.1, 0.0, 0.0]
    ok = {
        "bottle_pos": [0.1, 0.003, MOIST_HALF + 0.002],
        "bottle_quat_xyzw": up,
        "bottle_speed": 0.0,
        "base_pos": base,
        "ee_pos": [0.1, 0.0, 0.2],
        "grasped": False,
    }
    assert InsertMoisturizer.evaluate(ok)["success"]
    assert not InsertMoisturizer.evaluate(dict(ok, bottle_pos=[0.1, 0.0, 0.2]))["success"]  # above the socket
    lying = dict(
        ok,
        bottle_pos=[0.0, -0.1, 0.016],
        bottle_quat_xyzw=quat_from_axis_angle((1, 0, 0), 1.57).tolist(),
    )
    ev = InsertMoisturizer.evaluate(lying)
    assert not ev["success"] and ev["failed"]


def test_success_check_in_sim():
    """A success state built in the physics (bottle placed in the box) passes; the start state fails."""
    env = env_for("tora_one", "pack_detergent")
    st = env.reset(seed=0)
    assert not st["success"]
    qa = env.task.bottle_q
    env.data.qpos[qa : qa + 3] = [BOX_CENTER[0], BOX_CENTER[1], TABLE_Z + 0.07]
    env.data.qpos[qa + 3 : qa + 7] = [1, 0, 0, 0]
    env.data.qvel[:] = 0
    for _ in range(10):
        env.step()
    assert env.task_state()["success"]


def test_scenes_are_the_registered_tasks():
    """Each registered task has a scene on its robot, prompting with the registry's instruction and commanding
    the registry's layout; the robot's tasks come in registry order (the first is its default)."""
    assert list(SCENES) == list(REGISTRY)
    for robot, name in TASKS:
        task, spec = make_task(name), REGISTRY[name]
        assert (task.name, task.robot.name, task.instruction) == (name, robot, spec.instruction)
        assert task.layout == (ee_layout(spec.commanded_arm) if spec.mode == MODE_EE_POSE else joint_layout(task.robot))
    assert tasks_for("tora_one") == ["raise_hand", "pack_detergent"] and tasks_for("xtrainer") == ["insert_moisturizer"]


def test_unknown_task_and_grid():
    with pytest.raises(KeyError, match="known tasks"):
        make_task("fold_laundry")
    g = Grid(center=(0, 0), rows=2, cols=3)
    assert g.train_cells() == [0, 2, 4] and g.test_cells() == [1, 3, 5]
    assert Grid(center=(0, 0), rows=2, cols=3, train_color="white").train_cells() == [1, 3, 5]
    with pytest.raises(ValueError, match="outside"):
        g.cell_center(6)
    env = env_for("tora_one", "raise_hand")
    assert not env.reset(seed=1, cell=-1, split="test")["train_cell"]


# ---------------------------------------------------------------- scripted expert success rate (no rendering)
@pytest.mark.parametrize("robot,task", TASKS)
def test_scripted_expert_success_rate(robot, task):
    env = env_for(robot, task)
    expert = ScriptedExpert(task)
    n = 20
    wins = sum(run_episode(env, expert, seed)[0]["success"] for seed in range(n))
    print(f"\nscripted expert {task}: {wins}/{n} = {wins / n:.0%}")
    assert wins / n >= 0.9


def test_determinism():
    env = env_for("xtrainer", "insert_moisturizer")
    expert = ScriptedExpert("insert_moisturizer")
    s1, t1 = run_episode(env, expert, seed=7)
    s2, t2 = run_episode(env, expert, seed=7)
    assert np.array_equal(t1, t2) and s1["measure"] == s2["measure"]
    s3 = env.reset(seed=8)
    assert s3["measure"]["bottle_pos"] != env.reset(seed=7)["measure"]["bottle_pos"]


# ---------------------------------------------------------------- commands
def test_bad_commands_refused_and_twin_holds():
    env = env_for("tora_one", "raise_hand")
    env.reset(seed=2)
    for _ in range(5):
        env.step()
    q0 = env.joint_positions().copy()
    bad = [
        np.full(8, np.nan),
        np.zeros(5),
        np.array([0.3, 0.3, 5.0, 0, 0, 0, 1, 1]),  # outside the workspace
        np.array([0.3, 0.3, 1.2, 0, 0, 0, 0, 1]),  # zero quaternion
        np.array([0.3, 0.3, 1.2, 0, 0, 0, 1, 3.0]),  # gripper outside 0..1
    ]
    for a in bad:
        r = env.step(a)
        assert not r.accepted and r.reason
    ok, why = env.apply(Command(joints={"left_joint4": 1.0}))  # joint above its upper limit 0
    assert not ok and "outside" in why
    ok, why = env.apply(Command(joints={"nope": 0.0}))
    assert not ok and "unknown" in why
    for _ in range(5):
        env.step()
    assert np.allclose(env.joint_positions(), q0, atol=2e-3)
    assert np.all(np.isfinite(env.data.qpos))


def test_ee_command_tracks():
    env = env_for("tora_one", "raise_hand")
    env.reset(seed=3)
    pos, q = env.ee_pose("left")
    target = pos + np.array([0.05, 0.0, 0.05])
    for _ in range(25):
        r = env.step(np.concatenate([target, q, [0.5]]))
        assert r.accepted
    assert np.linalg.norm(env.ee_pose("left")[0] - target) < 0.01


# ---------------------------------------------------------------- rendering
def test_headless_render():
    env = env_for("tora_one", "pack_detergent")
    env.reset(seed=0)
    imgs = env.render(size=(224, 224))
    assert set(imgs) == {"top", "left_wrist"}
    for im in imgs.values():
        assert im.shape == (224, 224, 3) and im.dtype == np.uint8 and im.std() > 5


# ---------------------------------------------------------------- operator and oracle
def test_operator_takes_over_and_hands_back():
    env = env_for("tora_one", "raise_hand")
    op = SimOperator("raise_hand", OperatorConfig(stall_s=1.0, reaction_delay_s=0.2, min_takeover_s=0.2, seed=1))
    st = env.reset(seed=4)
    op.reset()
    hold = env.commanded_action()  # a "policy" that does nothing: stalls
    engaged_steps, handed_back = 0, False
    while True:
        out = op.update(st)
        engaged_steps += out.engaged
        handed_back |= out.reason.startswith("hand back")
        r = env.step(out.action if out.engaged else hold)
        if not out.engaged:
            hold = env.commanded_action()
        st = env.task_state()
        if r.done:
            break
    assert engaged_steps > 0 and op.interventions >= 1 and handed_back
    never = SimOperator("pack_detergent", OperatorConfig(mode="never"))
    st = env.reset(seed=4)
    for _ in range(100):
        assert not never.update(st).engaged
        env.step()
        st = env.task_state()


def test_ee_delta_roundtrip():
    a = np.array([0.4, 0.2, 1.0, *quat_from_axis_angle((0, 1, 1), 0.7), 0.3])
    p0, q0 = [0.3, 0.25, 0.9], quat_from_axis_angle((1, 0, 0), 2.0)
    p, q = apply_delta(p0, q0, *ee_delta(a, p0, q0))  # what the arbiter does with the device's delta
    assert np.allclose(p, a[:3]) and quat_angle(q, a[3:7]) < 1e-6


def test_quest_hand_steers_by_eye_whatever_the_anchor():
    """The arbiter anchors the relative command at its last commanded pose, which the operator cannot see; the
    hand closes the loop on the arm's measured pose, so the arm reaches the goal from any anchor offset."""
    goal_p, goal_q = np.array([0.35, 0.3, 1.35]), quat_from_axis_angle((0, 0, 1), 0.8)
    for anchor_offset in ([0.0, 0.0, 0.0], [0.2, -0.15, 0.1]):
        anchor_p = np.array([0.3, 0.2, 1.0]) + anchor_offset
        anchor_q = quat_from_axis_angle((1, 0, 0), 0.9)  # commanded orientation, far from the arm's
        ee_p, ee_q = np.array([0.3, 0.2, 1.0]), IDENTITY_Q.copy()
        hand = QuestHand()
        for _ in range(200):
            dp, dq = hand.update(goal_p, goal_q, ee_p, ee_q)
            cmd_p, cmd_q = apply_delta(anchor_p, anchor_q, dp, dq)
            step = cmd_p - ee_p  # the arm follows its command at most 3 cm per step
            ee_p = ee_p + step * min(1.0, 0.03 / max(np.linalg.norm(step), 1e-9))
            ee_q = quat_step_towards(ee_q, cmd_q, 0.1)
        assert np.linalg.norm(ee_p - goal_p) < 0.01
        assert quat_angle(ee_q, goal_q) < 0.05


def test_oracle_labels_and_false_positives():
    o = RewardOracle()
    o.observe({"success": False, "progress": 0.3})
    o.observe({"success": True, "progress": 1.0})
    lab = o.label()
    assert lab.success and lab.reward == 1.0
    o.observe({"success": False, "progress": 0.4})
    assert o.label().reward == 0.0
    g = RewardOracle(graded=True)
    g.observe({"success": False, "progress": 0.4})
    assert g.label().reward == pytest.approx(0.4)
    fp = RewardOracle(false_positive_rate=0.3, seed=5)
    labels = []
    for _ in range(400):
        fp.observe({"success": False, "progress": 0.1})
        labels.append(fp.label().success)
    assert 0.2 < np.mean(labels) < 0.4


# ---------------------------------------------------------------- the node on a private ROS domain
def test_sim_node_topics_command_and_reset():
    import rclpy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import String

    from hiors_core import topics
    from hiors_msgs.srv import ResetSim
    from hiors_sim.sim_node import SimNode
    from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_publishers, wait_for_subscribers

    with ros_context() as ctx:
        sim = SimNode(
            context=ctx,
            parameter_overrides=[
                rclpy.parameter.Parameter("robot", value="xtrainer"),
                rclpy.parameter.Parameter("real_time_factor", value=0.0),
                rclpy.parameter.Parameter("camera_rate_hz", value=10.0),
            ],
        )
        probe = rclpy.create_node("probe", context=ctx)
        got = {"img": [], "js": [], "clock": [], "state": []}
        subs = [
            probe.create_subscription(
                Image, topics.CAMERA.format(name="top"), got["img"].append, topics.qos(topics.CAMERA)
            ),
            probe.create_subscription(
                JointState, topics.JOINT_STATES, got["js"].append, topics.qos(topics.JOINT_STATES)
            ),
            probe.create_subscription(Clock, topics.CLOCK, got["clock"].append, topics.qos(topics.CLOCK, depth=10)),
            probe.create_subscription(
                String, topics.SIM_TASK_STATE, got["state"].append, topics.qos(topics.SIM_TASK_STATE)
            ),
        ]
        cmd = probe.create_publisher(JointState, topics.CMD_JOINT, topics.qos(topics.CMD_JOINT))
        client = probe.create_client(ResetSim, topics.RESET)
        try:
            with spinning([sim, probe], context=ctx):
                for s in subs:
                    wait_for_publishers(s)
                wait_for(
                    lambda: all(len(v) > 2 for v in got.values()), 20.0, "images, joint states, clock and task state"
                )
                im = got["img"][-1]
                assert (im.height, im.width, im.encoding) == (224, 224, "rgb8")
                assert got["clock"][-1].clock.sec > 0 or got["clock"][-1].clock.nanosec > 0
                wait_for_subscribers(cmd)
                idx = list(got["js"][-1].name).index("right_joint1")
                cmd.publish(JointState(name=["right_joint1"], position=[0.5]))
                wait_for(lambda: abs(got["js"][-1].position[idx] - 0.5) < 0.02, 20.0, "right_joint1 to reach 0.5 rad")
                assert client.wait_for_service(timeout_sec=10.0)
                fut = client.call_async(ResetSim.Request(seed=3, task="", cell=2))
                wait_for(fut.done, 20.0, "reset service")
                assert fut.result().success and fut.result().cell == 2
                wait_for(lambda: json.loads(got["state"][-1].data)["cell"] == 2, 20.0, "task state after reset")
                wait_for(lambda: abs(got["js"][-1].position[idx]) < 0.1, 20.0, "joints back at rest after reset")
                bad = client.call_async(ResetSim.Request(seed=1, task="fold_laundry", cell=-1))
                wait_for(bad.done, 20.0, "reset with a bad task")
                assert not bad.result().success and "known tasks" in bad.result().message
        finally:
            probe.destroy_node()
            sim.destroy_node()
