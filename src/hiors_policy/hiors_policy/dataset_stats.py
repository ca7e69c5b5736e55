"""Normalisation statistics from recorded episodes, as pi0 is trained with: the mean and standard deviation of
the states the policy saw and of the commands that were executed, stored beside the checkpoint (norm_stats.json)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hiors_core.episode_log import EpisodeLog
from hiors_core.errors import ConfigError
from hiors_core.schema import EpisodeData

from .layout import state_in_order
from .preprocess import NormStats


def stats_from_episodes(episodes: Iterable[EpisodeData], state_names: tuple[str, ...]) -> NormStats:
    """Stats over every frame's state (in the policy's `state_names` order) and every executed command."""
    states, actions = [], []
    for ep in episodes:
        for f in ep.frames:
            try:
                states.append(
                    state_in_order(np.asarray(f.state, np.float64), f.state_names or state_names, state_names)
                )
            except ValueError as e:
                raise ConfigError(f"episode {ep.meta.episode_id}: {e}") from None
        actions.extend(np.asarray(e.action, np.float64) for e in ep.executed)
    if not states or not actions:
        raise ConfigError("no recorded frames or commands to compute normalisation statistics from")
    return NormStats.from_data(np.stack(states), np.stack(actions))


def stats_from_log(log_dir: str | Path, state_names: tuple[str, ...]) -> NormStats:
    """Stats over every trainable, successful episode of an episode log (e.g. the scripted initial
    demonstrations): a failed demonstration is never trained on, so it does not shape the statistics either."""
    log = EpisodeLog(log_dir)
    episodes = (log.read(eid) for eid in log.trainable_ids())
    return stats_from_episodes((e for e in episodes if e.label is not None and e.label.reward > 0), state_names)
