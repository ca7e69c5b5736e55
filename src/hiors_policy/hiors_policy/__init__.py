"""hiors_policy: the pi0 policy wrapper (transformers PI0ForConditionalGeneration), preprocessing, checkpoints,
and the capture and policy (actor) nodes. Importing this package does not import rclpy."""

from .checkpoint import build_tiny_policy, make_policy
from .layout import action_layout, state_layout, task_instruction
from .policy import (
    CheckpointError,
    Pi0Policy,
    PolicyConfig,
    PolicyInput,
    check_state_dict,
    collate,
)
from .preprocess import NormStats
from .presets import PI0, TINY, ModelPreset, get_preset, pi0_config

__all__ = [
    "PI0",
    "TINY",
    "CheckpointError",
    "ModelPreset",
    "NormStats",
    "Pi0Policy",
    "PolicyConfig",
    "PolicyInput",
    "action_layout",
    "build_tiny_policy",
    "check_state_dict",
    "collate",
    "get_preset",
    "make_policy",
    "pi0_config",
    "state_layout",
    "task_instruction",
]
