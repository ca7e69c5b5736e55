"""The learner's episode buffer: deduplicated by episode id, re-filtered when the threshold m rises.

Pure numpy. Episodes below the current m leave the training set (they stay known, so they are never added
twice and a checkpoint can name them) — higher quality, smaller set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rejection import indicator
from .schema import TrainingSample


@dataclass
class BufferedEpisode:
    episode_id: str
    episode_return: float
    samples: list[TrainingSample]
    active: bool = True
    source: str = "online"  # "online", "demo", "backfill"


class EpisodeBuffer:
    def __init__(self):
        self.episodes: dict[str, BufferedEpisode] = {}
        self.seen: set[str] = set()  # every id ever offered, accepted or not: nothing is processed twice
        self.samples_received = 0  # samples of episodes that entered the training set (the UTD denominator)
        self._flat: list[tuple[str, int]] | None = None

    def __contains__(self, episode_id: str) -> bool:
        return episode_id in self.seen

    def mark_seen(self, episode_id: str) -> bool:
        """Record an id (e.g. a rejected episode). Returns False when it was already known."""
        if episode_id in self.seen:
            return False
        self.seen.add(episode_id)
        return True

    def add(self, episode_id: str, samples: list[TrainingSample], episode_return: float, m: float, source="online"):
        """Add an accepted episode unless its id is known. Returns True when added to the training set."""
        if not self.mark_seen(episode_id) or not samples:
            return False
        ep = BufferedEpisode(episode_id, float(episode_return), list(samples), indicator(episode_return, m), source)
        self.episodes[episode_id] = ep
        if ep.active:
            self.samples_received += len(ep.samples)
        self._flat = None
        return ep.active

    def refilter(self, m: float) -> list[str]:
        """Drop episodes below m from the training set; returns the ids that left."""
        left = []
        for ep in self.episodes.values():
            if ep.active and not indicator(ep.episode_return, m):
                ep.active = False
                left.append(ep.episode_id)
        if left:
            self._flat = None
        return left

    @property
    def active_ids(self) -> list[str]:
        return [e.episode_id for e in self.episodes.values() if e.active]

    @property
    def num_active(self) -> int:
        return sum(1 for e in self.episodes.values() if e.active)

    @property
    def num_samples(self) -> int:
        return len(self._index())

    def _index(self) -> list[tuple[str, int]]:
        if self._flat is None:
            self._flat = [(e.episode_id, k) for e in self.episodes.values() if e.active for k in range(len(e.samples))]
        return self._flat

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[TrainingSample]:
        """A minibatch drawn uniformly over the samples of the training set (with replacement)."""
        index = self._index()
        if not index:
            raise ValueError("the training set is empty")
        picks = rng.integers(0, len(index), size=batch_size)
        return [self.episodes[index[i][0]].samples[index[i][1]] for i in picks]
