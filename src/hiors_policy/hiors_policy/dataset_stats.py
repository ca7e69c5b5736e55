"""Normalisation statistics from recorded episodes, as pi0 is trained with: the mean and standard deviation of
the states the policy saw and of the commands that were executed, stored beside the checkpoint (norm_stats.json)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hiors_core.episode_log import EpisodeLog
from hiors_core.errors import ConfigError
from hiors_core.schema import EpisodeData

from .preprocess import NormStats


def stats_from_episodes(episodes: Iterable[EpisodeData], state_names: tuple[str, ...]) -> NormStats:
    """Stats over every frame's state (in the policy's `state_names` order) and every executed command."""
    states, actions = [], []
    for ep in episodes:
        for f in ep.frames:
            states.append(_in_order(f.state, tuple(f.state_names) or state_names, state_names, ep.meta.episode_id))
        actions.extend(np.asarray(e.action, np.float64) for e in ep.executed)
    if not states or not actions:
        raise ConfigError("no recorded frames or commands to compute normalisation statistics from")
    return NormStats.from_data(np.stack(states), np.stack(actions))


def stats_from_log(log_dir: str | Path, state_names: tuple[str, ...]) -> NormStats:
    """Stats over every trainable episode of an episode log (e.g. the scripted initial demonstrations)."""
    log = EpisodeLog(log_dir)
    return stats_from_episodes((log.read(eid) for eid in log.trainable_ids()), state_names)


def _in_order(state, names: tuple[str, ...], want: tuple[str, ...], where: str) -> np.ndarray:
    state = np.asarray(state, np.float64).reshape(-1)
    if names == want:
        return state
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in want if n not in index]
    if missing or len(names) != state.size:
        raise ConfigError(f"episode {where}: its state lacks {missing[:6]} (or names and values differ in length)")
    return state[[index[n] for n in want]]
