"""The policy's view of an in-process twin (scripted demonstrations, `hiors eval`): state in the policy's layout.

On the running graph the capture node builds the same vector from JointState and end-effector poses.
"""

from __future__ import annotations

import numpy as np


def policy_state(env, names) -> np.ndarray:
    """The twin's state as the float32 vector named by `names` (`hiors_policy.layout.state_layout`)."""
    all_names, values = env.state_vector()
    lookup = dict(zip(all_names, values, strict=True))
    lookup.update({f"{a.name}_gripper": env.gripper_opening(a.name) for a in env.spec.arms})
    missing = [n for n in names if n not in lookup]
    if missing:
        raise KeyError(f"the twin has no state entries {missing}")
    return np.array([lookup[n] for n in names], dtype=np.float32)
