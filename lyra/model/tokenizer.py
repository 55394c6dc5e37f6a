"""The Cosmos video tokenizer (CV8x8x8) shared by the decoder's conditioning and the GEN3C teacher.

Wraps diffusers' ``AutoencoderKLCosmos`` loaded from a local diffusers-format
folder (``nvidia/Cosmos-Tokenize1-CV8x8x8-720p`` converted to diffusers):
``F = 8 (T - 1) + 1`` pixel frames <-> ``T`` latent frames of 16 channels on an
``H/8 x W/8`` grid.

Latent spaces (GEN3C_SPEC.md section 8, DECODER_SPEC.md section 8):

* *raw* latents are what the tokenizer's encoder gives and its decoder takes;
* *model-space* (normalised) latents are what the diffusion model and stored
  SDG ``latent/*.pkl`` files hold: ``(raw - mean[c, t]) / std[c, t] * sigma_data``
  with ``sigma_data = 0.5`` and per-channel, **per-latent-frame** statistics
  ``mean, std [C, frames]`` (16 x 16 for the released tokenizer).

:func:`normalize_latents` and :func:`denormalize_latents` are exact inverses
(up to float rounding). Nothing here is wrapped in ``no_grad`` except
:func:`encode_video` / :func:`decode_video` of the frozen tokenizer itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from lyra.errors import CheckpointError, InputDataError

SIGMA_DATA = 0.5
# The CV8x8x8 tokenizer's compression: 8 video frames per latent frame after the first, 8x8 pixels per latent.
TEMPORAL_COMPRESSION = 8
SPATIAL_COMPRESSION = 8


def video_frames(latent_frames: int) -> int:
    """Video frames of ``T`` latent frames: ``F = 8 (T - 1) + 1`` (the one place this relation is written)."""
    return TEMPORAL_COMPRESSION * (int(latent_frames) - 1) + 1


def latent_frames(video_frames: int) -> int:
    """Latent frames ``T`` of ``F`` video frames, ``T = (F - 1) / 8 + 1``; ``F`` must be ``8k + 1``."""
    if video_frames < 1 or (video_frames - 1) % TEMPORAL_COMPRESSION:
        raise InputDataError(f"video frames must be 8k + 1 (1, 9, 17, ..., 121), found {video_frames}")
    return (int(video_frames) - 1) // TEMPORAL_COMPRESSION + 1

TOKENIZER_HINT = (
    "get the Cosmos tokenizer nvidia/Cosmos-Tokenize1-CV8x8x8-720p in diffusers format "
    "(a folder with config.json and diffusion_pytorch_model.safetensors for AutoencoderKLCosmos)"
)


def load_cosmos_tokenizer(
    path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
):
    """``AutoencoderKLCosmos.from_pretrained(path)`` from a local folder only (no downloads), frozen, eval.

    Raises CheckpointError naming what to get when the folder is missing, unreadable or not CV8x8x8.
    """
    from diffusers import AutoencoderKLCosmos

    path = Path(path)
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: Cosmos tokenizer folder not found or has no config.json; {TOKENIZER_HINT}")
    try:
        vae = AutoencoderKLCosmos.from_pretrained(
            str(path), local_files_only=True, torch_dtype=dtype, low_cpu_mem_usage=False
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: could not load AutoencoderKLCosmos ({exc}); {TOKENIZER_HINT}") from exc
    if vae.config.latent_channels != 16 or vae.config.temporal_compression_ratio != 8:
        raise CheckpointError(
            f"{path}: expected the CV8x8x8 tokenizer (16 latent channels, 8x time), found "
            f"{vae.config.latent_channels} channels, {vae.config.temporal_compression_ratio}x time"
        )
    return vae.to(device).eval().requires_grad_(False)


@torch.no_grad()
def encode_video(vae, video: Tensor) -> Tensor:  # [N, 3, F, H, W] in [-1, 1] -> raw [N, 16, T, H/8, W/8]
    """Deterministic raw latents (the tokenizer's posterior is an identity distribution)."""
    param = next(vae.parameters())
    return vae.encode(video.to(param.device, param.dtype)).latent_dist.mode()


@torch.no_grad()
def decode_video(vae, latents: Tensor) -> Tensor:  # raw [N, 16, T, h, w] -> [N, 3, 8(T-1)+1, 8h, 8w] in ~[-1, 1]
    """Pixels of raw latents (denormalise model-space latents first)."""
    param = next(vae.parameters())
    return vae.decode(latents.to(param.device, param.dtype)).sample


def latent_statistics(vae, folder: str | os.PathLike | None = None) -> tuple[Tensor, Tensor]:
    """Per-channel, per-latent-frame mean and std, each ``[C, frames]`` (float32).

    From ``vae.config.latents_mean / latents_std`` (channel-major, as diffusers'
    Cosmos pipelines read them); if the config has none, from the official
    ``mean_std.pt`` (a ``(mean, std)`` pair) in ``folder``. Raises InputDataError when neither exists.
    """
    channels = vae.config.latent_channels
    mean, std = vae.config.latents_mean, vae.config.latents_std
    if mean is not None and std is not None:
        mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    else:
        stats_file = Path(folder or "") / "mean_std.pt"
        if folder is None or not stats_file.is_file():
            raise InputDataError(
                "the Cosmos tokenizer config has no latents_mean/latents_std and no mean_std.pt was found; "
                "these statistics are needed to (de)normalise latents"
            )
        pair = torch.load(stats_file, map_location="cpu", weights_only=True)
        mean_t, std_t = (t.float() for t in pair)
    if mean_t.numel() % channels or mean_t.shape != std_t.shape:
        raise InputDataError(f"latent statistics of {mean_t.numel()} values do not split into {channels} channels")
    return mean_t.reshape(channels, -1), std_t.reshape(channels, -1)


def _frame_statistics(latents: Tensor, mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
    """``mean, std [C, >=T]`` cut to the latents' ``T`` frames and shaped ``[C, T, 1, 1]``."""
    channels, frames = latents.shape[-4], latents.shape[-3]
    if mean.shape[0] != channels or mean.shape[1] < frames or std.shape != mean.shape:
        raise InputDataError(
            f"latent statistics {list(mean.shape)} / {list(std.shape)} do not cover latents with "
            f"{channels} channels and {frames} frames"
        )
    return mean[:, :frames, None, None].to(latents), std[:, :frames, None, None].to(latents)


def denormalize_latents(
    latents: Tensor,  # [..., C, T, H, W] model-space (normalised) latents
    mean: Tensor,  # [C, >=T] per channel, per latent frame
    std: Tensor,  # [C, >=T]
    sigma_data: float = SIGMA_DATA,
) -> Tensor:  # [..., C, T, H, W] raw tokenizer latents
    """``latents / sigma_data * std + mean`` (the official order of operations); differentiable."""
    mean, std = _frame_statistics(latents, mean, std)
    return latents / sigma_data * std + mean


def normalize_latents(
    latents: Tensor,  # [..., C, T, H, W] raw tokenizer latents
    mean: Tensor,  # [C, >=T]
    std: Tensor,  # [C, >=T]
    sigma_data: float = SIGMA_DATA,
) -> Tensor:  # [..., C, T, H, W] model space
    """``(latents - mean) / std * sigma_data``, the inverse of :func:`denormalize_latents`; differentiable."""
    mean, std = _frame_statistics(latents, mean, std)
    return (latents - mean) / std * sigma_data
