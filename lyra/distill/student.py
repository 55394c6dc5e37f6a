"""The student in the loop: samples -> decoder inputs -> Gaussians -> renders at the target cameras.

Conditioning follows the decoder's inference path (DECODER_SPEC.md sections 2, 4, 8): stored
latents are denormalised with the tokenizer's statistics, the Plucker halves and (dynamic) the
constant time videos are encoded with the tokenizer, rays live on the latent grid. The tokenizer
encodings depend only on the scene's input cameras, so they are cached (bounded LRU).

Renderer: 3DGUT (``with_ut``, ``with_eval3d``, as Lyra trains), with gsplat on CUDA and the
pure-PyTorch rasterizer on CPU. Gaussians are activated in float32 even under bf16 autocast.
"""

from __future__ import annotations

import collections
import dataclasses

import torch
from torch import Tensor

from lyra.distill.data import Sample
from lyra.model.decoder import PACKED_CHANNELS, LyraDecoder, activate_gaussians, packed_to_gaussians, prune_by_opacity
from lyra.model.tokenizer import denormalize_latents, encode_video, latent_statistics
from lyra.pipeline.conditioning import TimeEmbedder, gaussian_rays, plucker_images
from lyra.render import Camera, render
from lyra.render.render import gsplat_available

NEAR, FAR = 0.1, 500.0  # Lyra's render planes


@dataclasses.dataclass
class StudentOutput:
    packed: Tensor  # [B, K, 14] activated Gaussians (after pruning), relative to the first input camera
    opacities: Tensor  # [B, N] opacities before pruning (for the opacity loss)
    rgb: list[Tensor]  # per sample [N_t, H, W, 3]
    depth: list[Tensor]  # per sample [N_t, H, W]


class Conditioner:
    """Tokenizer-side inputs of the decoder, with a bounded cache of the encodings."""

    def __init__(self, vae, cache_size: int = 256):
        self.vae = vae
        self.mean, self.std = latent_statistics(vae)
        self.cache_size = cache_size
        self._plucker: collections.OrderedDict = collections.OrderedDict()

    def _cached(self, key, make):
        if key in self._plucker:
            self._plucker.move_to_end(key)
            return self._plucker[key]
        value = make()
        self._plucker[key] = value
        while len(self._plucker) > self.cache_size:
            self._plucker.popitem(last=False)
        return value

    def images(self, sample: Sample) -> Tensor:  # -> [V*T, 16, h, w] denormalised
        v_t = sample.latents.shape[0]
        frames_t = v_t // sample.num_views
        lat = sample.latents.reshape(sample.num_views, frames_t, *sample.latents.shape[1:]).permute(0, 2, 1, 3, 4)
        return denormalize_latents(lat, self.mean, self.std).permute(0, 2, 1, 3, 4).reshape_as(sample.latents)

    def plucker(self, sample: Sample) -> Tensor:  # -> [V*T, 32, h, w]
        def make() -> Tensor:
            height, width = sample.image_size
            views = []
            for c2w, k in zip(
                sample.input_c2w.chunk(sample.num_views), sample.input_intrinsics.chunk(sample.num_views), strict=True
            ):
                full = plucker_images(c2w, k, height, width)  # [F, 6, H, W]
                halves = [encode_video(self.vae, full[:, s : s + 3].permute(1, 0, 2, 3)[None])[0] for s in (0, 3)]
                views.append(torch.cat(halves).permute(1, 0, 2, 3).float().cpu())  # [T, 32, h, w]
            return torch.cat(views)

        return self._cached(("plucker", sample.key), make)

    def time_embeddings(self, sample: Sample) -> Tensor:  # -> [T+1, 16, h, w]
        num_frames = len(sample.input_frames)

        def make() -> Tensor:
            return TimeEmbedder(self.vae, num_frames, sample.image_size)(sample.target_time)[0]

        return self._cached(("time", num_frames, sample.image_size, sample.target_time), make)


def rays_as_tokens(sample: Sample, latent_h: int, latent_w: int) -> tuple[Tensor, Tensor]:
    """Gaussian ray origins and directions ``[V, F*h*w, 3]`` in the decoder's Gaussian order."""
    origins, dirs = gaussian_rays(sample.input_c2w, sample.input_intrinsics, latent_h, latent_w)  # [V*F, 3, h, w]
    to_tokens = lambda r: r.permute(0, 2, 3, 1).reshape(sample.num_views, -1, 3)  # noqa: E731
    return to_tokens(origins), to_tokens(dirs)


class RawForward(torch.nn.Module):
    """``forward = decoder.forward_raw``, so DistributedDataParallel can wrap the decoder."""

    def __init__(self, decoder: LyraDecoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, images: Tensor, plucker: Tensor, time_embeddings: Tensor | None, num_views: int) -> Tensor:
        return self.decoder.forward_raw(images, plucker, time_embeddings, num_views=num_views)


def render_options(device: torch.device) -> dict:
    """3DGUT (``with_ut``, ``with_eval3d``, as Lyra trains): gsplat on CUDA, the torch rasterizer elsewhere."""
    backend = "gsplat" if device.type == "cuda" and gsplat_available() else "torch"
    return {"backend": backend, "with_ut": True, "with_eval3d": True}


def run_student(
    model: LyraDecoder,
    conditioner: Conditioner,
    samples: list[Sample],
    prune_ratio: float = 0.0,
    dynamic: bool = False,
    autocast_dtype: torch.dtype | None = None,
    forward=None,
) -> StudentOutput:
    """Decode a batch of same-shaped samples and render each sample's target cameras.

    ``forward`` replaces ``model.forward_raw`` (e.g. a DistributedDataParallel wrapper of it).
    """
    forward = forward or model.forward_raw
    param = next(model.parameters())
    device = param.device
    images = torch.stack([conditioner.images(s) for s in samples]).to(device)  # [B, V*T, 16, h, w]
    plucker = torch.stack([conditioner.plucker(s) for s in samples]).to(device)
    times = torch.stack([conditioner.time_embeddings(s) for s in samples]).to(device) if dynamic else None
    views = samples[0].num_views
    with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        raw = forward(images, plucker, times, num_views=views)  # [B*V, 12, F, h, w]
    batch, (latent_h, latent_w) = len(samples), raw.shape[-2:]
    raw = raw.float().flatten(2).transpose(1, 2)  # [B*V, F*h*w, 12]
    rays = [rays_as_tokens(s, latent_h, latent_w) for s in samples]
    origins = torch.cat([o for o, _ in rays]).to(device)  # [B*V, F*h*w, 3]
    dirs = torch.cat([d for _, d in rays]).to(device)
    packed = activate_gaussians(raw, origins, dirs, model.config).reshape(batch, -1, PACKED_CHANNELS)
    opacities = packed[..., 3]
    packed = prune_by_opacity(packed, prune_ratio)
    options = render_options(device)
    rgbs, depths = [], []
    for b, sample in enumerate(samples):
        height, width = sample.target_rgb.shape[1:3]
        cams = Camera(sample.target_c2w.to(device), sample.target_intrinsics.to(device), width, height)
        out = render(packed_to_gaussians(packed[b]), cams, background=(1.0, 1.0, 1.0), near=NEAR, far=FAR, **options)
        rgbs.append(out.rgb)
        depths.append(out.depth)
    return StudentOutput(packed, opacities, rgbs, depths)
