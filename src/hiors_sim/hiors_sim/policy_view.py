"""The policy's view of an in-process twin (scripted demonstrations, `hiors eval`, benchmarks).

The state goes through the capture node's own mapping (`hiors_policy.layout.assemble_state`), fed with what the
sim node publishes: `JointState` (`spec.joint_names`, `env.joint_positions()`) and one end-effector `PoseStamped`
per arm (`env.ee_pose`, quaternion as xyzw). So an in-process evaluation sees the vector the running graph sees.
"""

from __future__ import annotations

import numpy as np


def policy_state(env, names) -> np.ndarray:
    """The twin's state as the float32 vector named by `names` (`hiors_policy.layout.state_layout`); goal
    entries (goal-state policies) come from the twin's task."""
    from hiors_policy.layout import assemble_state

    joints = dict(zip(env.spec.joint_names, env.joint_positions(), strict=True))
    poses = {}
    for arm in env.spec.arms:
        pos, quat = env.ee_pose(arm.name)
        poses[arm.name] = (*pos, *quat)
    return assemble_state(names, joints, poses, goal=env.task.goal_values(env.measurement()))
