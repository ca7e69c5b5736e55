"""Checkpoint I/O for `Pi0Policy` (pure, no rclpy): the project layout, lerobot's and openpi's pi0 layouts, and
the offline tiny policy.

    save_policy(policy, "ckpt/")            # hiors_policy.json, pi0_config.json, model.safetensors, norm_stats.json,
                                            # tokenizer/
    load_policy("ckpt/")                    # that layout, or a lerobot folder with a hiors_policy.json beside it
    load_lerobot("lr/", robot, task)        # lerobot 0.6.x (`model.paligemma_with_expert...`) or openpi PyTorch
                                            # (the same keys without the leading `model.`)
    make_policy("tiny:<robot>:<task>")      # or a checkpoint folder
    build_tiny_policy(robot, task, seed)    # tiny preset, seeded, tokenizer trained on the task instructions
    build_policy(robot, task, "pi0", dtype="bfloat16")  # any preset, random weights (for measuring)

`Pi0Policy.load`, `Pi0Policy.from_lerobot` and `Pi0Policy.save` call these.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hiors_core.errors import ConfigError

from .policy import CheckpointError, Pi0Policy, PolicyConfig, check_shapes, check_state_dict
from .preprocess import NormStats
from .presets import PRESETS, ModelPreset, get_preset, pi0_config
from .tokenizer import build_tokenizer, task_corpus

CONFIG_FILE = "hiors_policy.json"
PI0_CONFIG_FILE = "pi0_config.json"
WEIGHTS_FILE = "model.safetensors"
NORM_FILE = "norm_stats.json"
TOKENIZER_DIR = "tokenizer"

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_SAFETENSORS_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def _model_dtype(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ConfigError(f"unknown dtype {name!r}; use float32, bfloat16 or float16") from None


# ---------------------------------------------------------------- project layout
def save_policy(policy: Pi0Policy, path: str | Path) -> Path:
    """Project layout: hiors_policy.json, pi0_config.json, model.safetensors, norm_stats.json, tokenizer/."""
    out = Path(path)
    (out / TOKENIZER_DIR).mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(policy.config.to_json())
    (out / PI0_CONFIG_FILE).write_text(policy.model.config.to_json_string())
    policy.norm.save(out / NORM_FILE)
    for name, data in policy.tokenizer_files.items():
        (out / TOKENIZER_DIR / name).write_bytes(data)
    policy.write_weights_file(out / WEIGHTS_FILE)  # streamed: no second copy of the weights in memory
    return out


def load_policy(path: str | Path, device: str = "cpu", dtype: str | None = None, seed: int = 0) -> Pi0Policy:
    """Load a project-layout checkpoint folder, or a lerobot one (config.json + model.safetensors, with
    a hiors_policy.json beside it) through `load_lerobot`. Fails on any key mismatch. The model's dtype is `dtype`,
    else the checkpoint's; loading peaks at about one model's size (`model_from_state_dict`)."""
    p = Path(path)
    if not (p / CONFIG_FILE).is_file():
        raise CheckpointError(f"{p}: no {CONFIG_FILE}; for a lerobot checkpoint use Pi0Policy.from_lerobot")
    config = PolicyConfig.from_json((p / CONFIG_FILE).read_text(), str(p / CONFIG_FILE))
    if not (p / PI0_CONFIG_FILE).is_file():
        preset = config.preset if config.preset in PRESETS else None
        return load_lerobot(p, config.robot, config.task, preset=preset, device=device, dtype=dtype, seed=seed)
    from safetensors import safe_open
    from transformers import PI0Config

    mc = PI0Config.from_json_file(str(p / PI0_CONFIG_FILE))
    weights = p / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{p}: no {WEIGHTS_FILE}")
    want = _model_dtype(dtype) if dtype else None
    try:  # memory-mapped, read a tensor at a time
        with safe_open(str(weights), framework="pt") as f:
            sd = {k: _as_dtype(f.get_tensor(k), want) for k in f.keys()}
    except Exception as e:  # safetensors' own error types (a pickle or a truncated file under that name)
        raise CheckpointError(f"{weights} is not a readable safetensors file: {e}") from None
    model = model_from_state_dict(mc, sd, str(weights), want)
    del sd
    return Pi0Policy(model, config, _read_tokenizer(p / TOKENIZER_DIR), NormStats.load(p / NORM_FILE), device, seed)


def _as_dtype(t: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """A tensor read from a file, floats cast to `dtype` (one tensor at a time, so that two precisions never
    coexist in full), in memory aligned as torch allocates it: safetensors hands out tensors at 8-byte offsets,
    and the CPU kernels then take other code paths, so that chunks differ in the last bit from the saved model's."""
    if dtype is not None and t.is_floating_point() and t.dtype != dtype:
        return t.to(dtype)
    return t if t.data_ptr() % 64 == 0 else t.clone()


# ---------------------------------------------------------------- low-memory model building
def _buffer_twin_config(mc):
    """The same pi0 at one layer per tower, tiny vocabularies and MLPs: its non-persistent buffers (rotary
    frequencies, embedding scales, position ids, sinusoid frequencies) depend on widths only, and it costs a few
    MB to build where the real pi0 costs gigabytes."""
    from transformers import PI0Config

    d = mc.to_dict()
    text, vision, dit = d["vlm_config"]["text_config"], d["vlm_config"]["vision_config"], d["dit_config"]
    for c in (text, vision, dit):
        c["num_hidden_layers"], c["intermediate_size"] = 1, 8
    for c in (text, dit, d["vlm_config"]):
        if "vocab_size" in c:
            c["vocab_size"] = 16
    return PI0Config.from_dict(d)


def model_from_state_dict(mc, sd: dict[str, torch.Tensor], source: str, dtype: torch.dtype | None = None):
    """transformers' pi0 for config `mc` holding the tensors of `sd`, taken rather than copied, so that loading
    peaks at one model's size (a randomly initialised model filled by copying peaks at two, at float32 13 GB for
    the real pi0): built on the meta device, filled by assignment; the non-persistent buffers, which no checkpoint
    holds, are computed by a one-layer twin (`_buffer_twin_config`). The model takes `sd`'s dtypes; with `dtype`
    everything (buffers too) is cast to it, as `model.to(dtype)` does. `sd` is checked against the model (keys,
    shapes, finite values) first; CheckpointError names what does not match."""
    from transformers import PI0ForConditionalGeneration
    from transformers.initialization import no_init_weights

    with torch.device("meta"):
        model = PI0ForConditionalGeneration(mc)
    check_state_dict(model, sd, source)
    model.load_state_dict(sd, strict=True, assign=True)
    with torch.random.fork_rng(devices=[]), no_init_weights():
        twin = dict(PI0ForConditionalGeneration(_buffer_twin_config(mc)).named_buffers())
    for name, buf in list(model.named_buffers()):
        if not buf.is_meta:
            continue
        if name not in twin or twin[name].shape != buf.shape:
            raise CheckpointError(f"{source}: cannot compute the model's buffer {name} {tuple(buf.shape)}")
        owner, _, leaf = name.rpartition(".")
        model.get_submodule(owner)._buffers[leaf] = twin[name].to(buf.dtype)
    floats = {t.dtype for t in sd.values() if t.is_floating_point()}
    cast = dtype or (floats.pop() if len(floats) == 1 else None)
    if cast is not None:
        model.to(cast)  # the buffers; the parameters are of this dtype already
    return model


# ---------------------------------------------------------------- lerobot / openpi layout
# lerobot's pi0 (and openpi's PyTorch pi0, without the leading "model.") -> transformers' PI0ForConditionalGeneration,
# as transformers' `pi0` conversion mapping renames them (test_checkpoint.py checks the two agree).
_PREFIXES = (
    ("paligemma_with_expert.paligemma.model.", "model.vlm."),
    ("paligemma_with_expert.gemma_expert.model.", "model.dit."),
    ("paligemma_with_expert.paligemma.lm_head.", "model.vlm.language_model.embed_tokens."),
    ("paligemma_with_expert.gemma_expert.lm_head.", "model.dit.embed_tokens."),
    ("state_proj.", "embed_action_time.state_proj."),
    ("action_in_proj.", "embed_action_time.action_in_proj."),
    ("action_time_mlp_in.", "embed_action_time.action_time_mlp_in."),
    ("action_time_mlp_out.", "embed_action_time.action_time_mlp_out."),
    ("action_out_proj.", "action_out_proj."),
)


def _is_lm_head(key: str) -> bool:
    return ".lm_head." in f".{key}"


@dataclass(frozen=True)
class LerobotKeys:
    """How a lerobot / openpi file's tensors fill transformers' pi0 (see `lerobot_key_map`)."""

    layout: str  # "lerobot" (names under `model.`) or "openpi" (openpi's PyTorch pi0: the same without it)
    sources: dict[str, str]  # transformers name -> the file's name
    embeddings: dict[str, str]  # the same, for the input embeddings only
    ignored: tuple[str, ...]  # tied lm_head copies left out because an untied embed_tokens is present

    def describe(self) -> str:
        """One line for the load log: which copy filled each input embedding."""
        used = ", ".join(f"{t} <- {s}" for t, s in sorted(self.embeddings.items()))
        left = f"; left out the tied copies {list(self.ignored)}" if self.ignored else ""
        return f"{self.layout} layout; input embeddings {used}{left}"


def lerobot_key_map(keys) -> LerobotKeys:
    """Map lerobot / openpi pi0 tensor names to transformers' names, as transformers' `pi0` conversion mapping
    renames them. Gemma ties its input embedding to its output head, so a checkpoint holds the embedding as
    `...embed_tokens.weight`, as the tied `...lm_head.weight`, or both: lerobot 0.6.x saves both and embeds the
    prompt with `embed_tokens`, so that copy is the one that trained and wins; `lm_head` is used only when it is
    the only copy (hub checkpoints of older lerobot versions). Unknown names raise CheckpointError."""
    keys = list(keys)
    layout = "lerobot" if any(k.startswith("model.paligemma_with_expert.") for k in keys) else "openpi"
    found: dict[str, list[str]] = {}
    unknown = []
    for k in keys:
        name = k[len("model.") :] if layout == "lerobot" and k.startswith("model.") else k
        target = next((new + name[len(old) :] for old, new in _PREFIXES if name.startswith(old)), None)
        if target is None:
            unknown.append(k)
        else:
            found.setdefault(target, []).append(k)
    if unknown:
        raise CheckpointError(f"{len(unknown)} unexpected tensors (not pi0's) {sorted(unknown)[:5]}")
    sources, ignored = {}, []
    for target, srcs in found.items():
        untied = [s for s in srcs if not _is_lm_head(s)]
        if len(srcs) > 1 and len(untied) != 1:
            raise CheckpointError(f"tensors {sorted(srcs)} all map to {target}")
        chosen = untied[0] if len(srcs) > 1 else srcs[0]
        ignored += [s for s in srcs if s != chosen]
        sources[target] = chosen
    embeddings = {t: s for t, s in sources.items() if t.endswith("embed_tokens.weight")}
    return LerobotKeys(layout, sources, embeddings, tuple(sorted(ignored)))


def load_lerobot(
    path: str | Path,
    robot: str,
    task: str,
    tokenizer_dir: str | Path | None = None,
    norm_stats: NormStats | None = None,
    preset: str | ModelPreset | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    seed: int = 0,
) -> Pi0Policy:
    """A lerobot pi0 checkpoint (config.json with "type": "pi0" + model.safetensors in lerobot's key layout,
    `model.paligemma_with_expert...`) or openpi's PyTorch one (the same keys without `model.`; its config.json may
    be absent when `preset` is given), renamed as transformers' `pi0` conversion mapping does (`lerobot_key_map`).
    The network size comes from `preset` or from lerobot's variant names (gemma_2b + gemma_300m = the `pi0`
    preset) and must match the tensors' shapes; the tokenizer from `tokenizer_dir` or `<path>/tokenizer`; norm
    stats from `norm_stats`, `<path>/norm_stats.json` or lerobot's `policy_preprocessor*normalizer*.safetensors`.
    The model's dtype is `dtype`, else the checkpoint's. Missing, unexpected or misshapen weights raise
    CheckpointError; `policy.load_info` (also logged) says which copy of each input embedding was used."""
    from safetensors import safe_open
    from transformers import PI0ForConditionalGeneration

    p = Path(path)
    if (p / "config.json").is_file() or preset is None:
        try:
            lr = json.loads((p / "config.json").read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{p}: unreadable lerobot config.json: {e}") from None
    else:
        lr = {}  # openpi's PyTorch checkpoints carry no lerobot config; the preset names the size
    if lr.get("type", "pi0") != "pi0":
        raise CheckpointError(f"{p}: config.json is a {lr.get('type')!r} policy, not pi0")
    size_from = "sized by preset="
    if preset is None:
        variants = (lr.get("paligemma_variant", "gemma_2b"), lr.get("action_expert_variant", "gemma_300m"))
        if variants != ("gemma_2b", "gemma_300m"):
            raise CheckpointError(f"{p}: unknown lerobot variants {variants}; pass preset=")
        preset, size_from = "pi0", "sized by config.json's variants; pass preset= for another size"
    pr = get_preset(preset) if isinstance(preset, str) else preset
    for k in ("max_state_dim", "max_action_dim"):
        if int(lr.get(k, 32)) != 32:
            raise CheckpointError(f"{p}: {k}={lr[k]}, transformers' pi0 expects 32")
    chunk = int(lr.get("chunk_size", pr.chunk_size))
    steps = int(lr.get("num_steps", lr.get("num_inference_steps", pr.num_steps)))
    mc = pi0_config(pr, chunk_size=chunk, num_steps=steps)
    weights = p / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{p}: no {WEIGHTS_FILE}")
    try:
        with safe_open(str(weights), framework="pt") as f:
            header = {k: f.get_slice(k) for k in f.keys()}
            shapes = {k: tuple(v.get_shape()) for k, v in header.items()}
            file_dtypes = [v.get_dtype() for v in header.values()]
    except Exception as e:  # safetensors' own error types (a pickle or a truncated file under that name)
        raise CheckpointError(f"{weights} is not a readable safetensors file: {e}") from None
    try:
        keys = lerobot_key_map(shapes)
    except CheckpointError as e:
        raise CheckpointError(f"{weights}: lerobot weights do not match pi0: {e}") from None
    # Sizes first, on a meta-device model: a checkpoint of another size fails here, before anything is allocated.
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in PI0ForConditionalGeneration(mc).state_dict().items()}
    check_shapes(
        expected,
        {t: shapes[s] for t, s in keys.sources.items()},
        f"{weights}: the {keys.layout} weights, read as pi0 preset {pr.name!r} ({size_from}),",
    )
    # dtype=, else the checkpoint's own float type (as transformers' dtype="auto" reads it), cast tensor by tensor
    floats = [_SAFETENSORS_DTYPES[d] for d in file_dtypes if d in _SAFETENSORS_DTYPES]
    model_dtype = _model_dtype(dtype) if dtype else (floats[0] if floats else None)
    with safe_open(str(weights), framework="pt") as f:
        sd = {t: _as_dtype(f.get_tensor(s), model_dtype) for t, s in keys.sources.items()}
    model = model_from_state_dict(mc, sd, str(weights), model_dtype)
    del sd
    config = PolicyConfig.for_task(robot, task, pr, chunk_size=chunk, num_steps=steps)
    tok_dir = Path(tokenizer_dir) if tokenizer_dir else p / TOKENIZER_DIR
    if not tok_dir.is_dir():
        raise CheckpointError(f"{p}: no tokenizer folder {tok_dir} (point tokenizer_dir at the PaliGemma tokenizer)")
    if norm_stats is None:
        norm_stats = _lerobot_norm_stats(p)
    policy = Pi0Policy(model, config, _read_tokenizer(tok_dir), norm_stats, device, seed)
    policy.load_info = keys
    log.info("%s: %s", weights, keys.describe())
    return policy


def _read_tokenizer(d: Path) -> dict[str, bytes]:
    if not d.is_dir():
        raise CheckpointError(f"no tokenizer folder {d}")
    files = {f.name: f.read_bytes() for f in sorted(d.iterdir()) if f.is_file()}
    if not files:
        raise CheckpointError(f"tokenizer folder {d} is empty")
    return files


def _lerobot_norm_stats(p: Path) -> NormStats:
    if (p / NORM_FILE).is_file():
        return NormStats.load(p / NORM_FILE)
    from safetensors.torch import load_file

    found: dict[str, np.ndarray] = {}
    for f in sorted(p.glob("policy_*processor*normalizer*.safetensors")):
        for k, v in load_file(str(f)).items():
            found[k] = v.float().numpy()
    keys = ("observation.state.mean", "observation.state.std", "action.mean", "action.std")
    if all(k in found for k in keys):
        return NormStats(*(found[k] for k in keys))
    raise CheckpointError(
        f"{p}: no norm stats ({NORM_FILE} or lerobot normalizer safetensors with {keys}); pass norm_stats="
    )


# ---------------------------------------------------------------- offline policies
def build_tiny_policy(
    robot: str,
    task: str,
    seed: int = 0,
    out_dir: str | Path | None = None,
    norm_stats: NormStats | None = None,
    chunk_size: int | None = None,
    num_steps: int | None = None,
    device: str = "cpu",
    goal_state: bool = False,
) -> Pi0Policy:
    """A ready-to-use tiny pi0 for a robot and task, built offline: `tiny` preset network (seeded init), a
    SentencePiece tokenizer trained on the task instructions, identity norm stats unless given. Saved to
    `out_dir` in the project layout when given. `goal_state`: the twin's goal-state variant (the state also
    carries the task's goal, see `layout.state_layout`)."""
    return build_policy(robot, task, "tiny", seed, out_dir, norm_stats, chunk_size, num_steps, device, goal_state)


def build_policy(
    robot: str,
    task: str,
    preset: str = "tiny",
    seed: int = 0,
    out_dir: str | Path | None = None,
    norm_stats: NormStats | None = None,
    chunk_size: int | None = None,
    num_steps: int | None = None,
    device: str = "cpu",
    goal_state: bool = False,
    dtype: str | None = None,
) -> Pi0Policy:
    """`build_tiny_policy` at any preset, randomly initialised (seeded): the real-size `pi0` preset is for
    measuring (`hiors bench pi0`), its weights are noise. `dtype` (default: the preset's) is the dtype the model is
    built in, so that the real pi0 never exists in float32 (13 GB) on its way to bfloat16 (6.6 GB)."""
    pr = get_preset(preset)
    config = PolicyConfig.for_task(robot, task, pr, chunk_size, num_steps, goal_state=goal_state)
    from transformers import PI0ForConditionalGeneration

    with tempfile.TemporaryDirectory() as d:
        build_tokenizer(d, task_corpus())
        tok_files = _read_tokenizer(Path(d))
    default = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        random.seed(int(seed))
        torch.set_default_dtype(_model_dtype(dtype or pr.dtype))
        try:
            model = PI0ForConditionalGeneration(pi0_config(pr, config.chunk_size, config.num_steps))
        finally:
            torch.set_default_dtype(default)
    norm = norm_stats or NormStats.identity(config.state_dim, config.action_dim)
    policy = Pi0Policy(model, config, tok_files, norm, device=device, seed=seed)
    if out_dir is not None:
        save_policy(policy, out_dir)
    return policy


def make_policy(spec: str, device: str = "cpu", seed: int = 0, num_steps: int = 0) -> Pi0Policy:
    """`tiny:<robot>:<task>` builds a tiny policy offline; anything else is a checkpoint folder."""
    if spec.startswith("tiny:"):
        parts = spec.split(":")
        if len(parts) != 3:
            raise ConfigError(f"checkpoint {spec!r}: expected tiny:<robot>:<task>")
        policy = build_tiny_policy(parts[1], parts[2], seed=seed, device=device)
    else:
        policy = load_policy(spec, device=device, seed=seed)
    if num_steps:
        policy.num_steps = int(num_steps)
    return policy
