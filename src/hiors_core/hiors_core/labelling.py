"""Training labels come from what was executed: the chunk of the next H commands actually sent to the robot."""

from __future__ import annotations

import numpy as np

from .schema import EpisodeData, TrainingSample


def executed_chunk(actions: np.ndarray, t: int, horizon: int) -> np.ndarray:
    """actions[t : t + H], padded at the episode end by repeating the last executed command (the robot holds)."""
    actions = np.asarray(actions, dtype=np.float32)
    if len(actions) == 0:
        raise ValueError("episode has no executed commands")
    if not 0 <= t < len(actions):
        raise IndexError(f"step {t} outside the episode's {len(actions)} executed commands")
    chunk = actions[t : t + horizon]
    if len(chunk) < horizon:
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], horizon - len(chunk), axis=0)])
    return chunk


def training_samples(episode: EpisodeData, horizon: int) -> list[TrainingSample]:
    """One sample per recorded frame: its observation and the next H executed commands after it.

    Frames recorded after the last command (nothing executed after them) have no label and are skipped.
    """
    actions = episode.actions
    human = episode.human_mask
    index = {e.step: i for i, e in enumerate(episode.executed)}
    out = []
    for f in episode.frames:
        i = index.get(f.step)
        if i is None:
            continue
        out.append(
            TrainingSample(
                images=f.images,
                state=np.asarray(f.state, dtype=np.float32),
                action_label=executed_chunk(actions, i, horizon),
                instruction=f.instruction or episode.meta.instruction,
                is_human=bool(human[i]),
                episode_id=episode.meta.episode_id,
                step=f.step,
                state_names=tuple(f.state_names or episode.meta.state_names),
            )
        )
    return out
