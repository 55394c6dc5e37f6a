"""The lift backend: frames (one image or a video) -> Gaussians or a 4D preview, on any machine.

Depth per frame comes, in this order, from the input itself (a ViPE-style
folder), a depth file the user gave (images only), or a depth network
(:class:`lyra.pipeline.depth.DepthEstimator`). Video frames are lifted one by
one with their camera poses made relative to the first frame's camera (as
Lyra's decoder does), giving a :class:`lyra.scene.GaussianSequence`: one
independent Gaussian set per chosen frame, timed at ``index / fps``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.pipeline.depth import (
    PNG_UNITS_PER_METRE,
    DepthEstimator,
    DepthMap,
    as_intrinsics,
    make_depth_map,
    read_depth_file,
)
from lyra.pipeline.inputs import Frames
from lyra.pipeline.lift import lift_image
from lyra.progress import Progress, report, subrange
from lyra.scene import Gaussians, GaussianSequence

NO_DEPTH_HELP = (
    "give a depth file (depth: EXR, 16-bit PNG or NPY) or a depth model "
    "(depth_model: a folder or hub id of Depth Pro, apple/DepthPro-hf, or Depth Anything V2 metric)"
)


def frame_depth(
    frames: Frames,
    index: int,
    *,
    depth_file: str | os.PathLike | None = None,
    estimator: DepthEstimator | None = None,
    intrinsics: Tensor | Sequence[float] | None = None,  # [4] known (fx, fy, cx, cy) in pixels
    png_units_per_metre: float = PNG_UNITS_PER_METRE,
    progress: Progress | None = None,
) -> DepthMap:
    """Depth and intrinsics of frame ``index`` (sources in the module docstring's order)."""
    if frames.depth is not None:
        known = frames.intrinsics[index] if frames.intrinsics is not None else intrinsics
        if known is None:
            raise InputDataError("intrinsics: the input has depth but no intrinsics; give them (fx, fy, cx, cy in pixels)")
        return make_depth_map(frames.depth[index], as_intrinsics(known), "input")
    if depth_file is not None:
        if frames.is_video:
            raise InputDataError(
                "one depth file cannot serve a video; give a ViPE-style folder with depth/, or a depth model"
            )
        return read_depth_file(depth_file, size=frames.size, intrinsics=intrinsics, png_units_per_metre=png_units_per_metre)
    if estimator is not None:
        return estimator.predict(frames.frames[index], intrinsics=intrinsics, progress=progress)
    raise InputDataError(f"no depth for the input: {NO_DEPTH_HELP}")


def default_depth_estimator(device: str | torch.device = "cpu") -> DepthEstimator:
    """The depth network of the model registry (``depth``: Depth Pro, else ``depth_anything_v2``), never downloaded.

    Raises :class:`lyra.model.registry.ModelNotFoundError` naming what to get when neither is on this machine.
    """
    from lyra.model.registry import ModelNotFoundError, find_model, load_registry

    registry = load_registry()
    for name in ("depth", "depth_anything_v2"):
        if name in registry and (path := find_model(name, registry)) is not None:
            return DepthEstimator.from_pretrained(path, device=device, allow_download=False)
    hints = "; ".join(registry[n].download_hint() for n in ("depth", "depth_anything_v2") if n in registry)
    raise ModelNotFoundError(f"no depth for the input and no depth model on this machine: {NO_DEPTH_HELP}. Get one: {hints}")


def depth_model_hint() -> str | None:
    """None when the registry's depth model is on this machine, else what to get (for UIs listing models)."""
    from lyra.model.registry import find_model, load_registry

    registry = load_registry()
    names = [n for n in ("depth", "depth_anything_v2") if n in registry]
    if any(find_model(n, registry) is not None for n in names):
        return None
    return " or ".join(registry[n].download_hint() for n in names) or "a depth model folder (Depth Pro)"


def relative_poses(c2w: Tensor) -> Tensor:  # [F, 4, 4] -> [F, 4, 4], the first one the identity
    """Camera-to-world poses re-expressed in the first camera's frame."""
    return torch.linalg.inv(c2w[0]) @ c2w


def lift_frames(
    frames: Frames,
    *,
    frame_indices: Sequence[int] | None = None,  # video frames to lift (default: every one)
    depth_file: str | os.PathLike | None = None,
    estimator: DepthEstimator | None = None,
    intrinsics: Tensor | Sequence[float] | None = None,
    png_units_per_metre: float = PNG_UNITS_PER_METRE,
    pixels_per_splat: int | None = None,
    progress: Progress | None = None,
) -> Gaussians | GaussianSequence:
    """An image -> :class:`Gaussians`; a video -> :class:`GaussianSequence` of the chosen frames.

    ``pixels_per_splat``: as :func:`lyra.pipeline.lift.lift_image` (None: the live-view size it picks)."""
    count = frames.frames.shape[0]
    indices = list(range(count)) if frame_indices is None else [int(i) for i in frame_indices]
    if not indices or min(indices) < 0 or max(indices) >= count:
        raise InputDataError(f"frames to lift must lie in 0..{count - 1}, found {indices[:5]}{'...' * (len(indices) > 5)}")
    if sorted(set(indices)) != indices:
        raise InputDataError("frames to lift must be strictly increasing")
    poses = relative_poses(frames.c2w) if frames.c2w is not None else None
    lifted = []
    for n, index in enumerate(indices):
        step = subrange(progress, n / len(indices), (n + 1) / len(indices), f"frame {index} " if frames.is_video else "")
        depth = frame_depth(
            frames, index, depth_file=depth_file, estimator=estimator, intrinsics=intrinsics,
            png_units_per_metre=png_units_per_metre, progress=subrange(step, 0.0, 0.8),
        )
        report(step, 0.8, "lift")
        pose = poses[index] if poses is not None else None
        lifted.append(lift_image(frames.frames[index], torch.where(depth.valid, depth.depth, 0.0), depth.intrinsics,
                                 c2w=pose, pixels_per_splat=pixels_per_splat))
        report(step, 1.0, "lift done")
    if not frames.is_video:
        return lifted[0]
    return GaussianSequence(lifted, [i / frames.fps for i in indices], frames.fps)
