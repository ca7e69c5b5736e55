"""A tiny stand-in with the Pi0Policy training interface, for tests of the pure learner parts."""

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save


class FakePolicy:
    def __init__(self, state_dim=3, horizon=4, action_dim=8, seed=0):
        torch.manual_seed(seed)
        self.horizon, self.action_dim = horizon, action_dim
        self.model = torch.nn.Sequential(
            torch.nn.Linear(state_dim, 16), torch.nn.Tanh(), torch.nn.Linear(16, horizon * action_dim)
        )

    def collate(self, samples):
        return {
            "state": torch.tensor(np.stack([s.state for s in samples]), dtype=torch.float32),
            "actions": torch.tensor(np.stack([s.action_label for s in samples]), dtype=torch.float32),
        }

    def loss(self, batch, weights):
        pred = self.model(batch["state"]).view(-1, self.horizon, self.action_dim)
        return ((pred - batch["actions"]) ** 2).mean(dim=(1, 2)) * weights

    def to_safetensors_bytes(self):
        return st_save({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()})

    def write_weights_file(self, path, durable=True):
        """As Pi0Policy's: the weights as a safetensors file, atomically; (sha256, size)."""
        from hiors_core.weight_sync import sha256_hex, write_atomic

        blob = self.to_safetensors_bytes()
        write_atomic(path, blob)
        return sha256_hex(blob), len(blob)

    def load_safetensors_bytes(self, blob):
        self.model.load_state_dict(st_load(blob))
