"""Image and state/action preprocessing without torchvision, and normalisation statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hiors_core.errors import BadInputError, ConfigError


def images_to_tensor(images: list[np.ndarray], size: int) -> torch.Tensor:
    """HxWx3 uint8 RGB images -> (N, 3, size, size) float32 in [-1, 1]: resize keeping the aspect ratio
    (bilinear, antialiased), then pad the short side symmetrically with black (-1)."""
    out = torch.full((len(images), 3, size, size), -1.0, dtype=torch.float32)
    for i, img in enumerate(images):
        a = np.asarray(img)
        if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
            raise BadInputError(f"image {i} has shape {a.shape}, expected HxWx3")
        if a.dtype != np.uint8:
            raise BadInputError(f"image {i} has dtype {a.dtype}, expected uint8")
        h, w = a.shape[:2]
        if not a.flags.writeable or not a.flags.c_contiguous:  # (bag frames are read-only views: torch warns)
            a = np.array(a, order="C")
        t = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255.0
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        if (nh, nw) != (h, w):
            t = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
        top, left = (size - nh) // 2, (size - nw) // 2
        out[i, :, top : top + nh, left : left + nw] = t[0] * 2.0 - 1.0
    return out


def pad_last(x: torch.Tensor, dim: int) -> torch.Tensor:
    if x.shape[-1] > dim:
        raise ConfigError(f"vector of size {x.shape[-1]} exceeds the model's maximum {dim}")
    return F.pad(x, (0, dim - x.shape[-1]))


@dataclass
class NormStats:
    """Mean/std of the (real-dimension) state and actions; x_norm = (x - mean) / (std + 1e-8)."""

    state_mean: np.ndarray
    state_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray

    EPS = 1e-8
    # Floor of a standard deviation computed from data (metres, radians, gripper opening): a dimension that never
    # moved in the data (a gripper held open) would otherwise turn any later change into a huge normalised value.
    MIN_STD = 1e-2

    @classmethod
    def from_data(cls, states: np.ndarray, actions: np.ndarray, min_std: float = MIN_STD) -> NormStats:
        """Mean and (floored) standard deviation per dimension of states (N, S) and actions (M, D)."""
        states, actions = np.asarray(states, np.float64), np.asarray(actions, np.float64)
        if states.ndim != 2 or actions.ndim != 2 or not len(states) or not len(actions):
            raise ConfigError(
                f"norm stats need non-empty (N, S) states and (M, D) actions, got {states.shape} and {actions.shape}"
            )
        return cls(
            states.mean(0),
            np.maximum(states.std(0), min_std),
            actions.mean(0),
            np.maximum(actions.std(0), min_std),
        )

    @classmethod
    def identity(cls, state_dim: int, action_dim: int) -> NormStats:
        return cls(
            np.zeros(state_dim, np.float32),
            np.ones(state_dim, np.float32),
            np.zeros(action_dim, np.float32),
            np.ones(action_dim, np.float32),
        )

    def __post_init__(self):
        for name in ("state_mean", "state_std", "action_mean", "action_std"):
            v = np.asarray(getattr(self, name), dtype=np.float32).reshape(-1)
            if not np.all(np.isfinite(v)):
                raise ConfigError(f"norm stats {name} has non-finite values")
            setattr(self, name, v)
        if self.state_mean.shape != self.state_std.shape or self.action_mean.shape != self.action_std.shape:
            raise ConfigError("norm stats mean/std shapes differ")

    def check_dims(self, state_dim: int, action_dim: int) -> None:
        if self.state_mean.size != state_dim or self.action_mean.size != action_dim:
            raise ConfigError(
                f"norm stats are for state {self.state_mean.size} / action {self.action_mean.size} dims, "
                f"the policy has {state_dim} / {action_dim}"
            )

    def norm_state(self, s: torch.Tensor) -> torch.Tensor:
        m, sd = torch.as_tensor(self.state_mean), torch.as_tensor(self.state_std)
        return (s - m.to(s)) / (sd.to(s) + self.EPS)

    def norm_action(self, a: torch.Tensor) -> torch.Tensor:
        m, sd = torch.as_tensor(self.action_mean), torch.as_tensor(self.action_std)
        return (a - m.to(a)) / (sd.to(a) + self.EPS)

    def unnorm_action(self, a: np.ndarray) -> np.ndarray:
        return (a * (self.action_std + self.EPS) + self.action_mean).astype(np.float32)

    def to_json(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("state_mean", "state_std", "action_mean", "action_std")}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        try:
            d = json.loads(Path(path).read_text())
            return cls(d["state_mean"], d["state_std"], d["action_mean"], d["action_std"])
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise ConfigError(f"{path}: unreadable norm stats: {e}") from None
