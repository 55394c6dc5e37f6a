"""Latents + cameras -> Gaussians through the latent 3DGS decoder (inference).

:func:`decode_latents` works on in-memory trajectories (what a teacher returns);
:func:`decode_scene` reads an official SDG scene folder first (:mod:`lyra.pipeline.sdg`).
A static model gives one :class:`Gaussians`; a dynamic model one Gaussian set per
target frame index, as a :class:`GaussianSequence` at times ``index / fps`` (``fps``: the input video's
frame rate, 24 unless given).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.model.decoder import LyraDecoder, packed_to_gaussians, packed_to_sequence
from lyra.model.tokenizer import latent_statistics
from lyra.pipeline.conditioning import TimeEmbedder, decoder_inputs
from lyra.pipeline.sdg import FPS, OFFICIAL_VIEW_ORDER, read_scene
from lyra.progress import Progress, report, stages
from lyra.render.camera import Camera
from lyra.scene.gaussians import Gaussians
from lyra.scene.sequence import GaussianSequence


@torch.inference_mode()
def decode_latents(
    model: LyraDecoder,
    vae,
    latents: Sequence[Tensor],  # V x [16, T, h, w] model-space latents
    cameras: Sequence[Camera],  # V x Camera [F = 8 (T - 1) + 1]
    *,
    target_frames: Sequence[int] | None = None,
    prune_ratio: float | None = None,
    vae_folder: str | os.PathLike | None = None,
    fps: float = FPS,
    progress: Progress | None = None,
) -> Gaussians | GaussianSequence:
    """Decode trajectories held in memory; ``prune_ratio`` None = the model config's (0.8 released).

    ``target_frames`` (dynamic only): frame indices in ``0..F-1`` (default: every frame).
    Raises InputDataError for target frames out of range.
    """
    prepare, decode = stages(progress, [len(latents), 1 if model.config.kind == "static" else 2 * len(latents)])
    inputs = decoder_inputs(latents, cameras, vae, latent_statistics(vae, vae_folder), progress=prepare)
    num_frames = inputs.rays_os.shape[1] // inputs.num_views
    param = next(model.parameters())

    def run(time_embeddings: Tensor | None) -> Tensor:
        args = [inputs.images, inputs.plucker, inputs.rays_os, inputs.rays_ds]
        args = [a.to(param.device, param.dtype) for a in args]
        if time_embeddings is not None:
            time_embeddings = time_embeddings.to(param.device, param.dtype)
        packed = model.forward_gaussians(
            *args, time_embeddings=time_embeddings, num_views=inputs.num_views, prune_ratio=prune_ratio
        )
        return packed[0].cpu()

    if model.config.kind == "static":
        report(decode, 0.0, "decoding Gaussians")
        gaussians = packed_to_gaussians(run(None))
        report(decode, 1.0, "decoded")
        return gaussians
    frames = list(range(num_frames)) if target_frames is None else list(target_frames)
    bad = [f for f in frames if not 0 <= f < num_frames]
    if bad or not frames:
        raise InputDataError(f"target frames must be within 0..{num_frames - 1}, got {bad or 'none'}")
    _, _, height, width = latents[0].shape
    embed = TimeEmbedder(vae, num_frames, (8 * height, 8 * width))
    packed = []
    for i, frame in enumerate(frames):
        report(decode, i / len(frames), f"decoding target frame {frame} ({i + 1}/{len(frames)})")
        packed.append(run(embed(frame)))
    report(decode, 1.0, "decoded")
    return packed_to_sequence(packed, frames, fps=fps)


def decode_scene(
    model: LyraDecoder,
    vae,
    scene_dir: str | os.PathLike,
    views: Sequence[int | str] = OFFICIAL_VIEW_ORDER,
    target_frames: Sequence[int] | None = None,
    name: str | None = None,
    vae_folder: str | os.PathLike | None = None,
    prune_ratio: float | None = None,
    fps: float = FPS,
    progress: Progress | None = None,
) -> Gaussians | GaussianSequence:
    """Decode an official SDG scene folder (trajectories ``views`` in input order); see :func:`decode_latents`."""
    trajectories = read_scene(scene_dir, views, name)
    return decode_latents(
        model,
        vae,
        [t.latents for t in trajectories],
        [t.cameras for t in trajectories],
        target_frames=target_frames,
        prune_ratio=prune_ratio,
        vae_folder=vae_folder,
        fps=fps,
        progress=progress,
    )
