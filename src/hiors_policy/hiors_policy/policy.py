"""The pi0 policy wrapper: transformers' `PI0ForConditionalGeneration` plus the plumbing around it (pure, no rclpy).

    policy = Pi0Policy.load("ckpt/")                   # project layout (or Pi0Policy.from_lerobot(...)); the
                                                        # checkpoint I/O lives in checkpoint.py
    chunk = policy.infer(PolicyInput(images, state, instruction), noise=None)   # (H, D) float32, real units
    batch = policy.collate(samples)                     # samples: TrainingSample or dicts (see collate)
    per_sample = policy.loss(batch, weights, noise=None, time=None)             # (B,)
    blob = policy.to_safetensors_bytes(); other.load_safetensors_bytes(blob)    # weight sync

Batch format (a plain dict of batch-first tensors, so trainers can move and slice it generically):
    pixel_values          (B, N_cam, 3, S, S) float32 in [-1, 1] (resized with padding to the model's image size)
    pixel_attention_mask  (B, N_cam) bool (all True: every camera is required)
    input_ids             (B, L) int64: N_cam * tokens_per_image image tokens, <bos> instruction "\\n", right padding
    attention_mask        (B, L) int64
    state                 (B, 32) float32: mean/std-normalised state, zero-padded to max_state_dim
    actions               (B, H, 32) float32: normalised executed-action labels, zero-padded to max_action_dim
    action_dim_mask       (B, 32) float32: 1 on the robot's real action dims, 0 on the padding
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hiors_core.errors import BadInputError, ConfigError, HiorsError
from hiors_core.robots import get_robot

from .layout import action_layout, state_in_order, state_layout, task_instruction
from .preprocess import NormStats, images_to_tensor, pad_last
from .presets import ModelPreset
from .tokenizer import PromptEncoder, load_tokenizer

_ST_TORCH = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_ST_DTYPES = {t: name for name, t in _ST_TORCH.items()}


class CheckpointError(HiorsError):
    """A checkpoint or weight blob does not match the model (missing/unexpected keys, wrong shapes, corrupt)."""


@dataclass(frozen=True)
class PolicyConfig:
    """Everything besides the network that defines a policy; saved as hiors_policy.json."""

    robot: str
    task: str
    camera_names: tuple[str, ...]
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    control_mode: int
    chunk_size: int
    num_steps: int
    image_size: int
    max_token_len: int
    instruction: str = ""
    dt: float = 0.04
    preset: str = "custom"

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    @classmethod
    def for_task(
        cls, robot: str, task: str, preset: ModelPreset, chunk_size=None, num_steps=None, goal_state: bool = False
    ) -> PolicyConfig:
        """The config of a policy for a registered task; `goal_state` adds the task's goal entries to the state
        (the twin's privileged variant, see `layout.state_layout`)."""
        rs, al = get_robot(robot), action_layout(robot, task)
        return cls(
            robot=robot,
            task=task,
            camera_names=tuple(rs.cameras),
            state_names=state_layout(robot, task, goal=goal_state),
            action_names=al.names,
            control_mode=al.mode,
            chunk_size=int(chunk_size or preset.chunk_size),
            num_steps=int(num_steps or preset.num_steps),
            image_size=preset.image_size,
            max_token_len=preset.max_token_len,
            instruction=task_instruction(robot, task),
            dt=1.0 / rs.control_rate_hz,
            preset=preset.name,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "<config>") -> PolicyConfig:
        try:
            d = json.loads(text)
            for k in ("camera_names", "state_names", "action_names"):
                d[k] = tuple(d[k])
            return cls(**d)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{source}: invalid policy config: {e}") from None


@dataclass
class PolicyInput:
    """One observation for `infer`: images {camera: HxWx3 uint8 RGB}, state (S,), instruction.
    `state_names` (optional) lets the policy pick and reorder its own state entries by name."""

    images: dict[str, np.ndarray]
    state: np.ndarray
    instruction: str = ""
    state_names: tuple[str, ...] = field(default_factory=tuple)


def _get(sample: Any, key: str):
    return sample[key] if isinstance(sample, dict) else getattr(sample, key)


def check_shapes(own: dict[str, tuple], got: dict[str, tuple], source: str = "weights") -> None:
    """Raise CheckpointError unless `got` names exactly the tensors of `own` (name -> shape) with their shapes."""
    missing = sorted(set(own) - set(got))
    unexpected = sorted(set(got) - set(own))
    wrong = [f"{k}: {tuple(got[k])} != {tuple(own[k])}" for k in own if k in got and tuple(got[k]) != tuple(own[k])]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{source} do not match the model: {len(missing)} missing {missing[:5]}, "
            f"{len(unexpected)} unexpected {unexpected[:5]}, {len(wrong)} with wrong shapes {wrong[:5]}"
        )


# A float is NaN or infinite exactly when all its exponent bits are set. Masking an unsigned view slice by slice
# checks a 7 GB pi0 in about a second on a CPU; torch.isfinite takes over ten (it builds a bool tensor as large as
# each tensor, 0.5 GB for the embedding) and competes with inference for the same cores during a weight swap.
_EXPONENT_BITS = {
    torch.bfloat16: (torch.int16, np.uint16, 0x7F80),
    torch.float16: (torch.int16, np.uint16, 0x7C00),
    torch.float32: (torch.int32, np.uint32, 0x7F800000),
    torch.float64: (torch.int64, np.uint64, 0x7FF0000000000000),
}


def all_finite(t: torch.Tensor, slice_elems: int = 1 << 22) -> bool:
    """Whether every value of `t` is finite (True for non-float tensors); at most one slice of scratch memory."""
    if not t.is_floating_point():
        return True
    spec = _EXPONENT_BITS.get(t.dtype)
    if spec is None or t.device.type != "cpu":
        return bool(torch.isfinite(t).all())
    signed, unsigned, bits = spec
    a = t.detach().contiguous().reshape(-1).view(signed).numpy().view(unsigned)
    mask = unsigned(bits)
    scratch = np.empty(min(a.size, slice_elems), unsigned)
    for i in range(0, a.size, slice_elems):
        part = scratch[: min(slice_elems, a.size - i)]
        np.bitwise_and(a[i : i + slice_elems], mask, out=part)
        if part.max() == mask:
            return False
    return True


def check_state_dict(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Raise CheckpointError unless `sd` has exactly the model's keys with the model's shapes, all finite."""
    check_shapes(
        {k: tuple(v.shape) for k, v in model.state_dict().items()}, {k: tuple(v.shape) for k, v in sd.items()}, source
    )
    bad = [k for k, v in sd.items() if not all_finite(v)]
    if bad:
        raise CheckpointError(f"{source} have non-finite values in {bad[:5]}")


class Pi0Policy:
    """A pi0 policy for one robot and task (see the module docstring)."""

    def __init__(
        self,
        model,
        config: PolicyConfig,
        tokenizer_files: dict[str, bytes],
        norm: NormStats,
        device: str = "cpu",
        seed: int = 0,
    ):
        self.model = model
        self.config = config
        self.norm = norm
        norm.check_dims(config.state_dim, config.action_dim)
        mc = model.config
        if config.chunk_size != mc.chunk_size:
            raise ConfigError(f"policy chunk size {config.chunk_size} != model chunk size {mc.chunk_size}")
        if config.state_dim > mc.max_state_dim or config.action_dim > mc.max_action_dim:
            raise ConfigError(f"state/action dims {config.state_dim}/{config.action_dim} exceed the model's maxima")
        if config.image_size != mc.vlm_config.vision_config.image_size:
            raise ConfigError(
                f"image size {config.image_size} != vision tower's {mc.vlm_config.vision_config.image_size}"
            )
        self.tokenizer_files = dict(tokenizer_files)
        with tempfile.TemporaryDirectory() as d:
            for name, data in self.tokenizer_files.items():
                (Path(d) / name).write_bytes(data)
            self.tokenizer = load_tokenizer(d)
        vc = mc.vlm_config.vision_config
        self.prompt = PromptEncoder(
            self.tokenizer,
            image_token_id=mc.vlm_config.image_token_id,
            tokens_per_image=(vc.image_size // vc.patch_size) ** 2,
            num_cameras=len(config.camera_names),
            max_len=config.max_token_len,
        )
        self.device = torch.device(device)
        self.model.to(self.device)
        self.model.eval()
        self.generator = torch.Generator().manual_seed(int(seed))
        self.num_steps = int(config.num_steps)
        self.load_info = None  # how a converted checkpoint filled the model (checkpoint.LerobotKeys), if it was one

    # ---------------------------------------------------------------- properties
    @property
    def horizon(self) -> int:
        return self.config.chunk_size

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def state_dim(self) -> int:
        return self.config.state_dim

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def reset(self) -> None:
        """pi0 is stateless between chunks; clears the prompt cache only."""
        self.prompt._cache.clear()

    # ---------------------------------------------------------------- preprocessing
    def check_input(self, obs) -> tuple[list[np.ndarray], np.ndarray, str]:
        """Validate one observation; returns (images in camera order, state (S,), instruction) or raises
        BadInputError naming the problem (missing camera, bad image, wrong/NaN state, unusable instruction)."""
        images = []
        for cam in self.config.camera_names:
            if cam not in obs.images:
                raise BadInputError(f"missing camera {cam!r} (have {sorted(obs.images)})")
            img = np.asarray(obs.images[cam])
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.shape[0] < 8 or img.shape[1] < 8:
                raise BadInputError(f"camera {cam!r}: image {img.shape} {img.dtype}, expected HxWx3 uint8")
            images.append(img)
        state = np.asarray(obs.state, dtype=np.float32).reshape(-1)
        names = tuple(getattr(obs, "state_names", ()) or ())
        if names:
            try:
                state = state_in_order(state, names, self.config.state_names)
            except ValueError as e:
                raise BadInputError(str(e)) from None
        if state.size != self.state_dim:
            raise BadInputError(f"state has {state.size} values, the policy expects {self.state_dim}")
        if not np.all(np.isfinite(state)):
            raise BadInputError(f"state has non-finite values at {np.flatnonzero(~np.isfinite(state))[:8].tolist()}")
        instruction = str(getattr(obs, "instruction", "") or "")
        self.prompt.check(instruction)
        return images, state, instruction

    def _prefix(self, images_list, states, instructions) -> dict[str, torch.Tensor]:
        n_cam, size = len(self.config.camera_names), self.config.image_size
        pix = torch.stack([images_to_tensor(imgs, size) for imgs in images_list])  # (B, N, 3, S, S)
        ids, masks = zip(*(self.prompt.encode(t) for t in instructions), strict=True)
        state = torch.as_tensor(np.stack(states), dtype=torch.float32)
        state = pad_last(self.norm.norm_state(state), self.model.config.max_state_dim)
        return {
            "pixel_values": pix,
            "pixel_attention_mask": torch.ones(len(images_list), n_cam, dtype=torch.bool),
            "input_ids": torch.as_tensor(np.stack(ids)),
            "attention_mask": torch.as_tensor(np.stack(masks)),
            "state": state,
        }

    def collate(self, samples) -> dict[str, torch.Tensor]:
        """Training batch (see the module docstring) from samples with `images` {camera: HxWx3 uint8},
        `state` (S,), `action_label` (H, D) and `instruction` (TrainingSample objects or dicts). An empty
        instruction falls back to the task's default instruction."""
        if not samples:
            raise ValueError("collate needs at least one sample")
        imgs, states, texts, acts = [], [], [], []
        for i, s in enumerate(samples):
            instruction = str(_get(s, "instruction") or self.config.instruction)
            names = tuple((s.get("state_names") if isinstance(s, dict) else getattr(s, "state_names", ())) or ())
            obs = PolicyInput(_get(s, "images"), _get(s, "state"), instruction, names)
            try:
                im, st, tx = self.check_input(obs)
            except BadInputError as e:
                raise BadInputError(f"sample {i}: {e}") from None
            a = np.asarray(_get(s, "action_label"), dtype=np.float32)
            if a.shape != (self.horizon, self.action_dim):
                raise BadInputError(f"sample {i}: action label {a.shape}, expected {(self.horizon, self.action_dim)}")
            if not np.all(np.isfinite(a)):
                raise BadInputError(f"sample {i}: action label has non-finite values")
            imgs.append(im), states.append(st), texts.append(tx), acts.append(a)
        batch = self._prefix(imgs, states, texts)
        a = self.norm.norm_action(torch.as_tensor(np.stack(acts)))
        batch["actions"] = pad_last(a, self.model.config.max_action_dim)
        mask = torch.zeros(len(samples), self.model.config.max_action_dim)
        mask[:, : self.action_dim] = 1.0
        batch["action_dim_mask"] = mask
        return batch

    def _model_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        dev, dt = self.device, self.dtype
        return {
            "state": batch["state"].to(dev, dt),
            "input_ids": batch["input_ids"].to(dev),
            "attention_mask": batch["attention_mask"].to(dev),
            "pixel_values": batch["pixel_values"].to(dev, dt),
            "pixel_attention_mask": batch["pixel_attention_mask"].to(dev),
        }

    # ---------------------------------------------------------------- inference
    def sample_noise(self, batch_size: int = 1) -> torch.Tensor:
        mc = self.model.config
        return torch.randn(batch_size, mc.chunk_size, mc.max_action_dim, generator=self.generator)

    @torch.inference_mode()
    def infer(self, obs, noise: torch.Tensor | np.ndarray | None = None, num_steps: int | None = None) -> np.ndarray:
        """One action chunk (H, D) float32 in robot units for one observation (PolicyInput, Frame, or anything
        with images/state/instruction). `noise` (H, 32) or (1, H, 32) makes it deterministic."""
        images, state, instruction = self.check_input(obs)
        inputs = self._model_inputs(self._prefix([images], [state], [instruction]))
        mc = self.model.config
        if noise is None:
            noise = self.sample_noise(1)
        noise = torch.as_tensor(noise, dtype=torch.float32).reshape(1, mc.chunk_size, mc.max_action_dim)
        x = self.model.sample_actions(
            noise=noise.to(self.device, self.dtype), num_steps=num_steps or self.num_steps, **inputs
        )
        a = x[0, :, : self.action_dim].float().cpu().numpy()
        return self.norm.unnorm_action(a)

    # ---------------------------------------------------------------- training
    def sample_time(self, batch_size: int) -> torch.Tensor:
        """u ~ Beta(1.5, 1) * 0.999 + 0.001 (pi0's convention)."""
        mc = self.model.config
        dist = torch.distributions.Beta(
            torch.tensor(mc.time_sampling_beta_alpha), torch.tensor(mc.time_sampling_beta_beta)
        )
        return (dist.sample((batch_size,)) * mc.time_sampling_scale + mc.time_sampling_offset).float()

    def velocity(self, batch, noise: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """v_theta(u, s, x_u) with x_u = u * noise + (1 - u) * a; (B, H, 32) float32."""
        inputs = self._model_inputs(batch)
        a = batch["actions"].to(self.device, self.dtype)
        u = time.to(self.device, torch.float32)
        x_u = (u[:, None, None] * noise + (1 - u[:, None, None]) * a).to(self.dtype)
        out = self.model(noise=x_u, timestep=u, **inputs)
        return out.logits.float()

    def loss(self, batch, weights=None, noise=None, time=None) -> torch.Tensor:
        """Per-sample weighted flow-matching loss (B,): mean over H and the REAL action dims of
        (v_theta - (noise - a))^2, times weights[b]. A weight of 0 gives that sample exactly zero gradient."""
        a = batch["actions"].to(self.device, torch.float32)
        b = a.shape[0]
        noise = torch.randn(a.shape, device=self.device) if noise is None else noise.to(self.device, torch.float32)
        time = self.sample_time(b) if time is None else time
        time = time.to(self.device, torch.float32)
        v = self.velocity(batch, noise, time)
        target = noise - a
        mask = batch["action_dim_mask"].to(self.device, torch.float32)[:, None, :]  # (B, 1, 32)
        err = (v - target) ** 2 * mask
        per_sample = err.sum(dim=(1, 2)) / (mask.sum(dim=(1, 2)) * a.shape[1])
        if weights is None:
            return per_sample
        w = torch.as_tensor(weights, dtype=torch.float32, device=self.device).reshape(b)
        return per_sample * w

    # ---------------------------------------------------------------- weights
    def to_safetensors_bytes(self) -> bytes:
        from safetensors.torch import save

        sd = {k: v.detach().to("cpu").contiguous() for k, v in self.model.state_dict().items()}
        return save(sd, metadata={"format": "pt"})

    def parse_blob(self, blob: bytes, source: str = "weight blob") -> dict[str, torch.Tensor]:
        """Decode and verify a safetensors blob against the model (keys, shapes, finiteness); no change made."""
        from safetensors.torch import load

        try:
            sd = load(bytes(blob))
        except Exception as e:  # safetensors raises its own error types for corrupt headers
            raise CheckpointError(f"{source} is not a readable safetensors blob: {e}") from None
        check_state_dict(self.model, sd, source)
        return sd

    def write_weights_file(self, path: str | Path, durable: bool = True) -> tuple[str, int]:
        """The weights as a safetensors file at `path`, streamed tensor by tensor (no copy of the model in memory),
        atomically; returns (sha256, size) for the announcement (`weight_sync.write_safetensors`)."""
        from hiors_core.weight_sync import write_safetensors

        def tensors():
            for name, t in self.model.state_dict().items():
                t = t.detach().to("cpu").contiguous()
                yield name, _ST_DTYPES[t.dtype], tuple(t.shape), t.reshape(-1).view(torch.uint8).numpy()

        return write_safetensors(path, tensors(), metadata={"format": "pt"}, durable=durable)

    def read_weights_file(self, path: str | Path, sha256: str, total_bytes: int | None, max_bytes: int | None):
        """The tensors of a safetensors weight file, read into fresh memory and verified against its sha256 and
        size on the way (`weight_sync.read_safetensors_verified`); not yet checked against the model
        (`check_weights`). Peak: one copy of the weights beside the model."""
        from hiors_core.weight_sync import read_safetensors_verified

        def alloc(name, dtype, shape, nbytes):  # dtype: one of weight_sync.ST_DTYPE_BYTES, checked there
            t = torch.empty(shape, dtype=_ST_TORCH[dtype])
            return t, t.reshape(-1).view(torch.uint8).numpy()

        return read_safetensors_verified(path, sha256, total_bytes, max_bytes, alloc)

    def check_weights(self, sd: dict[str, torch.Tensor], source: str = "weights") -> dict[str, torch.Tensor]:
        """`sd` once checked against the model (keys, shapes, finiteness; CheckpointError otherwise)."""
        check_state_dict(self.model, sd, source)
        return sd

    def apply_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Put verified tensors into the model (use parse_blob or check_weights first). Tensors of the model's own
        dtype and device, aligned as torch allocates, are taken as they are (`sd` then belongs to the model: the
        swap costs no copy and no second model's memory); others are copied in place, converted. Returns the
        tensors the model held before, so that a caller can release them where it costs nothing (freeing the
        real pi0's 7 GB takes a noticeable part of a second)."""
        own = self.model.state_dict()
        take = all(
            sd[k].dtype == v.dtype and sd[k].device == v.device and sd[k].data_ptr() % 64 == 0 for k, v in own.items()
        )
        with torch.no_grad():
            self.model.load_state_dict(sd, strict=True, assign=take)
        return own

    def load_safetensors_bytes(self, blob: bytes) -> None:
        """Replace the weights from a safetensors blob; on any mismatch raises CheckpointError and leaves the
        current weights untouched."""
        self.apply_state_dict(self.parse_blob(blob))

    # ---------------------------------------------------------------- checkpoints (see checkpoint.py)
    def save(self, path: str | Path) -> Path:
        """Save in the project layout (`checkpoint.save_policy`)."""
        from .checkpoint import save_policy

        return save_policy(self, path)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", dtype: str | None = None, seed: int = 0) -> Pi0Policy:
        """Load a project-layout (or lerobot, with a hiors_policy.json) checkpoint folder (`checkpoint.load_policy`)."""
        from .checkpoint import load_policy

        return load_policy(path, device=device, dtype=dtype, seed=seed)

    from_pretrained = load

    @classmethod
    def from_lerobot(
        cls,
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
        """Load a lerobot or openpi PyTorch pi0 checkpoint (`checkpoint.load_lerobot` says how)."""
        from .checkpoint import load_lerobot

        return load_lerobot(path, robot, task, tokenizer_dir, norm_stats, preset, device, dtype, seed)


def collate(policy: Pi0Policy, samples) -> dict[str, torch.Tensor]:
    """Module-level alias of `policy.collate(samples)`."""
    return policy.collate(samples)
