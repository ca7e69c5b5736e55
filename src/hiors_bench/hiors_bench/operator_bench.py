"""Does the simulated operator step in before the policy fails? `python -m hiors_bench.operator_bench`.

Runs `hiors_sim.rollout` episodes (no ROS graph) for each robot/task case and driver, and prints how many failed
without any intervention: a failure the operator let happen teaches nothing and costs an episode.
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace

from hiors_sim.env import SimRobot
from hiors_sim.operator import OperatorConfig, SimOperator
from hiors_sim.rollout import PerturbedExpert, TinyPolicy, rollout, summary


def run(robot: str, task: str, driver: str = "perturbed", episodes: int = 20, seed: int = 0, **operator) -> list:
    env = SimRobot(robot, task)
    op = SimOperator(env.task, OperatorConfig(seed=seed, **operator))
    if driver == "perturbed":
        d = PerturbedExpert(env.task, seed=seed)
    elif driver.startswith("perturbed:"):
        d = PerturbedExpert(env.task, pos_err_m=float(driver.split(":")[1]), seed=seed)
    elif driver == "tiny":
        d = TinyPolicy(robot, task, seed=seed)
    elif driver.startswith("policy:"):
        d = TinyPolicy(robot, task, seed=seed, path=driver.split(":", 1)[1].format(robot=robot, task=task))
    else:
        raise ValueError(f"driver must be perturbed[:<pos_err_m>], tiny or policy:<folder>, got {driver!r}")
    return [rollout(env, op, d, seed=seed * 1000 + i) for i in range(episodes)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--driver",
        default="perturbed",
        help="perturbed[:<pos_err_m>] | tiny | policy:<folder> ({robot}, {task} filled in)",
    )
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", default="xtrainer/insert_moisturizer,tora_one/raise_hand,tora_one/pack_detergent")
    ap.add_argument("--set", action="append", default=[], help="operator knob, e.g. --set reaction_delay_s=0.6")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per episode")
    a = ap.parse_args(argv)
    types = {f.name: f.type for f in fields(OperatorConfig)}
    knobs = {}
    for kv in a.set:
        k, v = kv.split("=", 1)
        knobs[k] = {"str": str, "int": int}.get(str(types.get(k)), float)(v)
    replace(OperatorConfig(), **knobs)  # an unknown knob fails before any episode
    for case in a.cases.split(","):
        robot, task = case.split("/")
        outs = run(robot, task, a.driver, a.episodes, a.seed, **knobs)
        if a.verbose:
            for o in outs:
                print(f"  {o}")
        s = summary(outs)
        print(
            f"{robot}/{task} ({a.driver}): {s['episodes']} episodes, success {s['success']}, failed {s['failed']}, "
            f"failed without intervention {s['failed_no_intervention']}, with intervention {s['with_intervention']}, "
            f"operator share {s['human_share']:.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
