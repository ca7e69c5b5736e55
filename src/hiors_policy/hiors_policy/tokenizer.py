"""Instruction tokenisation: an offline-built SentencePiece tokenizer for tiny policies, and the pi0 prompt.

pi0's prompt (transformers' PI0Processor and lerobot agree): `<image>` x (tokens per image x cameras), then
`<bos>` + instruction + "\\n", right-padded to a fixed length. The image tokens are not tokenizer ids here: they are
`config.vlm_config.image_token_id` (one past the text vocabulary) and are prepended by `encode_prompt`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from hiors_core.errors import BadInputError, ConfigError
from hiors_core.tasks import TASKS

# Generic words so that a tiny tokenizer can represent other plain-English instructions as well as the tasks'.
_BASE_CORPUS = (
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"-_()/",
    "pick up the object and place it in the box on the table",
    "move the left arm and the right arm to the target then open and close the gripper",
    "put the red cube into the bin, push the button, stack the blocks, wipe the table",
)


def task_corpus() -> list[str]:
    """The tasks' instructions, one per task, from the task registry: what a tiny tokenizer is trained on, so
    that every prompt a task's demonstrations, online episodes and evaluation give the policy is in it."""
    return [t.instruction for t in TASKS.values()]


def build_tokenizer(out_dir: str | Path, texts: list[str], vocab_size: int = 256) -> Path:
    """Train a SentencePiece BPE tokenizer on `texts` offline, with Gemma's special ids (pad 0, eos 1, bos 2,
    unk 3) and "\\n" as a user-defined symbol; save it as a GemmaTokenizer folder loadable by AutoTokenizer."""
    import sentencepiece as spm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus = [t for t in (*texts, *_BASE_CORPUS) if t] * 8
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=buf,
        vocab_size=int(vocab_size),
        model_type="bpe",
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        unk_piece="<unk>",
        user_defined_symbols=["\n"],
        hard_vocab_limit=False,
        character_coverage=1.0,
        byte_fallback=False,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        num_threads=1,
        minloglevel=2,
    )
    (out / "tokenizer.model").write_bytes(buf.getvalue())
    (out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GemmaTokenizer"}))
    return out


def load_tokenizer(path: str | Path):
    """AutoTokenizer from a local folder only (never downloads)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"tokenizer folder {path} does not exist")
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


class PromptEncoder:
    """instruction -> (input_ids, attention_mask) of the pi0 prefix, cached per instruction."""

    def __init__(self, tokenizer, image_token_id: int, tokens_per_image: int, num_cameras: int, max_len: int):
        self.tokenizer = tokenizer
        self.image_token_id = int(image_token_id)
        self.n_image = int(tokens_per_image) * int(num_cameras)
        self.max_len = int(max_len)
        self.vocab_limit = int(image_token_id)  # text ids must stay below the image token / embedding size
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def text_ids(self, instruction: str) -> list[int]:
        if not isinstance(instruction, str) or not instruction.strip():
            raise BadInputError("empty instruction")
        tok = self.tokenizer
        ids = tok(tok.bos_token + instruction.strip() + "\n", add_special_tokens=False)["input_ids"]
        unk = tok.unk_token_id
        if unk is not None and unk in ids:
            raise BadInputError(f"instruction {instruction!r} has characters the tokenizer cannot represent")
        if max(ids) >= self.vocab_limit:
            raise BadInputError(f"instruction {instruction!r} tokenizes to ids outside the model's vocabulary")
        if len(ids) > self.max_len:
            raise BadInputError(f"instruction {instruction!r} is {len(ids)} tokens long; the limit is {self.max_len}")
        return ids

    def encode(self, instruction: str) -> tuple[np.ndarray, np.ndarray]:
        hit = self._cache.get(instruction)
        if hit is not None:
            return hit
        ids = self.text_ids(instruction)
        pad = self.tokenizer.pad_token_id or 0
        n = len(ids)
        full = np.full(self.n_image + self.max_len, pad, dtype=np.int64)
        full[: self.n_image] = self.image_token_id
        full[self.n_image : self.n_image + n] = ids
        mask = np.zeros_like(full)
        mask[: self.n_image + n] = 1
        if len(self._cache) < 256:
            self._cache[instruction] = (full, mask)
        return full, mask

    def check(self, instruction: str) -> None:
        self.encode(instruction)
