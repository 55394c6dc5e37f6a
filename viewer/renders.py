"""Server-side renders for the Render panel (viser-free): stills and MP4 videos with :func:`lyra.render.render`.

Renders draw the current frame of every visible layer with soft deletes
applied and full SH; the background is an RGB triple in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lyra.errors import InputDataError
from lyra.render.camera import Camera
from lyra.render.render import render
from lyra.scene import Gaussians
from viewer.jobs import Job
from viewer.state import AppState


def visible_scene(state: AppState) -> Gaussians:
    """The visible layers' current frames as one set; InputDataError when nothing is visible."""
    parts = state.visible_current_frames()
    if not parts or not sum(len(p) for p in parts):
        raise InputDataError("nothing to render: no visible splats")
    return Gaussians.cat(parts)


def render_still(state: AppState, camera: Camera, background=(1.0, 1.0, 1.0)) -> np.ndarray:
    """``uint8 [H, W, 3]`` image of the visible scene from ``camera`` (a single camera)."""
    scene = visible_scene(state)
    with torch.no_grad():
        out = render(scene, camera, background=background)
    return (out.rgb.clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def render_video(state: AppState, cameras: Camera, path: str | os.PathLike, fps: int,
                 background=(1.0, 1.0, 1.0), job: Job | None = None) -> Path:
    """Write an MP4 (H.264) of the visible scene along ``cameras`` (a batch); returns ``path``.

    Frames are written to a hidden partial file that is renamed over ``path``
    only when complete, so a cancelled or failed render leaves nothing behind.
    Width and height must be multiples of 16 (H.264 macro blocks).
    """
    import imageio.v2 as imageio

    if cameras.width % 16 or cameras.height % 16:
        raise InputDataError(f"video size must be a multiple of 16, found {cameras.width}x{cameras.height}")
    scene = visible_scene(state)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial.mp4")
    writer = imageio.get_writer(partial, fps=fps, codec="libx264", macro_block_size=16)
    try:
        for i in range(len(cameras)):
            if job is not None:
                job.check_cancelled()
            with torch.no_grad():
                out = render(scene, cameras[i], background=background)
            writer.append_data((out.rgb.clamp(0, 1).numpy() * 255).round().astype(np.uint8))
            if job is not None:
                job.progress((i + 1) / len(cameras), f"frame {i + 1}/{len(cameras)}")
        writer.close()
        os.replace(partial, path)
    finally:
        writer.close()
        partial.unlink(missing_ok=True)
    return path
