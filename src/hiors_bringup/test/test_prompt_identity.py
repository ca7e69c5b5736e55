"""One prompt per task: the token ids a task's scripted demonstrations, its online episodes and its evaluation
feed the model are identical, for every task, and the tiny tokenizer was trained on that prompt.

- demonstrations: `record_demos` writes the bag the learner trains on (`training_samples` -> `collate`);
- online episodes: the capture node's instruction (`task_instruction`, its pure part) is what every Observation,
  and so every recorded frame the learner trains on, carries (`collate`);
- evaluation: `hiors eval`'s `run_attempt` gives the policy its observations (`infer`).
"""

import numpy as np
import pytest

from hiors_core.episode_log import EpisodeLog
from hiors_core.labelling import training_samples
from hiors_core.tasks import TASKS
from hiors_policy import build_tiny_policy
from hiors_policy.layout import action_layout, task_instruction
from hiors_policy.tokenizer import task_corpus

TASK_NAMES = [(t.robot, t.name) for t in TASKS.values()]


def _spy_prefix(policy) -> list:
    """Record the input_ids of every batch the policy builds for its model (training and inference alike)."""
    seen, prefix = [], policy._prefix

    def spy(*args, **kwargs):
        batch = prefix(*args, **kwargs)
        seen.extend(np.asarray(row) for row in batch["input_ids"])
        return batch

    policy._prefix = spy
    return seen


class _EvalModel:
    """The tiny policy as `run_attempt` calls it, keeping every observation it was given."""

    def __init__(self, policy):
        self.policy, self.observations = policy, []

    def infer(self, obs):
        self.observations.append(obs)
        return self.policy.infer(obs)


def _one_row(rows) -> np.ndarray:
    assert rows and all(np.array_equal(r, rows[0]) for r in rows), "one path fed the model more than one prompt"
    return rows[0]


@pytest.mark.parametrize("robot,task", TASK_NAMES)
def test_demos_online_episodes_and_eval_feed_the_same_prompt(robot, task, tmp_path):
    from hiors_bringup.demos import record_demos
    from hiors_bringup.evaluate import run_attempt
    from hiors_sim.env import SimRobot
    from hiors_teleop.safety import Limits

    policy = build_tiny_policy(robot, task, seed=0, chunk_size=4)
    seen = _spy_prefix(policy)
    instruction = TASKS[task].instruction

    # Demonstrations: the recorded bag, as the learner batches it.
    assert record_demos(robot, task, 1, tmp_path, image_size=32) == 1
    demo = next(EpisodeLog(tmp_path).iter_episodes())
    samples = training_samples(demo, policy.horizon)[:3]
    demo_ids = _one_row([*policy.collate(samples)["input_ids"]])

    # Online episodes: recorded frames carry the capture node's instruction.
    online = [{**vars(s), "instruction": task_instruction(robot, task)} for s in samples]
    online_ids = _one_row([*policy.collate(online)["input_ids"]])

    # Evaluation: what `hiors eval` gives the policy, through inference.
    env = SimRobot(robot, task, time_limit=0.2)
    model = _EvalModel(policy)
    seen.clear()
    try:
        run_attempt(env, model, Limits.for_robot(env.spec, action_layout(robot, task)), 4, 32, 0, 0)
    finally:
        env.close()
    assert model.observations
    eval_ids = _one_row(seen)

    assert np.array_equal(demo_ids, online_ids) and np.array_equal(demo_ids, eval_ids)
    assert {demo.meta.instruction, *(o.instruction for o in model.observations)} == {instruction}
    # The policy's own default prompt (a sample without an instruction) is the same one.
    assert np.array_equal(policy.prompt.encode(policy.config.instruction)[0], demo_ids)
    # The tokenizer was trained on it: in its training strings, and far fewer tokens than characters.
    assert instruction in task_corpus()
    assert len(policy.prompt.text_ids(instruction)) < len(instruction) / 3
