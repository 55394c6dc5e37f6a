"""The Lyra-1 latent 3DGS decoder (official ``LatentRecon`` forward pass).

Module and parameter names are the official ones, so an official state dict
loads with ``strict=True``. Layout conventions (DECODER_SPEC.md sections 2-3):

* ``V`` input views, ``T`` latent frames per view, ``H x W`` latent grid (even);
* multi-view 5-D inputs are view-major along dim 1: ``[B, V*T, C, H, W]``;
* all views form one token sequence ``((v*T + t)*h + y)*w + x`` (``h = H/2``);
* the deconvolution gives ``T_out = 8T - 7`` frames of ``H x W`` Gaussians per view;
* packed Gaussians ``[B, N, 14]`` = ``[xyz, opacity, scale(3), quat wxyz, rgb]``,
  ``N = V * T_out * H * W`` before opacity pruning, index ``((v*T_out + tau)*H + Y)*W + X``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lyra.errors import ConfigError, ShapeError
from lyra.model.config import LyraDecoderConfig
from lyra.model.layers import PatchEmbed3D, TransformerBlock, trunc_normal_linear_
from lyra.model.mamba2 import Mamba2Block
from lyra.scene.gaussians import LYRA_ORIGIN, Gaussians
from lyra.scene.sequence import GaussianSequence

PACKED_CHANNELS = 14


class LyraDecoder(nn.Module):
    """Latent video (+ Plucker, + time) tokens -> per-pixel 3D Gaussians."""

    def __init__(self, config: LyraDecoderConfig | None = None):
        super().__init__()
        self.config = config = config or LyraDecoderConfig.official("static")
        dim = config.enc_embed_dim
        self.enc_blocks = nn.ModuleList(self._make_block(config, i) for i in range(config.enc_depth))
        self.enc_norm = nn.LayerNorm(dim, eps=1e-6)
        patch = (config.patch_size_temporal, config.patch_size, config.patch_size)
        self.patch_embed = PatchEmbed3D(patch, config.num_latent_c, dim)
        self.patch_plucker_embed = PatchEmbed3D(patch, 2 * config.num_latent_c, dim, zero_init=True)
        if config.time_embedding:
            self.patch_time_embed = PatchEmbed3D(patch, config.num_latent_c, dim, zero_init=True)
            self.patch_time_embed_tgt = PatchEmbed3D(patch, config.num_latent_c, dim, zero_init=True)
        self.deconv = nn.ConvTranspose3d(
            dim,
            config.output_dims,
            kernel_size=config.deconv_kernel,
            stride=config.deconv_stride,
            padding=config.deconv_padding,
        )
        self.gradient_checkpointing = False  # training: recompute each block in backward (same math)
        # Official final pass: every Linear re-drawn (truncated normal), every LayerNorm 1/0.
        for child in self.children():
            child.apply(_final_init)

    @staticmethod
    def _make_block(config: LyraDecoderConfig, index: int) -> nn.Module:
        if config.is_transformer_block(index):
            return TransformerBlock(config.enc_embed_dim, config.enc_num_heads, config.mlp_ratio)
        return Mamba2Block(
            config.enc_embed_dim,
            d_state=config.mamba_d_state,
            d_conv=config.mamba_d_conv,
            expand=config.mamba_expand,
            headdim=config.mamba_headdim,
            ngroups=config.mamba_ngroups,
            chunk_size=config.mamba_chunk_size,
        )

    # ------------------------------------------------------------------ forward
    def forward_raw(
        self,
        images: Tensor,  # [B, V*T, 16, H, W] denormalised Cosmos latents, view-major
        plucker: Tensor,  # [B, V*T, 32, H, W] VAE(o x d) | VAE(d)
        time_embeddings: Tensor | None = None,  # [B, >=T+1, 16, H, W] (dynamic): T input times + target
        num_views: int = 1,
    ) -> Tensor:
        """Deconvolution output ``[B*V, 12, 8T-7, H, W]`` (batch index ``b*V + v``)."""
        cfg = self.config
        batch, frames_total, _, height, width = images.shape
        self._check_inputs(images, plucker, num_views)
        frames = frames_total // num_views
        h, w = height // cfg.patch_size, width // cfg.patch_size
        images = images.reshape(batch * num_views, frames, *images.shape[2:])
        plucker = plucker.reshape(batch * num_views, frames, *plucker.shape[2:])

        x = self.patch_embed(images)  # [B*V, T*h*w, E]
        if cfg.time_embedding and cfg.use_time_embedding:
            time_in, time_target = self._time_tokens(time_embeddings, frames, num_views)
            x = (x + time_in) + time_target
        x = x + self.patch_plucker_embed(plucker)
        x = x.reshape(batch, num_views * x.shape[1], x.shape[2])  # all views: one sequence
        for block in self.enc_blocks:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)  # recompute in backward: memory of one block
            else:
                x = block(x)
        x = self.enc_norm(x)
        x = x.reshape(batch * num_views, frames, h, w, -1).permute(0, 4, 1, 2, 3)  # [B*V, E, T, h, w]
        return self.deconv(x)

    def _time_tokens(self, time_embeddings: Tensor | None, frames: int, num_views: int) -> tuple[Tensor, Tensor]:
        """Input-time and target-time tokens, each ``[B*V, T*h*w, E]`` (copied per view)."""
        if time_embeddings is None:
            raise ShapeError("the dynamic decoder needs time_embeddings [B, T+1, 16, H, W]")
        if time_embeddings.shape[1] < frames + 1:
            raise ShapeError(f"time_embeddings needs >= T+1 = {frames + 1} frames, got {time_embeddings.shape[1]}")
        inputs = time_embeddings[:, :frames]
        target = time_embeddings[:, frames : frames + 1].expand(-1, frames, -1, -1, -1)
        time_in = self.patch_time_embed(inputs).repeat_interleave(num_views, dim=0)  # batch index b*V + v
        time_target = self.patch_time_embed_tgt(target).repeat_interleave(num_views, dim=0)
        return time_in, time_target

    def forward_gaussians(
        self,
        images: Tensor,  # [B, V*T, 16, H, W]
        plucker: Tensor,  # [B, V*T, 32, H, W]
        rays_os: Tensor,  # [B, V*T_out, 3, H, W] ray origins per output pixel
        rays_ds: Tensor,  # [B, V*T_out, 3, H, W] unit ray directions
        time_embeddings: Tensor | None = None,  # [B, >=T+1, 16, H, W] (dynamic)
        num_views: int = 1,
        prune_ratio: float | None = None,
    ) -> Tensor:
        """Packed activated Gaussians ``[B, N, 14]``, views fused, opacity-pruned by
        ``prune_ratio`` in [0, 1) (None: ``config.gaussians_prune_ratio``, 0.8 for the
        released models; 0 keeps every Gaussian), kept in descending opacity order."""
        prune_ratio = self.config.gaussians_prune_ratio if prune_ratio is None else float(prune_ratio)
        if not 0.0 <= prune_ratio < 1.0:
            raise ConfigError(f"prune_ratio must be in [0, 1), got {prune_ratio}")
        raw = self.forward_raw(images, plucker, time_embeddings, num_views)  # [B*V, 12, T_out, H, W]
        batch = images.shape[0]
        expected = (batch, num_views * raw.shape[2], 3, *raw.shape[3:])
        for name, rays in (("rays_os", rays_os), ("rays_ds", rays_ds)):
            if tuple(rays.shape) != expected:
                raise ShapeError(f"{name} must be {list(expected)}, got {list(rays.shape)}")
        # Activations in (at least) float32: positions reach ~1e2 and bf16 would round them to ~0.5.
        compute = torch.promote_types(raw.dtype, torch.float32)
        raw = raw.flatten(2).transpose(1, 2).to(compute)  # [B*V, T_out*H*W, 12]
        origins = _rays_to_tokens(rays_os, batch * num_views).to(compute)
        dirs = _rays_to_tokens(rays_ds, batch * num_views).to(compute)
        packed = activate_gaussians(raw, origins, dirs, self.config)
        packed = packed.reshape(batch, -1, PACKED_CHANNELS)
        return prune_by_opacity(packed, prune_ratio)

    def _check_inputs(self, images: Tensor, plucker: Tensor, num_views: int) -> None:
        cfg = self.config
        if images.dim() != 5 or images.shape[2] != cfg.num_latent_c:
            raise ShapeError(f"images must be [B, V*T, {cfg.num_latent_c}, H, W], got {list(images.shape)}")
        if images.shape[1] % num_views:
            raise ShapeError(f"images dim 1 ({images.shape[1]}) is not a multiple of num_views={num_views}")
        if images.shape[3] % cfg.patch_size or images.shape[4] % cfg.patch_size:
            raise ShapeError(f"latent H, W must be multiples of {cfg.patch_size}, got {list(images.shape[3:])}")
        expected = (*images.shape[:2], 2 * cfg.num_latent_c, *images.shape[3:])
        if tuple(plucker.shape) != expected:
            raise ShapeError(f"plucker must be {list(expected)}, got {list(plucker.shape)}")

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _final_init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_linear_(module)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _rays_to_tokens(rays: Tensor, batch_views: int) -> Tensor:  # [B, V*T_out, 3, H, W] -> [B*V, T_out*H*W, 3]
    rays = rays.reshape(batch_views, -1, *rays.shape[2:])
    return rays.permute(0, 1, 3, 4, 2).reshape(batch_views, -1, 3)


def activate_gaussians(
    raw: Tensor,  # [..., N, 12] = distance(1) | rgb(3) | scale(3) | rotation(4) | opacity(1)
    origins: Tensor,  # [..., N, 3]
    dirs: Tensor,  # [..., N, 3] unit
    config: LyraDecoderConfig,
) -> Tensor:
    """Official activations -> packed ``[..., N, 14]`` = ``[xyz, opacity, scale, quat, rgb]``.

    distance along the ray ``dnear (1-w) + dfar w`` with ``w = sigmoid(d + shift)``;
    opacity ``sigmoid(a - 2)``; scale ``min(exp(s - (1 - ln cap)), cap)``;
    quaternion L2-normalised (order kept, w first); rgb ``0.5 tanh(c) + 0.5``.
    """
    distance, rgb, scale, rotation, opacity = raw.split([1, 3, 3, 4, 1], dim=-1)
    weight = torch.sigmoid(distance + config.pre_sigmoid_distance_shift)
    depth = config.dnear * (1 - weight) + config.dfar * weight
    positions = origins + dirs * depth
    cap = config.gaussian_scale_cap
    scale = torch.minimum(torch.exp(scale - (1 - math.log(cap))), scale.new_tensor([cap]))
    return torch.cat(
        [positions, torch.sigmoid(opacity - 2.0), scale, F.normalize(rotation, dim=-1), 0.5 * torch.tanh(rgb) + 0.5],
        dim=-1,
    )


def prune_by_opacity(packed: Tensor, prune_ratio: float) -> Tensor:  # [B, N, 14] -> [B, K, 14]
    """Keep the ``int(N * (1 - prune_ratio))`` most opaque Gaussians per batch element,
    in descending opacity order (the official rule). ``prune_ratio = 0`` is the identity."""
    if prune_ratio <= 0:
        return packed
    num_keep = int(packed.shape[1] * (1 - prune_ratio))
    order = packed[:, :, 3].argsort(dim=1, descending=True)[:, :num_keep]  # [B, K]
    return packed.gather(1, order[..., None].expand(-1, -1, packed.shape[-1]))


def packed_to_gaussians(packed: Tensor) -> Gaussians:  # [N, 14] (or [1, N, 14]) -> Gaussians
    """Packed ``[xyz, opacity, scale, quat wxyz, rgb]`` -> :class:`Gaussians` (SH degree 0,
    DC from rgb via :func:`lyra.scene.sh.rgb_to_sh_dc`), float32 on the same device, marked as
    coming from Lyra (``origin``: renders in Lyra's look by default)."""
    if packed.dim() == 3:
        if packed.shape[0] != 1:
            raise ShapeError(f"expected one batch element, got {packed.shape[0]}")
        packed = packed[0]
    if packed.dim() != 2 or packed.shape[-1] != PACKED_CHANNELS:
        raise ShapeError(f"packed Gaussians must be [N, {PACKED_CHANNELS}], got {list(packed.shape)}")
    packed = packed.float()
    means, opacity, scales, quats, rgb = packed.split([3, 1, 3, 4, 3], dim=-1)
    return Gaussians.from_rgb(means, quats, scales, opacity[:, 0], rgb).replace(origin=LYRA_ORIGIN)


def packed_to_sequence(
    packed_frames: Sequence[Tensor], frame_indices: Sequence[int], fps: float = 24.0
) -> GaussianSequence:
    """One packed set per target frame index -> :class:`GaussianSequence` with times ``index / fps``."""
    if len(packed_frames) != len(frame_indices):
        raise ShapeError(f"{len(packed_frames)} Gaussian sets for {len(frame_indices)} target frames")
    frames = [packed_to_gaussians(p) for p in packed_frames]
    return GaussianSequence(frames, times=[i / fps for i in frame_indices], fps=fps)
