"""Decoder inputs from in-memory latents and cameras: denormalised latents, rays, Plucker and time embeddings.

Conventions (DECODER_SPEC.md sections 2, 4, 8; the official ``Provider`` data path):

* Latents come in the diffusion model's normalised space ``[C=16, T, h, w]`` per
  trajectory and are denormalised with :func:`lyra.model.tokenizer.denormalize_latents`.
* Cameras are one :class:`lyra.render.Camera` per trajectory, batched ``[F]`` with
  ``F = 8 (T - 1) + 1`` frames, OpenCV camera-to-world, full-resolution
  ``8h x 8w`` pixel intrinsics. Poses are made relative to the first frame of the
  first trajectory: ``c2w_rel = inverse(c2w_ref) @ c2w`` (scene scale 1).
* Gaussian rays use intrinsics / 8 on the latent grid; the Plucker image uses the
  full-resolution intrinsics and goes through the tokenizer in two RGB halves
  (``o x d`` then ``d``).
* Time: ``tau = (t - min) / (max - min)`` over input and target frame indices,
  embedded as ``[tau, cos tau, sin tau]``; the tokenizer sees ``2 v - 1``.

Nothing here is wrapped in ``no_grad`` / ``inference_mode``: a trainer reuses these
functions (the frozen tokenizer's own encode runs without gradients).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.model.tokenizer import denormalize_latents, encode_video, video_frames
from lyra.progress import Progress, report
from lyra.render.camera import Camera
from lyra.render.rays import pixel_rays, plucker_embedding, scale_intrinsics


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


def encode_plucker(vae, c2w: Tensor, intrinsics: Tensor, height: int, width: int) -> Tensor:
    """Tokenizer latents of the Plucker halves ``[T, 32, h, w]`` (float32, CPU) for ``F`` relative poses."""
    full = plucker_images(c2w, intrinsics, height, width)  # [F, 6, H, W]
    halves = [encode_video(vae, full[:, s : s + 3].permute(1, 0, 2, 3)[None])[0] for s in (0, 3)]
    return torch.cat(halves, dim=0).permute(1, 0, 2, 3).float().cpu()


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


@dataclasses.dataclass
class DecoderInputs:
    """The time-independent inputs of :meth:`lyra.model.LyraDecoder.forward_gaussians`."""

    images: Tensor  # [1, V*T, 16, h, w] denormalised latents
    plucker: Tensor  # [1, V*T, 32, h, w]
    rays_os: Tensor  # [1, V*F, 3, h, w]
    rays_ds: Tensor  # [1, V*F, 3, h, w]
    num_views: int


def decoder_inputs(
    latents: Sequence[Tensor],  # V x [16, T, h, w] model-space latents
    cameras: Sequence[Camera],  # V x Camera [F], full-resolution intrinsics
    vae,
    statistics: tuple[Tensor, Tensor],  # (mean, std) each [16, >=T], from latent_statistics
    progress: Progress | None = None,
) -> DecoderInputs:
    """Static inputs shared by every target time (float32, on the latents' device).

    Raises InputDataError when trajectories disagree in shape or a camera count is not ``8 (T - 1) + 1``.
    """
    if not latents or len(latents) != len(cameras):
        raise InputDataError(f"expected one camera batch per latent trajectory, found {len(latents)} / {len(cameras)}")
    mean, std = statistics
    channels, frames, height, width = latents[0].shape
    reference = cameras[0].c2w.reshape(-1, 4, 4)[0].float()
    images, plucker, origins, dirs = [], [], [], []
    for view, (lat, cams) in enumerate(zip(latents, cameras, strict=True)):
        if tuple(lat.shape) != (channels, frames, height, width):
            raise InputDataError(f"trajectory {view}: latents {list(lat.shape)} differ from the first's {list(latents[0].shape)}")
        c2w, intrinsics = cams.c2w.reshape(-1, 4, 4).float(), cams.intrinsics.reshape(-1, 4).float()
        if len(c2w) != video_frames(frames):
            raise InputDataError(f"trajectory {view}: {len(c2w)} cameras for {frames} latent frames, expected {video_frames(frames)}")
        images.append(denormalize_latents(lat.float(), mean, std).permute(1, 0, 2, 3))  # [T, C, h, w]
        c2w = relative_poses(c2w, reference)
        o, d = gaussian_rays(c2w, intrinsics, height, width)
        origins.append(o)
        dirs.append(d)
        report(progress, view / len(latents), f"encoding Plucker rays of trajectory {view + 1}/{len(latents)}")
        plucker.append(encode_plucker(vae, c2w, intrinsics, 8 * height, 8 * width).to(lat.device))
    report(progress, 1.0, "conditioning ready")
    return DecoderInputs(
        images=torch.cat(images)[None],
        plucker=torch.cat(plucker)[None],
        rays_os=torch.cat(origins)[None],
        rays_ds=torch.cat(dirs)[None],
        num_views=len(latents),
    )


class TimeEmbedder:
    """Tokenizer latents of the constant time videos ``[1, T+1, 16, h, w]`` for a target frame.

    The input-time part depends only on the frame count, so it is encoded once and cached.
    """

    def __init__(self, vae, num_frames: int, image_size: tuple[int, int]):
        self.vae, self.num_frames, self.image_size = vae, num_frames, image_size
        self._input_cache: tuple[tuple[float, ...], Tensor] | None = None

    def _encode_constant(self, values: Tensor) -> Tensor:  # [N, 3] -> [16, T, h, w]
        height, width = self.image_size
        video = (2 * values - 1).T[None, :, :, None, None].expand(1, 3, len(values), height, width)
        return encode_video(self.vae, video.contiguous())[0].float().cpu()

    def __call__(self, target_frame: int) -> Tensor:
        tau_in, tau_target = normalized_times(torch.arange(self.num_frames), target_frame)
        key = tuple(tau_in.tolist())
        if self._input_cache is None or self._input_cache[0] != key:
            self._input_cache = (key, self._encode_constant(time_embedding_values(tau_in)))
        target = self._encode_constant(time_embedding_values(tau_target))
        return torch.cat([self._input_cache[1], target], dim=1).permute(1, 0, 2, 3)[None]
