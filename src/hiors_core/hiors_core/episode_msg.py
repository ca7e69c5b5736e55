"""hiors_msgs/Episode <-> numpy: the recorder builds it from an episode, the filter and learner read it back."""

from __future__ import annotations

import numpy as np

from .convert import check_finite, frame_from_observation
from .convert_ros import observation_msg, time_msg
from .errors import BadInputError
from .labelling import training_samples
from .schema import EpisodeData, TrainingSample


def episode_to_msg(episode: EpisodeData, horizon: int, bag_uri: str = ""):
    from hiors_msgs.msg import Episode, Sample

    meta = episode.meta
    msg = Episode(
        episode_id=meta.episode_id,
        robot=meta.robot,
        task=meta.task,
        bag_uri=bag_uri,
        episode_return=episode.episode_return if episode.label is not None else 0.0,
        success=bool(episode.label.success) if episode.label is not None else False,
        label_source=episode.label.source if episode.label is not None else "",
        control_steps=len(episode.executed),
        human_steps=int(episode.human_mask.sum()),
        interventions=episode.interventions,
        max_policy_version=max((e.policy_version for e in episode.executed), default=0),
    )
    if episode.frames:
        msg.header.stamp = time_msg(episode.frames[-1].stamp_ns)
    frames = {f.step: f for f in episode.frames}
    for s in training_samples(episode, horizon):
        frame = frames[s.step]
        sample = Sample(
            observation=observation_msg(frame, meta.robot, meta.task),
            horizon=horizon,
            action_dim=s.action_label.shape[1],
            control_mode=meta.control_mode,
            is_human=s.is_human,
            step=s.step,
        )
        sample.action_label = s.action_label.reshape(-1).tolist()
        msg.samples.append(sample)
    return msg


def samples_from_msg(msg) -> list[TrainingSample]:
    """hiors_msgs/Episode -> training samples; refuses malformed samples with a message naming the episode."""
    out = []
    for k, s in enumerate(msg.samples):
        h, d = int(s.horizon), int(s.action_dim)
        if h <= 0 or d <= 0 or len(s.action_label) != h * d:
            raise BadInputError(
                f"episode {msg.episode_id}: sample {k} declares {h}x{d} but has {len(s.action_label)} values"
            )
        try:
            frame = frame_from_observation(s.observation, step=int(s.step))
            label = check_finite(f"episode {msg.episode_id} sample {k} action label", s.action_label).reshape(h, d)
        except BadInputError as e:
            raise BadInputError(f"episode {msg.episode_id}: sample {k}: {e}") from None
        out.append(
            TrainingSample(
                images=frame.images,
                state=frame.state,
                action_label=np.ascontiguousarray(label),
                instruction=frame.instruction,
                is_human=bool(s.is_human),
                episode_id=msg.episode_id,
                step=int(s.step),
                state_names=tuple(frame.state_names),
            )
        )
    return out
