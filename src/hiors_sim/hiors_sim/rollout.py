"""In-process episodes on a twin with the simulated operator watching: does it step in before the policy fails?
(`hiors_bench.operator_bench` runs them as a benchmark.)

Runs episodes in process (no ROS graph) on `SimRobot`: a driver (the "policy") produces a chunk of actions, the
first `k_auto` are executed one per control step, and `SimOperator` watches every step and takes over as it does
in the graph. Counts the episodes that failed (knocked over, dropped, or out of time) without any intervention:
a failure the operator let happen teaches nothing and costs an episode.

Drivers:
  * `perturbed`: the scripted expert seeing the object (or target) displaced by a per-episode error of
    `pos_err_m` per axis (re-planning every step): a policy that misjudges where things are, the way a partly
    trained one does (it reaches beside the object and knocks it over); `perturbed:0` is a good policy;
  * `tiny`: the untrained tiny pi0 (`hiors_policy.policy.make_policy("tiny:<robot>:<task>")`) seeing the twin as
    `hiors eval` does (needs torch; imported only then).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .env import SimRobot
from .expert import ScriptedExpert
from .operator import SimOperator

K_AUTO = 12  # policy steps executed per chunk (the arbiter's k_auto in config/*.yaml)


@dataclass(frozen=True)
class Outcome:
    seed: int
    success: bool
    failed: bool  # ended without success (knocked over, dropped, or out of time)
    end: str  # the task's failure reason, "success" or "time limit"
    interventions: int
    human_share: float
    first_takeover_s: float  # -1: never
    first_reason: str = ""  # why the operator first took over
    end_s: float = 0.0  # when the episode ended

    @property
    def unattended_failure(self) -> bool:
        return self.failed and self.interventions == 0


class PerturbedExpert:
    """The scripted expert misjudging the scene by a per-episode offset (see the module docstring)."""

    KEYS = ("bottle_pos", "target_pos")

    def __init__(self, task, pos_err_m: float = 0.03, seed: int = 0, k: int = 1):
        self.expert = ScriptedExpert(task, seed=seed)
        self.pos_err_m, self.k = pos_err_m, k
        self.rng = np.random.default_rng(seed)
        self.offset = np.zeros(3)

    def reset(self, env) -> None:
        self.expert.reset()
        self.offset = self.rng.normal(0.0, self.pos_err_m, 3)

    def chunk(self, env) -> list[np.ndarray]:
        st = copy.deepcopy(env.task_state())
        for key in self.KEYS:
            if key in st["measure"]:
                st["measure"][key] = (np.asarray(st["measure"][key]) + self.offset).tolist()
        return [self.expert.act(st) for _ in range(self.k)]


class TinyPolicy:
    """A pi0 through the arbiter's limits, as `hiors eval` runs it: the untrained tiny one, or a checkpoint folder
    (e.g. a `hiors up` run's `policy/`: untrained, with its demonstrations' normalisation statistics)."""

    def __init__(self, robot: str, task: str, seed: int = 0, k: int = K_AUTO, image_size: int = 224, path: str = ""):
        from hiors_policy.checkpoint import make_policy
        from hiors_policy.layout import state_layout
        from hiors_teleop.safety import Limits

        from .tasks import make_task

        self.model = make_policy(path or f"tiny:{robot}:{task}", seed=seed)
        self.names = state_layout(robot, task)
        t = make_task(task)
        self.limits = Limits.for_robot(t.robot, t.layout)  # the task's layout is the arbiter's
        self.k, self.image_size = k, image_size

    def reset(self, env) -> None:
        self.model.reset()

    def chunk(self, env) -> list[np.ndarray]:
        from hiors_policy.policy import PolicyInput
        from hiors_teleop.safety import make_safe

        from .policy_view import policy_state

        obs = PolicyInput(
            env.render(size=(self.image_size, self.image_size)),
            policy_state(env, self.names),
            env.task.instruction,
            self.names,
        )
        prev, out = np.asarray(env.commanded_action(), dtype=np.float64), []
        for a in self.model.infer(obs)[: self.k]:
            prev = make_safe(a, prev, self.limits).action
            out.append(prev)
        return out


def rollout(env: SimRobot, op: SimOperator, driver, seed: int, cell: int = -1) -> Outcome:
    """One episode: the driver's chunks, the operator's actions while it is engaged."""
    st = env.reset(seed=seed, cell=cell)
    op.reset()
    driver.reset(env)
    before = op.interventions  # the operator counts over its lifetime
    queue: list = []
    human = steps = 0
    first, why = -1.0, ""
    while True:
        out = op.update(st)
        if out.engaged:
            action, queue = out.action, []  # the policy's chunk is dropped; a fresh one once handed back
            human += 1
            if first < 0:
                first, why = st["time"], out.reason
        else:
            if not queue:
                queue = list(driver.chunk(env))
            action = queue.pop(0)
        r = env.step(action)
        steps += 1
        st = env.task_state()
        if r.done:
            break
    end = "success" if st["success"] else (st.get("failure_reason") or "time limit")
    return Outcome(
        seed,
        bool(st["success"]),
        not st["success"],
        end,
        op.interventions - before,
        human / steps,
        first,
        why,
        st["time"],
    )


def summary(outcomes: list[Outcome]) -> dict:
    n = len(outcomes)
    return {
        "episodes": n,
        "success": sum(o.success for o in outcomes),
        "failed": sum(o.failed for o in outcomes),
        "failed_no_intervention": sum(o.unattended_failure for o in outcomes),
        "with_intervention": sum(o.interventions > 0 for o in outcomes),
        "human_share": sum(o.human_share for o in outcomes) / max(n, 1),
    }
