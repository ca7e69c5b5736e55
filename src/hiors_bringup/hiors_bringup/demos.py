"""Scripted initial demonstrations: the simulated operator's expert drives the twin, recorded as episode bags.

They are written with the same episode log and schema as online episodes (every step human-driven and sampled,
as the person's demonstrations would be), so the learner loads them like any other bag. A demonstration goes on
for `hold_s` after the task succeeds, the expert holding the goal, so that staying at the goal is in the labels
(a policy that never saw it drifts off the target). A demonstration in which the expert failed is written with a
failure label (reward 0): on disk like every episode, never trained on nor counted in normalisation statistics.
Frames carry the task's goal entries too (`state_layout(..., goal=True)`): a camera-only policy picks its own
entries by name, a goal-state policy (the twin's privileged variant) finds its goal there.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hiors_core.episode_log import EpisodeLog
from hiors_core.schema import AUTHORITY_HUMAN, EpisodeData, EpisodeMeta, Executed, Frame, Label
from hiors_sim.policy_view import policy_state

DEMO_HOLD_S = 0.6  # s recorded after success while the expert holds the goal


def record_demos(
    robot: str,
    task: str,
    count: int,
    out_dir: str | Path,
    seed: int = 10_000,
    image_size: int = 224,
    hold_s: float = DEMO_HOLD_S,
) -> int:
    """Record `count` scripted demonstrations from seeds seed, seed + 1, ... (initial states on the grid's train
    cells); returns how many succeeded."""
    from hiors_policy.layout import action_layout, state_layout
    from hiors_sim.env import SimRobot
    from hiors_sim.expert import ScriptedExpert

    log = EpisodeLog(out_dir)
    env = SimRobot(robot, task)
    names = state_layout(robot, task, goal=True)
    layout = action_layout(robot, task)
    dt_ns = int(1e9 / env.spec.control_rate_hz)
    hold_steps = int(round(hold_s * env.spec.control_rate_hz))
    succeeded = 0
    try:
        for k in range(count):
            env.reset(seed=seed + k, task=task, split="train")
            expert = ScriptedExpert(task, seed=seed + k)
            expert.reset()
            meta = EpisodeMeta(
                episode_id=log.new_episode_id("demo"),
                robot=robot,
                task=task,
                instruction=env.task.instruction,
                control_mode=layout.mode,
                action_names=layout.names,
                state_names=names,
                camera_names=tuple(env.spec.cameras),
                control_rate_hz=env.spec.control_rate_hz,
            )
            ep = EpisodeData(meta=meta)
            t0 = time.time_ns()
            success, held = False, 0
            for step in range(int(env.task.time_limit * env.spec.control_rate_hz) + hold_steps):
                stamp = t0 + step * dt_ns
                state = policy_state(env, names)
                images = env.render(size=(image_size, image_size))
                ep.frames.append(Frame(step, stamp - 1, images, state, names, meta.instruction, step))
                action = np.asarray(expert.act(env.task_state()), dtype=np.float32)
                result = env.step(action)
                ep.executed.append(Executed(step, stamp, action, AUTHORITY_HUMAN, "scripted_demo", 0, False, True))
                success = success or result.success
                if success:
                    held += 1
                    if held > hold_steps or (result.done and not result.success):
                        break
                elif result.done:
                    break
            # A person labels the outcome: the goal held at the end.
            success = success and bool(env.task_state().get("success"))
            ep.label = Label(reward=1.0 if success else 0.0, success=success, source="oracle", stamp_ns=time.time_ns())
            log.write_episode(ep)
            succeeded += int(success)
    finally:
        env.close()
    return succeeded
