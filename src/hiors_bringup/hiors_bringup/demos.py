"""Scripted initial demonstrations: the simulated operator's expert drives the twin, recorded as episode bags.

They are written with the same episode log and schema as online episodes (every step human-driven and sampled,
as the person's demonstrations would be), so the learner loads them like any other bag.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hiors_core.episode_log import EpisodeLog
from hiors_core.schema import AUTHORITY_HUMAN, EpisodeData, EpisodeMeta, Executed, Frame, Label

from .sim_io import policy_state


def record_demos(
    robot: str, task: str, count: int, out_dir: str | Path, seed: int = 10_000, image_size: int = 224
) -> int:
    from hiors_policy.layout import action_layout, state_layout
    from hiors_sim.env import SimRobot
    from hiors_sim.expert import ScriptedExpert

    log = EpisodeLog(out_dir)
    env = SimRobot(robot, task)
    names = state_layout(robot, task)
    layout = action_layout(robot, task)
    dt_ns = int(1e9 / env.spec.control_rate_hz)
    written = 0
    try:
        for k in range(count):
            env.reset(seed=seed + k, task=task)
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
            success = False
            for step in range(int(env.task.time_limit * env.spec.control_rate_hz)):
                stamp = t0 + step * dt_ns
                state = policy_state(env, names)
                images = env.render(size=(image_size, image_size))
                ep.frames.append(Frame(step, stamp - 1, images, state, names, meta.instruction, step))
                action = np.asarray(expert.act(env.task_state()), dtype=np.float32)
                result = env.step(action)
                ep.executed.append(Executed(step, stamp, action, AUTHORITY_HUMAN, "scripted_demo", 0, False, True))
                if result.success:
                    success = True
                    break
                if result.done:
                    break
            ep.label = Label(reward=1.0 if success else 0.0, success=success, source="oracle", stamp_ns=time.time_ns())
            log.write_episode(ep)
            written += 1
    finally:
        env.close()
    return written
