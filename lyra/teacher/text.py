"""The GEN3C text condition: T5 encoder embeddings, or zeros without a text encoder (GEN3C_SPEC.md section 9).

Official behaviour reproduced here:

* ``T5TokenizerFast`` + ``T5EncoderModel`` (``google-t5/t5-11b``, width 1024),
  ``max_length=512``, ``padding="max_length"``, ``truncation=True``; every position
  at or after the prompt's token count is set to exactly 0;
* each prompt is encoded separately; the negative prompt defaults to
  :data:`DEFAULT_NEGATIVE_PROMPT`; an empty negative prompt makes the uncond
  branch reuse the positive embedding (returned here as ``None``);
* without a text encoder (the official ``--disable_prompt_encoder`` low-memory
  option) both embeddings are all zeros ``[1, 512, 1024]``.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from lyra.errors import CheckpointError

MAX_TOKENS = 512
T5_WIDTH = 1024
DEFAULT_NEGATIVE_PROMPT = (
    "The video captures a series of frames showing ugly scenes, static with no motion, motion blur, "
    "over-saturation, shaky footage, low resolution, grainy texture, pixelated images, poorly lit areas, "
    "underexposed and overexposed scenes, poor color balance, washed out colors, choppy sequences, "
    "jerky movements, low frame rate, artifacting, color banding, unnatural transitions, outdated special "
    "effects, fake elements, unconvincing visuals, poorly edited content, jump cuts, visual noise, and "
    "flickering. Overall, the video is of poor quality."
)
T5_HINT = "get google-t5/t5-11b (T5EncoderModel weights and the T5 tokenizer), or run without a text encoder"


class T5TextEncoder:
    """A T5 encoder and its tokenizer; :meth:`encode` gives ``[B, 512, width]`` with padding positions zeroed."""

    def __init__(self, tokenizer, encoder, max_length: int = MAX_TOKENS):
        self.tokenizer, self.encoder, self.max_length = tokenizer, encoder.eval().requires_grad_(False), max_length

    @classmethod
    def load(cls, path: str | os.PathLike, *, dtype: torch.dtype = torch.float32, device="cpu") -> T5TextEncoder:
        """From a local folder (no downloads). Raises CheckpointError naming what to get.

        The tokenizer comes through ``AutoTokenizer`` (``T5TokenizerFast`` for t5-11b's files).
        """
        from transformers import AutoTokenizer, T5EncoderModel

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            encoder = T5EncoderModel.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: could not load a T5 encoder ({exc}); {T5_HINT}") from exc
        return cls(tokenizer, encoder.to(device))

    @property
    def width(self) -> int:
        return int(self.encoder.config.d_model)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> Tensor:  # [B, max_length, width]
        tokens = self.tokenizer(
            prompts, padding="max_length", max_length=self.max_length, truncation=True, return_tensors="pt"
        )
        param = next(self.encoder.parameters())
        ids = tokens.input_ids.to(param.device)
        mask = tokens.attention_mask.to(param.device)
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        lengths = mask.sum(dim=1)
        keep = torch.arange(self.max_length, device=param.device)[None, :] < lengths[:, None]
        return torch.where(keep[..., None], hidden, torch.zeros_like(hidden))


def zero_text_embeddings(batch: int = 1, length: int = MAX_TOKENS, width: int = T5_WIDTH) -> Tensor:
    """The "no text encoder" embedding: all zeros ``[batch, length, width]``."""
    return torch.zeros(batch, length, width)


def prompt_embeddings(
    encoder: T5TextEncoder | None,
    prompt: str = "",
    negative_prompt: str | None = DEFAULT_NEGATIVE_PROMPT,
    *,
    width: int = T5_WIDTH,
) -> tuple[Tensor, Tensor | None]:  # ([1, 512, D], [1, 512, D] or None = reuse the positive)
    """``(positive, negative)`` embeddings the official way (see the module docstring), float32 on CPU."""
    if encoder is None:
        zeros = zero_text_embeddings(1, MAX_TOKENS, width)
        return zeros, zeros.clone()
    positive = encoder.encode([prompt or ""]).float().cpu()
    negative = encoder.encode([negative_prompt]).float().cpu() if negative_prompt else None
    return positive, negative
