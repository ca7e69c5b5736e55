"""Damped-least-squares inverse kinematics on the end-effector site, with a null-space posture term.

The solver works on its own `MjData`, so it never disturbs the simulation, and it is seeded with the previously
*commanded* joints (not the measured ones): tracking errors of the controller then do not feed back into the
targets, and successive solutions stay smooth.
"""

from __future__ import annotations

import mujoco
import numpy as np

from hiors_core.rotations import from_mujoco, quat_angle, quat_conj, quat_mul, quat_to_rotvec, quat_unit


class ArmIK:
    def __init__(
        self,
        model: mujoco.MjModel,
        joint_names,
        site: str,
        posture=None,
        damping: float = 0.03,
        rot_weight: float = 0.4,
        posture_gain: float = 0.05,
        iterations: int = 12,
        max_dq: float = 0.25,
    ):
        self.model = model
        self.data = mujoco.MjData(model)
        self.joint_ids = [model.joint(j).id for j in joint_names]
        self.qadr = np.array([model.jnt_qposadr[j] for j in self.joint_ids])
        self.dadr = np.array([model.jnt_dofadr[j] for j in self.joint_ids])
        self.lower = model.jnt_range[self.joint_ids, 0].copy()
        self.upper = model.jnt_range[self.joint_ids, 1].copy()
        self.site_id = model.site(site).id
        n = len(self.joint_ids)
        self.posture = np.zeros(n) if posture is None else np.asarray(posture, dtype=float)
        self.damping = damping
        self.rot_weight = rot_weight
        self.posture_gain = posture_gain
        self.iterations = iterations
        self.max_dq = max_dq
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def forward(self, q) -> tuple[np.ndarray, np.ndarray]:
        """Site position and (x, y, z, w) orientation for arm joints q (other joints at their rest value)."""
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self.site_id])
        return self.data.site_xpos[self.site_id].copy(), from_mujoco(quat)

    def solve(self, q_seed, pos, quat_xyzw) -> tuple[np.ndarray, float, float]:
        """Joints reaching (pos, quat) from q_seed; returns (q, position error m, orientation error rad)."""
        q = np.clip(np.asarray(q_seed, dtype=float).copy(), self.lower, self.upper)
        pos = np.asarray(pos, dtype=float)
        target_q = quat_unit(quat_xyzw)
        n = len(q)
        w = np.array([1, 1, 1] + [self.rot_weight] * 3)
        e_p, e_r = np.inf, np.inf
        for _ in range(self.iterations):
            x, cur = self.forward(q)
            err = np.concatenate([pos - x, quat_to_rotvec(quat_mul(target_q, quat_conj(cur)))])
            e_p, e_r = float(np.linalg.norm(err[:3])), float(np.linalg.norm(err[3:]))
            if e_p < 2e-4 and e_r < 2e-3:
                break
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site_id)
            jac = np.vstack([self._jacp[:, self.dadr], self._jacr[:, self.dadr]]) * w[:, None]
            jjt = jac @ jac.T + (self.damping**2) * np.eye(6)
            pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))
            dq = pinv @ (err * w)
            # Posture term in the null space: pulls the redundant DoF (and a 6-DoF arm's slack) to a rest pose.
            dq += (np.eye(n) - pinv @ jac) @ (self.posture_gain * (self.posture - q))
            norm = np.linalg.norm(dq)
            if norm > self.max_dq:
                dq *= self.max_dq / norm
            q = np.clip(q + dq, self.lower, self.upper)
        x, cur = self.forward(q)
        return q, float(np.linalg.norm(pos - x)), quat_angle(cur, target_q)
