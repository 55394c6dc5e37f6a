"""Decoder inputs from SDG outputs: latents, rays, Plucker images, time values.

Conventions (DECODER_SPEC.md sections 2, 4, 8; official ``Provider`` data path):

* Stored SDG latents ``latent/NAME.pkl`` are a torch-saved ``[1, 16, T, H, W]``
  array (tensor or numpy) in the diffusion model's normalised space. They are
  denormalised as ``x / sigma_data * std[c, t] + mean[c, t]`` with
  ``sigma_data = 0.5`` and the tokenizer's per-channel, per-latent-frame
  statistics (16 x 16 values). The official code reads them from the
  tokenizer's ``mean_std.pt`` (viewed ``[C, -1]``); diffusers stores the same
  numbers in ``AutoencoderKLCosmos.config.latents_mean / latents_std`` (flat,
  channel-major, viewed ``[1, C, -1, 1, 1]`` and cut to T frames by its Cosmos
  pipelines, whose decode step is the same ``x * std / sigma_data + mean``).
* Poses are OpenCV camera-to-world, made relative to the first frame of the
  first input view: ``c2w_rel = inverse(c2w_ref) @ c2w`` (scene scale 1).
* Gaussian rays use intrinsics / 8 on the latent grid; the Plucker image uses the
  full-resolution intrinsics. Both come from :mod:`lyra.render.rays`.
* Time: ``tau = (t - min) / (max - min)`` over input and target frame indices,
  embedded as ``[tau, cos tau, sin tau]``; the VAE sees ``2 v - 1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.render.rays import pixel_rays, plucker_embedding, scale_intrinsics

SIGMA_DATA = 0.5


def _numpy_safe_globals() -> list:
    """The few numpy globals a pickled ndarray needs (nothing else is allowed)."""
    reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
    allowed: list = [reconstruct, (reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype]
    allowed += [getattr(np.dtypes, name) for name in ("Float32DType", "Float64DType", "Float16DType")]
    return allowed


def load_latent_file(path: str | os.PathLike) -> Tensor:
    """One trajectory's stored latents ``[1, C, T, H, W]`` -> float32 ``[C, T, H, W]``.

    Loaded with ``weights_only=True``; a numpy array is accepted through an
    allowlist of numpy's array-reconstruction globals only.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: latent file not found")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputDataError(
            f"{path}: expected a torch-saved latent array, found an unreadable file ({first_line})"
        ) from exc
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if not isinstance(data, Tensor):
        raise InputDataError(f"{path}: expected a latent tensor or array, found {type(data).__name__}")
    if data.dim() == 5 and data.shape[0] == 1:
        data = data[0]
    if data.dim() != 4:
        raise InputDataError(f"{path}: expected latents [1, C, T, H, W], found shape {list(data.shape)}")
    if not torch.isfinite(data).all():
        raise InputDataError(f"{path}: latents contain NaN or Inf")
    return data.float()


def denormalize_latents(
    latents: Tensor,  # [..., C, T, H, W] normalised SDG latents
    mean: Tensor,  # [C, >=T] per channel, per latent frame
    std: Tensor,  # [C, >=T]
    sigma_data: float = SIGMA_DATA,
) -> Tensor:
    """``latents / sigma_data * std + mean`` (the official order of operations)."""
    channels, frames = latents.shape[-4], latents.shape[-3]
    if mean.shape[0] != channels or mean.shape[1] < frames or std.shape != mean.shape:
        raise InputDataError(
            f"latent statistics {list(mean.shape)} / {list(std.shape)} do not cover latents with "
            f"{channels} channels and {frames} frames"
        )
    mean = mean[:, :frames, None, None].to(latents)
    std = std[:, :frames, None, None].to(latents)
    return latents / sigma_data * std + mean


def relative_poses(c2w: Tensor, reference: Tensor) -> Tensor:  # [N, 4, 4], [4, 4] -> [N, 4, 4]
    """Poses relative to ``reference`` (the first input camera): ``inverse(reference) @ c2w``."""
    return torch.linalg.inv(reference)[None] @ c2w


def gaussian_rays(
    c2w: Tensor,  # [F, 4, 4] relative OpenCV camera-to-world
    intrinsics: Tensor,  # [F, 4] full-resolution (fx, fy, cx, cy)
    latent_height: int,
    latent_width: int,
    spatial_compression: int = 8,
) -> tuple[Tensor, Tensor]:
    """Ray origins and unit directions on the Gaussian (latent) grid, each ``[F, 3, h, w]``."""
    scaled = scale_intrinsics(intrinsics, 1.0 / spatial_compression)
    origins, dirs = pixel_rays(c2w, scaled, latent_width, latent_height)  # [F, h, w, 3]
    return origins.permute(0, 3, 1, 2), dirs.permute(0, 3, 1, 2)


def plucker_images(
    c2w: Tensor,  # [F, 4, 4] relative OpenCV camera-to-world
    intrinsics: Tensor,  # [F, 4] full-resolution
    height: int,
    width: int,
) -> Tensor:
    """Full-resolution Plucker images ``[F, 6, H, W]`` = ``[o x d, d]``."""
    origins, dirs = pixel_rays(c2w, intrinsics, width, height)
    return plucker_embedding(origins, dirs).permute(0, 3, 1, 2)


def normalized_times(input_frames: Tensor, target_frame: float) -> tuple[Tensor, Tensor]:
    """``(t - min) / (max - min)`` over the input frame indices and the target index."""
    times = torch.cat([input_frames.double().flatten(), torch.tensor([float(target_frame)], dtype=torch.float64)])
    low, high = times.min(), times.max()
    if high <= low:
        raise InputDataError("time conditioning needs at least two distinct frame indices")
    tau = ((times - low) / (high - low)).float()
    return tau[:-1], tau[-1:]


def time_embedding_values(tau: Tensor) -> Tensor:  # [N] -> [N, 3]
    """``[tau, cos tau, sin tau]`` (official sinusoidal embedding of dim 3 with the raw value prepended)."""
    return torch.stack([tau, torch.cos(tau), torch.sin(tau)], dim=-1)
