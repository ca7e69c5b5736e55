"""Model size presets as frozen dataclasses: `tiny` (CPU tests and the pip-only loop) and `pi0` (real size, GPU).

`pi0_config(preset, chunk_size, num_steps)` builds a transformers `PI0Config` without downloading anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from hiors_core.errors import ConfigError


@dataclass(frozen=True)
class ModelPreset:
    name: str
    vlm_width: int
    vlm_layers: int
    vlm_mlp: int
    vlm_heads: int
    vlm_kv_heads: int
    vlm_head_dim: int
    vocab_size: int
    vision_width: int
    vision_layers: int
    vision_mlp: int
    vision_heads: int
    patch_size: int
    image_size: int
    expert_width: int
    expert_layers: int
    expert_mlp: int
    expert_heads: int
    expert_kv_heads: int
    expert_head_dim: int
    chunk_size: int = 50
    num_steps: int = 10
    max_token_len: int = 48
    dtype: str = "float32"  # "bfloat16" on GPUs
    compile: bool = False  # torch.compile the denoising step (GPU only; optional)

    @property
    def image_token_id(self) -> int:
        return self.vocab_size  # one past the text vocabulary, like PaliGemma's <image> (257152)

    @property
    def tokens_per_image(self) -> int:
        return (self.image_size // self.patch_size) ** 2


TINY = ModelPreset(
    name="tiny",
    vlm_width=64,
    vlm_layers=2,
    vlm_mlp=128,
    vlm_heads=2,
    vlm_kv_heads=1,
    vlm_head_dim=32,
    vocab_size=1024,
    vision_width=64,
    vision_layers=2,
    vision_mlp=128,
    vision_heads=2,
    patch_size=14,
    image_size=56,
    expert_width=64,
    expert_layers=2,
    expert_mlp=128,
    expert_heads=2,
    expert_kv_heads=1,
    expert_head_dim=32,
    chunk_size=16,
    num_steps=10,
    max_token_len=24,
)

# Real pi0 (PaliGemma 3B = SigLIP so400m + Gemma 2B, action expert Gemma 300M): transformers' PI0Config defaults.
PI0 = ModelPreset(
    name="pi0",
    vlm_width=2048,
    vlm_layers=18,
    vlm_mlp=16384,
    vlm_heads=8,
    vlm_kv_heads=1,
    vlm_head_dim=256,
    vocab_size=257152,
    vision_width=1152,
    vision_layers=27,
    vision_mlp=4304,
    vision_heads=16,
    patch_size=14,
    image_size=224,
    expert_width=1024,
    expert_layers=18,
    expert_mlp=4096,
    expert_heads=8,
    expert_kv_heads=1,
    expert_head_dim=256,
    chunk_size=50,
    num_steps=10,
    max_token_len=48,
    dtype="bfloat16",
    compile=False,
)

PRESETS = {p.name: p for p in (TINY, PI0)}


def get_preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model preset {name!r}; known presets: {sorted(PRESETS)}") from None


def pi0_config(preset: ModelPreset | str, chunk_size: int | None = None, num_steps: int | None = None):
    """A transformers PI0Config for a preset (no download)."""
    from transformers import PI0Config

    p = get_preset(preset) if isinstance(preset, str) else preset
    return PI0Config(
        vlm_config={
            "text_config": {
                "model_type": "gemma",
                "hidden_size": p.vlm_width,
                "num_hidden_layers": p.vlm_layers,
                "intermediate_size": p.vlm_mlp,
                "num_attention_heads": p.vlm_heads,
                "num_key_value_heads": p.vlm_kv_heads,
                "head_dim": p.vlm_head_dim,
                "vocab_size": p.vocab_size,
            },
            "vision_config": {
                "model_type": "siglip_vision_model",
                "hidden_size": p.vision_width,
                "intermediate_size": p.vision_mlp,
                "patch_size": p.patch_size,
                "image_size": p.image_size,
                "num_hidden_layers": p.vision_layers,
                "num_attention_heads": p.vision_heads,
                "vision_use_head": False,
            },
            "projection_dim": p.vlm_width,
            "image_token_id": p.image_token_id,
        },
        dit_config={
            "hidden_size": p.expert_width,
            "num_hidden_layers": p.expert_layers,
            "intermediate_size": p.expert_mlp,
            "num_attention_heads": p.expert_heads,
            "num_key_value_heads": p.expert_kv_heads,
            "head_dim": p.expert_head_dim,
        },
        chunk_size=int(chunk_size or p.chunk_size),
        num_inference_steps=int(num_steps or p.num_steps),
    )
