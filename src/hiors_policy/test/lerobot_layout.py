"""Write a pi0 checkpoint in lerobot's on-disk layout (config.json + model.safetensors), for loader tests.

Key names follow lerobot's PI0Policy (`model.paligemma_with_expert.paligemma.model.*`,
`model.paligemma_with_expert.gemma_expert.model.*`, tied embeddings saved as `...lm_head.weight`,
`model.state_proj`, `model.action_in_proj`, `model.action_time_mlp_*`, `model.action_out_proj`): the inverse of
transformers' `pi0` conversion mapping. openpi's PyTorch pi0 uses the same names without the leading `model.`.
lerobot itself is not installed here.
"""

import json
from pathlib import Path

from safetensors.torch import save_file

EMBEDDINGS = ("model.vlm.language_model.embed_tokens.weight", "model.dit.embed_tokens.weight")


def lerobot_key(k: str, tied: bool = True) -> str:
    """lerobot's name for a transformers pi0 tensor; `tied=False` names an input embedding as the untied
    `...embed_tokens.weight` instead of the tied `...lm_head.weight`."""
    if tied and k == "model.vlm.language_model.embed_tokens.weight":
        return "model.paligemma_with_expert.paligemma.lm_head.weight"
    if tied and k == "model.dit.embed_tokens.weight":
        return "model.paligemma_with_expert.gemma_expert.lm_head.weight"
    if k.startswith("model.vlm."):
        return "model.paligemma_with_expert.paligemma.model." + k[len("model.vlm.") :]
    if k.startswith("model.dit."):
        return "model.paligemma_with_expert.gemma_expert.model." + k[len("model.dit.") :]
    if k.startswith("embed_action_time."):
        return "model." + k[len("embed_action_time.") :]
    if k.startswith("action_out_proj."):
        return "model." + k
    raise KeyError(k)


def write_lerobot_checkpoint(
    model,
    out: Path,
    chunk_size: int,
    drop: str = "",
    extra: str = "",
    lm_head_from=None,
    openpi: bool = False,
) -> Path:
    """`lm_head_from`: save `model`'s input embeddings as the untied `embed_tokens` and this other model's as the
    tied `lm_head` copies, both in the file (as lerobot 0.6.x saves them). `openpi`: openpi's PyTorch layout (no
    leading `model.`, no config.json)."""
    out.mkdir(parents=True, exist_ok=True)
    own = model.state_dict()
    sd = {lerobot_key(k, tied=lm_head_from is None): v.detach().clone().contiguous() for k, v in own.items()}
    if lm_head_from is not None:
        other = lm_head_from.state_dict()
        sd.update({lerobot_key(k): other[k].detach().clone().contiguous() for k in EMBEDDINGS})
    if drop:
        sd = {k: v for k, v in sd.items() if drop not in k}
    if extra:
        sd[extra] = next(iter(sd.values())).clone()
    if openpi:
        sd = {k.removeprefix("model."): v for k, v in sd.items()}
    save_file(sd, str(out / "model.safetensors"))
    if openpi:
        return out
    cfg = {
        "type": "pi0",
        "chunk_size": chunk_size,
        "n_action_steps": chunk_size,
        "max_state_dim": 32,
        "max_action_dim": 32,
        "num_steps": 10,
        "paligemma_variant": "gemma_2b",
        "action_expert_variant": "gemma_300m",
    }
    (out / "config.json").write_text(json.dumps(cfg))
    return out
