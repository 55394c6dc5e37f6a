"""Decode official SDG outputs (one folder per camera trajectory) into Gaussians.

Scene layout (official ``diffusion_output``)::

    SCENE_DIR/<view>/latent/NAME.pkl        torch-saved [1, 16, T, H, W], normalised
    SCENE_DIR/<view>/pose/NAME.npz          data [F, 4, 4] OpenCV c2w, inds [F]
    SCENE_DIR/<view>/intrinsics/NAME.npz    data [F, 4] (fx, fy, cx, cy) px, inds [F]

with ``F = 8 (T - 1) + 1`` (121 frames for 16 latent frames) and images of
``8H x 8W`` pixels. :func:`decode_scene` wires the pieces together: denormalised
latents, VAE-encoded Plucker halves, Gaussian rays and (dynamic) VAE-encoded
time videos into :class:`~lyra.model.decoder.LyraDecoder`.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.model.decoder import LyraDecoder, packed_to_gaussians, packed_to_sequence
from lyra.model.latents import (
    denormalize_latents,
    gaussian_rays,
    load_latent_file,
    normalized_times,
    plucker_images,
    relative_poses,
    time_embedding_values,
)
from lyra.model.vae import encode_video, latent_statistics
from lyra.scene.gaussians import Gaussians
from lyra.scene.sequence import GaussianSequence

OFFICIAL_VIEW_ORDER = (5, 0, 1, 2, 3, 4)
FPS = 24.0


@dataclasses.dataclass
class Trajectory:
    """One camera trajectory of an SDG scene."""

    folder: Path
    name: str
    latents: Tensor  # [C, T, H, W] normalised SDG latents
    c2w: Tensor  # [F, 4, 4] OpenCV camera-to-world, frames 0..F-1
    intrinsics: Tensor  # [F, 4] (fx, fy, cx, cy) in pixels

    @property
    def num_frames(self) -> int:
        return self.c2w.shape[0]


def _latent_name(folder: Path, name: str | None) -> str:
    latent_dir = folder / "latent"
    if not latent_dir.is_dir():
        raise InputDataError(
            f"{folder}: expected a trajectory folder with latent/, pose/ and intrinsics/, found no latent/"
        )
    if name is not None:
        return name
    names = sorted(p.stem for p in latent_dir.glob("*.pkl"))
    if len(names) != 1:
        found = f"{len(names)} ({', '.join(names[:5])})" if names else "none"
        raise InputDataError(f"{latent_dir}: expected exactly one NAME.pkl (or pass a name), found {found}")
    return names[0]


def _read_frames(path: Path, row_shape: tuple[int, ...], num_frames: int) -> Tensor:
    """Rows for frames 0..num_frames-1 of an npz ``data`` array (ordered by ``inds`` when present)."""
    if not path.is_file():
        raise InputDataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "data" not in npz:
                raise InputDataError(f"{path}: expected an npz with a 'data' array, found keys {sorted(npz.files)}")
            data = np.asarray(npz["data"], dtype=np.float64)
            inds = np.asarray(npz["inds"]) if "inds" in npz else np.arange(len(data))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputDataError(f"{path}: expected an npz archive, found an unreadable file ({exc})") from exc
    if data.ndim != 1 + len(row_shape) or tuple(data.shape[1:]) != row_shape:
        raise InputDataError(f"{path}: expected data [F, {', '.join(map(str, row_shape))}], found {list(data.shape)}")
    if inds.shape != (len(data),):
        raise InputDataError(f"{path}: expected inds [{len(data)}], found {list(inds.shape)}")
    order = np.argsort(inds, kind="stable")
    sorted_inds = inds[order]
    wanted = np.arange(num_frames)
    pos = np.searchsorted(sorted_inds, wanted).clip(max=max(len(sorted_inds) - 1, 0))
    if len(sorted_inds) == 0 or not np.array_equal(sorted_inds[pos], wanted):
        raise InputDataError(
            f"{path}: expected frames 0..{num_frames - 1} (to match the latents), found {len(data)} frames "
            f"with indices {sorted_inds[:3].tolist()}...{sorted_inds[-3:].tolist()}"
        )
    rows = data[order][pos]
    if not np.isfinite(rows).all():
        raise InputDataError(f"{path}: contains NaN or Inf")
    return torch.from_numpy(rows).float()


def read_trajectory(folder: str | os.PathLike, name: str | None = None, temporal_compression: int = 8) -> Trajectory:
    """Read and validate one trajectory folder; raises InputDataError with what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError(f"{folder}: trajectory folder not found")
    name = _latent_name(folder, name)
    latents = load_latent_file(folder / "latent" / f"{name}.pkl")
    if latents.shape[0] != 16:
        raise InputDataError(f"{folder}: expected 16-channel Cosmos latents, found {latents.shape[0]} channels")
    num_frames = temporal_compression * (latents.shape[1] - 1) + 1
    c2w = _read_frames(folder / "pose" / f"{name}.npz", (4, 4), num_frames)
    intrinsics = _read_frames(folder / "intrinsics" / f"{name}.npz", (4,), num_frames)
    if (intrinsics[:, :2] <= 0).any():
        raise InputDataError(f"{folder / 'intrinsics' / (name + '.npz')}: focal lengths must be positive")
    return Trajectory(folder, name, latents, c2w, intrinsics)


def read_scene(scene_dir: str | os.PathLike, views: Sequence[int | str], name: str | None = None) -> list[Trajectory]:
    """The trajectories ``views`` (folder names under ``scene_dir``), in that order."""
    scene_dir = Path(scene_dir)
    if not scene_dir.is_dir():
        raise InputDataError(f"{scene_dir}: scene folder not found")
    if not views:
        raise InputDataError("at least one view is needed")
    trajectories = [read_trajectory(scene_dir / str(v), name) for v in views]
    first = trajectories[0]
    for traj in trajectories[1:]:
        if traj.latents.shape != first.latents.shape:
            raise InputDataError(
                f"{traj.folder}: latents {list(traj.latents.shape)} differ from {first.folder}'s {list(first.latents.shape)}"
            )
    if first.latents.shape[2] % 2 or first.latents.shape[3] % 2:
        raise InputDataError(
            f"{first.folder}: latent height and width must be even, found {list(first.latents.shape[2:])}"
        )
    return trajectories


@dataclasses.dataclass
class DecoderInputs:
    images: Tensor  # [1, V*T, 16, H, W] denormalised latents
    plucker: Tensor  # [1, V*T, 32, H, W]
    rays_os: Tensor  # [1, V*F, 3, H, W]
    rays_ds: Tensor  # [1, V*F, 3, H, W]
    num_views: int


def prepare_inputs(
    trajectories: Sequence[Trajectory], vae, vae_folder=None, step: Callable[[str], None] = print
) -> DecoderInputs:
    """Static inputs shared by every target time (all on CPU, float32)."""
    mean, std = latent_statistics(vae, vae_folder)
    reference = trajectories[0].c2w[0]
    images, plucker, origins, dirs = [], [], [], []
    for traj in trajectories:
        _, _, height, width = traj.latents.shape
        images.append(denormalize_latents(traj.latents, mean, std).permute(1, 0, 2, 3))  # [T, C, H, W]
        c2w = relative_poses(traj.c2w, reference)
        o, d = gaussian_rays(c2w, traj.intrinsics, height, width)
        origins.append(o)
        dirs.append(d)
        step(f"encoding Plucker rays of trajectory {traj.folder.name}")
        full = plucker_images(c2w, traj.intrinsics, 8 * height, 8 * width)  # [F, 6, 8H, 8W]
        halves = [encode_video(vae, full[:, s : s + 3].permute(1, 0, 2, 3)[None])[0] for s in (0, 3)]
        del full
        plucker.append(torch.cat(halves, dim=0).permute(1, 0, 2, 3).float().cpu())  # [T, 32, H, W]
    return DecoderInputs(
        images=torch.cat(images)[None],
        plucker=torch.cat(plucker)[None],
        rays_os=torch.cat(origins)[None],
        rays_ds=torch.cat(dirs)[None],
        num_views=len(trajectories),
    )


class TimeEmbedder:
    """VAE latents of the constant time videos ``[1, T+1, 16, H, W]`` for a target frame."""

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


@torch.inference_mode()
def decode_scene(
    model: LyraDecoder,
    vae,
    scene_dir: str | os.PathLike,
    views: Sequence[int | str] = OFFICIAL_VIEW_ORDER,
    target_frames: Sequence[int] | None = None,
    name: str | None = None,
    vae_folder: str | os.PathLike | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> Gaussians | GaussianSequence:
    """Decode a scene: static model -> :class:`Gaussians`; dynamic model -> a
    :class:`GaussianSequence` with one Gaussian set per target frame index
    (default: every frame), at times ``index / 24``."""
    trajectories = read_scene(scene_dir, views, name)
    num_frames = trajectories[0].num_frames
    inputs = prepare_inputs(trajectories, vae, vae_folder, step=progress)
    param = next(model.parameters())

    def run(time_embeddings: Tensor | None) -> Tensor:
        args = [inputs.images, inputs.plucker, inputs.rays_os, inputs.rays_ds]
        args = [a.to(param.device, param.dtype) for a in args]
        if time_embeddings is not None:
            time_embeddings = time_embeddings.to(param.device, param.dtype)
        return model.forward_gaussians(*args, time_embeddings=time_embeddings, num_views=inputs.num_views)[0].cpu()

    if model.config.kind == "static":
        progress("decoding Gaussians")
        return packed_to_gaussians(run(None))
    frames = list(range(num_frames)) if target_frames is None else list(target_frames)
    bad = [f for f in frames if not 0 <= f < num_frames]
    if bad or not frames:
        raise InputDataError(f"target frames must be within 0..{num_frames - 1}, got {bad or 'none'}")
    _, _, height, width = trajectories[0].latents.shape
    embed = TimeEmbedder(vae, num_frames, (8 * height, 8 * width))
    packed = []
    for frame in frames:
        progress(f"decoding target frame {frame}")
        packed.append(run(embed(frame)))
    return packed_to_sequence(packed, frames, fps=FPS)
