"""The simulated operator steps in before a policy failure and leaves a good policy alone (pure, no rclpy)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from hiors_core.rotations import quat_from_axis_angle
from hiors_sim.env import SimRobot
from hiors_sim.operator import OperatorConfig, SimOperator
from hiors_sim.rollout import PerturbedExpert, rollout, summary

PICK = [("xtrainer", "insert_moisturizer"), ("tora_one", "pack_detergent")]
_ENVS: dict = {}


def env_for(robot, task) -> SimRobot:
    if (robot, task) not in _ENVS:
        _ENVS[(robot, task)] = SimRobot(robot, task)
    return _ENVS[(robot, task)]


class Misjudging(PerturbedExpert):
    """The expert reaching for a spot beside the object (a fixed error): it knocks the object over."""

    def __init__(self, task, offset):
        super().__init__(task, pos_err_m=0.0)
        self.fixed = np.asarray(offset, dtype=float)

    def reset(self, env) -> None:
        super().reset(env)
        self.offset = self.fixed


@pytest.mark.parametrize(
    "robot,task,offset",
    [("xtrainer", "insert_moisturizer", [0.02, 0.02, 0.0]), ("tora_one", "pack_detergent", [0.025, 0, 0])],
)
def test_takes_over_before_a_misjudged_grasp_knocks_the_object_over(robot, task, offset):
    env = env_for(robot, task)
    policy = Misjudging(env.task, offset)
    alone = rollout(env, SimOperator(env.task, OperatorConfig(mode="never")), policy, seed=3)
    assert alone.end == "bottle knocked over"  # the failure the operator has to prevent
    watched = rollout(env, SimOperator(env.task, OperatorConfig()), policy, seed=3)
    # Same scene, same policy: identical until the takeover, which comes before the object falls.
    assert watched.interventions >= 1 and 0 <= watched.first_takeover_s < alone.end_s
    assert watched.first_reason.startswith("take over: grasp")
    assert watched.end != "bottle knocked over"


def _state(robot, task, seed=0) -> dict:
    env = env_for(robot, task)
    env.reset(seed=seed)
    return copy.deepcopy(env.task_state())


def _run(op: SimOperator, states: list[dict]) -> list:
    return [op.update(st) for st in states]


def _later(st: dict, dt: float, **measure) -> dict:
    s = copy.deepcopy(st)
    s["time"] += dt
    s["step"] += round(dt * 25)
    s["measure"].update(measure)
    return s


@pytest.mark.parametrize("robot,task", PICK)
def test_tipping_or_pushed_object_is_taken_over_after_a_reaction_delay(robot, task):
    st = _state(robot, task)
    m = st["measure"]
    tilted = quat_from_axis_angle((1, 0, 0), 0.3).tolist()
    pushed = (np.asarray(m["bottle_pos"]) + [0.012, 0.0, 0.0]).tolist()  # 0.3 m/s at 25 Hz
    for change, kind in (({"bottle_quat_xyzw": tilted}, "object tipping"), ({"bottle_pos": pushed}, "object pushed")):
        op = SimOperator(task, OperatorConfig(reaction_delay_s=0.2))
        states = [_later(st, 0.04 * i) for i in range(3)] + [_later(st, 0.04 * i, **change) for i in range(3, 12)]
        outs = _run(op, states)
        first = next(i for i, o in enumerate(outs) if o.engaged)
        assert outs[first].reason.startswith(f"take over: {kind}")
        assert states[first]["time"] - states[3]["time"] == pytest.approx(0.2, abs=0.041)  # noticed, then a reaction
        assert outs[first].action is not None and len(outs[first].action) == op.task.layout.dim


@pytest.mark.parametrize("robot,task", PICK)
def test_policy_opening_the_hand_on_a_held_object_away_from_its_place(robot, task):
    op = SimOperator(task, OperatorConfig())
    held = _later(_state(robot, task), 0.0, grasped=True)
    held["proprio"]["gripper"][op.task.arm] = 0.3
    op.watch.observe(held)
    assert op.trouble(held) == ""  # holding it, hand closed: fine
    letting_go = _later(held, 0.04)
    letting_go["proprio"]["gripper"][op.task.arm] = 0.9
    op.watch.observe(letting_go)
    assert op.trouble(letting_go).startswith("about to drop")


def test_wild_arm_and_shaky_hand_near_the_object():
    st = _state("xtrainer", "insert_moisturizer")
    arm = "right"
    obj = np.asarray(st["measure"]["bottle_pos"])
    op = SimOperator("insert_moisturizer", OperatorConfig())
    # A hand sweeping across the table at 1.5 m/s, far from the object.
    for i in range(3):
        s = copy.deepcopy(st)
        s["time"] = 0.04 * i
        s["proprio"]["ee"][arm]["pos"] = (obj + [0.4, 0.06 * i, 0.2]).tolist()
        op.watch.observe(s)
    assert op.trouble(s).startswith("wild arm: right hand at 1.50 m/s")
    # A hand jittering 12 cm above the object (its tiny moves are slow, but they reverse every frame).
    op = SimOperator("insert_moisturizer", OperatorConfig())
    why = ""
    for i in range(8):
        s = copy.deepcopy(st)
        s["time"] = 0.04 * i
        s["proprio"]["ee"][arm]["pos"] = (obj + [0.012 * (-1) ** i, 0.0, 0.12]).tolist()
        op.watch.observe(s)
        why = op.trouble(s)
    assert why.startswith("grasp: right hand shaking")
    # The same hand held still there is a person's business only if nothing else is wrong.
    op = SimOperator("insert_moisturizer", OperatorConfig())
    for i in range(8):
        s = copy.deepcopy(st)
        s["time"] = 0.04 * i
        s["proprio"]["ee"][arm]["pos"] = (obj + [0.0, 0.0, 0.12]).tolist()
        op.watch.observe(s)
        assert op.trouble(s) == ""


@pytest.mark.parametrize("robot,task", [*PICK, ("tora_one", "raise_hand")])
def test_a_good_policy_keeps_control(robot, task):
    """The operator's share can fall: the expert as the policy is left alone on nearly every episode."""
    env = env_for(robot, task)
    op = SimOperator(env.task, OperatorConfig())
    outs = [rollout(env, op, PerturbedExpert(env.task, pos_err_m=0.0), seed=s) for s in range(6)]
    s = summary(outs)
    assert s["success"] == 6
    assert s["with_intervention"] <= 1 and s["human_share"] < 0.15  # an operator who took over every grasp: ~0.5


@pytest.mark.parametrize(
    "robot,task,handback", [("tora_one", "raise_hand", 0.1), ("xtrainer", "insert_moisturizer", 0.04)]
)
def test_hands_back_when_on_track(robot, task, handback):
    """A policy that stops (stall) gets help, then control back once the operator has made progress."""
    env = env_for(robot, task)
    op = SimOperator(env.task, OperatorConfig(handback_progress=handback, min_takeover_s=0.2, seed=1))
    st = env.reset(seed=4)
    op.reset()
    hold = env.commanded_action()
    reasons = []
    for _ in range(int(6.0 / env.control_dt)):
        out = op.update(st)
        reasons.append(out.reason)
        env.step(out.action if out.engaged else hold)
        if not out.engaged:
            hold = env.commanded_action()
        st = env.task_state()
        if any(r.startswith("hand back") for r in reasons):
            break
    took = [r for r in reasons if r.startswith("take over")]
    assert took and took[0].startswith("take over: stall")
    assert any(r.startswith("hand back") for r in reasons)
    assert not st["measure"].get("grasped") and not st.get("failed")


def test_out_of_time_the_operator_finishes():
    st = _state("tora_one", "raise_hand")
    op = SimOperator("raise_hand", OperatorConfig(patience=0.6, stall_s=100.0))
    early = _later(st, 5.0)
    late = _later(st, 6.5)
    for s in (st, early):
        op.watch.observe(s)
        assert not op.trouble(s).startswith("out of time")
    op.watch.observe(late)
    assert op.trouble(late).startswith("out of time")
    with pytest.raises(ValueError, match="patience"):
        OperatorConfig(patience=0.0)


def test_every_knob_is_a_described_node_parameter():
    """The node declares one parameter per OperatorConfig field, with its default and the meaning in KNOBS."""
    import dataclasses

    from hiors_sim.operator import KNOBS

    assert list(KNOBS) == [f.name for f in dataclasses.fields(OperatorConfig)]
