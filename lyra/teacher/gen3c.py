"""GEN3C (Cosmos-1.0 7B Video2World + 3D-cache conditioning) on diffusers: load, condition, sample.

This module is the core of GEN3C_SPEC.md section 11, with exactly its names and
signatures: :func:`load_transformer`, :func:`encode_warped_frames`, :func:`sample`.

Spaces and shapes (B batch, T latent frames, h x w latent grid = H/8 x W/8):

* *model space* latents are the tokenizer's latents normalised per channel and
  per latent frame, times sigma_data = 0.5 (spec section 8);
* the denoiser is called as in spec section 2's diffusers call mapping:
  ``hidden_states = c_in * x`` [B, 16, T, h, w], ``timestep = 0.25 ln sigma`` [B]
  (in the model dtype), the T5 embedding, ``fps`` (int), ``condition_mask =
  [indicator mask (1) | pose (64)]`` and a padding mask of batch 1; its output is
  the EDM "F" (not epsilon, not x0).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.errors import CheckpointError, InputDataError
from lyra.progress import report
from lyra.teacher.checkpoint import (
    GEN3C_7B_CONFIG,
    convert_official_state_dict,
    read_checkpoint_file,
    read_diffusers_folder,
    set_official_qk_norm_eps,
    strict_check,
)

SIGMA_DATA = 0.5
SIGMA_MIN = 0.0002  # GEN3C's scheduler; diffusers' converted Cosmos-1.0 pipelines use 0.002 (spec section 4)
SIGMA_MAX = 80.0
CHUNK_FRAMES = 121  # pixel frames per generated chunk (16 latent frames)
BUFFER_MAX = 2  # frame_buffer_max of GEN3C_Cosmos_7B
POSE_CHANNELS_PER_BUFFER = 32  # 16 warped-RGB latent + 16 warp-mask latent channels


# ----------------------------------------------------------------------------------------------- loading
def load_transformer(source, *, config=None, dtype=torch.float32, device="cpu"):
    """The GEN3C denoiser as ``diffusers.CosmosTransformer3DModel``, eval mode, frozen.

    ``source``: an official-style state dict (``net.*`` keys; ``logvar.*`` and
    ``*_extra_state`` ignored), a path to the official ``model.pt`` (a top-level
    ``model`` entry is unwrapped), or a folder in diffusers layout (its own
    ``config.json``; ``config`` is then ignored). ``config``: the model's kwargs,
    default :data:`GEN3C_7B_CONFIG`. The load is strict: missing, unexpected or
    mis-shaped keys raise :class:`lyra.errors.CheckpointError` naming the first
    few. The per-head q/k RMSNorm eps is set to the official 1e-6.
    """
    from diffusers import CosmosTransformer3DModel

    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        kwargs, converted = read_diffusers_folder(Path(source))
        origin: dict[str, str] = {}
    else:
        state = read_checkpoint_file(source) if isinstance(source, (str, os.PathLike)) else source
        if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
            state = state["model"]  # an official model.pt already loaded by the caller
        if not isinstance(state, Mapping):
            raise CheckpointError(f"expected a state dict, a model.pt path or a diffusers folder, found {type(source).__name__}")
        converted, origin = convert_official_state_dict(state)
        kwargs = {**GEN3C_7B_CONFIG, **(config or {})}  # unspecified settings are GEN3C's (in_channels=81), not diffusers'

    # Build on the meta device and adopt the checkpoint's tensors: no 29 GB fp32 initialisation for the 7B model.
    with torch.device("meta"):
        model = CosmosTransformer3DModel(**kwargs)
    strict_check(model, converted, origin)
    model.load_state_dict(converted, strict=True, assign=True)
    set_official_qk_norm_eps(model)
    # nn.Module.to, not ModelMixin.to: the official run casts every weight (the learnable position embedding
    # too) to the model precision, and ModelMixin.to would warn about exactly that.
    torch.nn.Module.to(model, device=device, dtype=dtype)
    return model.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------------ conditioning
def encode_warped_frames(encode, images, masks, *, buffer_max=2):  # -> [B, 32 * buffer_max, T, h, w]
    """The 64 pose channels from the 3D-cache renders (spec section 3.2).

    ``encode``: video ``[B, 3, F, H, W]`` in [-1, 1] -> model-space latent ``[B, 16, T, h, w]``.
    ``images`` ``[B, F, N, 3, H, W]`` in [-1, 1] (holes -1), ``masks`` ``[B, F, N, 1, H, W]`` in {0, 1},
    ``1 <= N <= buffer_max``. Per buffer, in order: the warped-RGB latent, then the latent of the mask
    mapped to {-1, +1} and repeated to 3 channels. Missing buffers are zero *latents*.
    """
    if images.dim() != 6 or images.shape[3] != 3:
        raise InputDataError(f"warped images must be [B, F, N, 3, H, W], found {list(images.shape)}")
    if masks.dim() != 6 or masks.shape[3] != 1 or masks.shape[:3] != images.shape[:3] or masks.shape[4:] != images.shape[4:]:
        raise InputDataError(f"warp masks must be [B, F, N, 1, H, W] matching {list(images.shape)}, found {list(masks.shape)}")
    num_buffers = images.shape[2]
    if not 1 <= num_buffers <= buffer_max:
        raise InputDataError(f"expected 1..{buffer_max} cache buffers, found {num_buffers}")
    signed_masks = (masks.to(images.dtype) * 2 - 1).repeat(1, 1, 1, 3, 1, 1)
    parts: list[Tensor] = []
    for i in range(num_buffers):
        parts.append(encode(images[:, :, i].permute(0, 2, 1, 3, 4)))  # [B, 16, T, h, w]
        parts.append(encode(signed_masks[:, :, i].permute(0, 2, 1, 3, 4)))
    for _ in range(buffer_max - num_buffers):
        parts += [torch.zeros_like(parts[0]), torch.zeros_like(parts[1])]
    return torch.cat(parts, dim=1)


def augmentation_noise(shape, seed: int = 0) -> Tensor:  # float32, the same tensor for every step and both branches
    """The official fixed condition-augmentation noise: numpy ``RandomState(seed).standard_normal`` as float32."""
    return torch.from_numpy(np.random.RandomState(seed).standard_normal(tuple(shape)).astype(np.float32))


def make_scheduler(num_steps: int):
    """diffusers' ``EDMEulerScheduler`` as GEN3C configures it: sigma 0.0002..80, Karras rho 7, final sigma 0."""
    from diffusers import EDMEulerScheduler

    scheduler = EDMEulerScheduler(
        sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, sigma_data=SIGMA_DATA, final_sigmas_type="zero"
    )
    scheduler.set_timesteps(num_steps)
    # The official run (diffusers 0.32) builds the Karras schedule in float32; newer diffusers use float64.
    # Up to 2e-5 per sigma apart: rebuild it in float32 for exact agreement.
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float32)
    inv_rho_min, inv_rho_max = SIGMA_MIN ** (1 / 7), SIGMA_MAX ** (1 / 7)
    sigmas = (inv_rho_max + ramp * (inv_rho_min - inv_rho_max)) ** 7
    scheduler.timesteps = scheduler.precondition_noise(sigmas)
    scheduler.sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    scheduler.set_begin_index(0)
    return scheduler


# ------------------------------------------------------------------------------------------------ sampling
def sample(
    transformer,
    *,
    condition_latent,
    condition_pose,
    text_embeds,
    negative_text_embeds,
    noise,
    guidance=1.0,
    num_steps=35,
    fps=24,
    num_condition_frames=1,
    augment_sigma=0.001,
    augment_seed=0,
    padding_mask=None,
    progress=None,
):  # -> [B, 16, T, h, w], model space
    """The official GEN3C EDM Euler loop for one chunk (spec section 4).

    ``condition_latent`` ``[B, 16, T, h, w]`` model space (only the first
    ``num_condition_frames`` latent frames are used); ``condition_pose``
    ``[B, 64, T, h, w]`` from :func:`encode_warped_frames` (the uncond branch gets
    zeros); ``text_embeds`` / ``negative_text_embeds`` ``[B, L, D]`` (a None
    negative reuses the positive, as the official code does for an empty negative
    prompt); ``noise`` unit Gaussian ``[B, 16, T, h, w]``; ``padding_mask``
    ``[1, 1, 8h, 8w]`` or None (zeros). Per step: the condition frames are the
    fixed-noise-augmented latent rescaled to the current sigma (dropped once
    ``augment_sigma >= sigma``), both branches see the same input, guidance is
    ``F_c + g (F_c - F_u)`` on raw outputs, the condition frames' output is
    replaced so x0 is the clean latent there, and the Euler step starts from the
    composed input. ``progress`` is called once per step.
    """
    device, dtype = compute_device_dtype(transformer)
    if noise.dim() != 5 or condition_latent.shape != noise.shape:
        raise InputDataError(f"noise {list(noise.shape)} and condition_latent {list(condition_latent.shape)} must match [B, 16, T, h, w]")
    batch, _, frames, height, width = noise.shape
    if condition_pose.shape[0] != batch or condition_pose.shape[2:] != noise.shape[2:]:
        raise InputDataError(f"condition_pose {list(condition_pose.shape)} does not match latents {list(noise.shape)}")
    if not 0 <= num_condition_frames <= frames:
        raise InputDataError(f"num_condition_frames must be in 0..{frames}, found {num_condition_frames}")
    scheduler = make_scheduler(num_steps)

    latent = condition_latent.to(device=device, dtype=dtype)
    fixed_noise = augmentation_noise(latent.shape, augment_seed).to(device)
    input_mask = torch.zeros(batch, 1, frames, height, width, device=device, dtype=dtype)
    input_mask[:, :, :num_condition_frames] = 1.0  # the indicator channel; stays 1 even when the last steps drop it
    cond_mask = torch.cat([input_mask, condition_pose.to(device=device, dtype=dtype)], dim=1)  # [B, 65, T, h, w]
    uncond_mask = torch.cat([input_mask, torch.zeros_like(cond_mask[:, 1:])], dim=1)
    positive = text_embeds.to(device=device, dtype=dtype)
    negative = positive if negative_text_embeds is None else negative_text_embeds.to(device=device, dtype=dtype)
    if padding_mask is None:
        padding_mask = torch.zeros(1, 1, 8 * height, 8 * width, device=device, dtype=dtype)
    padding_mask = padding_mask.to(device=device, dtype=dtype)

    def denoiser(x_in: Tensor, timestep: Tensor, text: Tensor, mask: Tensor) -> Tensor:
        return transformer(
            hidden_states=x_in,
            timestep=timestep.reshape(1).expand(batch),
            encoder_hidden_states=text,
            fps=fps,
            condition_mask=mask,
            padding_mask=padding_mask,
            return_dict=False,
        )[0]

    sd = SIGMA_DATA
    k = num_condition_frames
    # The official step recomputes these every step from the same fixed noise; they do not change. Only the
    # k conditioning frames are ever used, and blending with a 0/1 indicator is an exact copy, so the frames
    # are written in place instead of blending whole tensors.
    augment_scale = 1.0 / (augment_sigma**2 + sd**2) ** 0.5  # c_in at the augmentation sigma (python float)
    augmented = (latent[:, :, :k] + fixed_noise[:, :, :k] * augment_sigma) * augment_scale
    clean = latent[:, :, :k]
    xt = noise.to(device=device, dtype=dtype) * scheduler.init_noise_sigma
    for i, t in enumerate(scheduler.timesteps):
        sigma = scheduler.sigmas[i].to(device=device, dtype=dtype)
        use_condition = k > 0 and not augment_sigma >= sigma  # the last steps (sigma <= a) drop the indicator
        new_xt = xt.to(dtype)
        if use_condition:
            new_xt = new_xt.clone()
            # back to the scheduler's unscaled space at sigma: divide by c_in(sigma), as the official code does
            new_xt[:, :, :k] = (augmented / (1 / (sigma**2 + sd**2) ** 0.5)).to(dtype)
        x_in = scheduler.scale_model_input(new_xt, t)
        t_model = t.to(device=device, dtype=dtype)
        with torch.no_grad():
            out_cond = denoiser(x_in, t_model, positive, cond_mask)
            out_uncond = denoiser(x_in, t_model, negative, uncond_mask)
        out = torch.sub(out_cond, out_uncond).mul_(guidance).add_(out_cond)  # F_c + g (F_c - F_u), one allocation
        if use_condition:  # the F that makes x0 exactly the clean latent on the condition frames
            c_skip = sd**2 / (sigma**2 + sd**2)
            c_out = sigma * sd / (sigma**2 + sd**2) ** 0.5
            out[:, :, :k] = (clean - c_skip * new_xt[:, :, :k]) / c_out
        xt = scheduler.step(out, t_model, new_xt).prev_sample
        report(progress, (i + 1) / num_steps, f"denoising step {i + 1}/{num_steps}")
    return xt


def compute_device_dtype(transformer) -> tuple[torch.device, torch.dtype]:
    """Where the network computes: recorded by :class:`lyra.teacher.memory.MemoryMode` when offloading or fp8
    storage hooks are on (the parameters then sit on the CPU or in float8), else the parameters' own."""
    param = next(transformer.parameters())
    device = getattr(transformer, "lyra_compute_device", param.device)
    return torch.device(device), getattr(transformer, "lyra_compute_dtype", param.dtype)


# ---------------------------------------------------------------------------------------------- chunking
def chunk_ranges(num_frames: int, chunk: int = CHUNK_FRAMES) -> list[tuple[int, int]]:
    """Frame ranges ``[start, end)`` of the autoregressive chunks: ``[0, 121), [120, 241), ...`` (spec section 5).

    ``num_frames`` must be ``(chunk - 1) k + 1``; consecutive chunks share one frame.
    """
    step = chunk - 1
    if num_frames < chunk or (num_frames - 1) % step:
        raise InputDataError(f"a GEN3C trajectory needs {step}k+1 frames (121, 241, ...), found {num_frames}")
    return [(j * step, j * step + chunk) for j in range((num_frames - 1) // step)]
