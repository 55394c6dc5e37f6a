"""The Cosmos video tokenizer (CV8x8x8) as used by the decoder's conditioning.

Wraps diffusers' ``AutoencoderKLCosmos`` loaded from a local diffusers-format
folder (``nvidia/Cosmos-Tokenize1-CV8x8x8-720p`` converted to diffusers). It
encodes the Plucker halves and the constant "time videos" into 16-channel
latents, and provides the per-channel, per-frame latent statistics used to
denormalise stored SDG latents.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from lyra.errors import CheckpointError, InputDataError

VAE_HINT = (
    "get the Cosmos tokenizer nvidia/Cosmos-Tokenize1-CV8x8x8-720p in diffusers format "
    "(a folder with config.json and diffusion_pytorch_model.safetensors for AutoencoderKLCosmos)"
)


def load_cosmos_vae(path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """``AutoencoderKLCosmos.from_pretrained(path)`` from a local folder only (no downloads)."""
    from diffusers import AutoencoderKLCosmos

    path = Path(path)
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: Cosmos VAE folder not found or has no config.json; {VAE_HINT}")
    try:
        vae = AutoencoderKLCosmos.from_pretrained(
            str(path), local_files_only=True, torch_dtype=dtype, low_cpu_mem_usage=False
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: could not load AutoencoderKLCosmos ({exc}); {VAE_HINT}") from exc
    if vae.config.latent_channels != 16 or vae.config.temporal_compression_ratio != 8:
        raise CheckpointError(
            f"{path}: expected the CV8x8x8 tokenizer (16 latent channels, 8x time), found "
            f"{vae.config.latent_channels} channels, {vae.config.temporal_compression_ratio}x time"
        )
    return vae.to(device).eval().requires_grad_(False)


@torch.no_grad()
def encode_video(vae, video: Tensor) -> Tensor:  # [N, 3, F, H, W] -> [N, 16, T, H/8, W/8]
    """Deterministic latents (the tokenizer's posterior is an identity distribution)."""
    param = next(vae.parameters())
    return vae.encode(video.to(param.device, param.dtype)).latent_dist.mode()


def latent_statistics(vae, folder: str | os.PathLike | None = None) -> tuple[Tensor, Tensor]:
    """Per-channel, per-latent-frame mean and std, each ``[C, frames]`` (float32).

    From ``vae.config.latents_mean / latents_std`` (channel-major, as diffusers'
    Cosmos pipelines read them); if the config has none, from the official
    ``mean_std.pt`` (a ``(mean, std)`` pair) in ``folder``.
    """
    channels = vae.config.latent_channels
    mean, std = vae.config.latents_mean, vae.config.latents_std
    if mean is not None and std is not None:
        mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    else:
        stats_file = Path(folder or "") / "mean_std.pt"
        if folder is None or not stats_file.is_file():
            raise InputDataError(
                "the Cosmos VAE config has no latents_mean/latents_std and no mean_std.pt was found; "
                "these statistics are needed to denormalise SDG latents"
            )
        pair = torch.load(stats_file, map_location="cpu", weights_only=True)
        mean_t, std_t = (t.float() for t in pair)
    if mean_t.numel() % channels or mean_t.shape != std_t.shape:
        raise InputDataError(f"latent statistics of {mean_t.numel()} values do not split into {channels} channels")
    return mean_t.reshape(channels, -1), std_t.reshape(channels, -1)
