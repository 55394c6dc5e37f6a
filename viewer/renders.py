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
from lyra.render.video import render_frames, to_uint8, write_video
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
        return to_uint8(render(scene, camera, background=background).rgb)


def render_video(state: AppState, cameras: Camera, path: str | os.PathLike, fps: int,
                 background=(1.0, 1.0, 1.0), job: Job | None = None) -> Path:
    """Write an MP4 (H.264) of the visible scene along ``cameras`` (a batch); returns ``path``.

    Uses :func:`lyra.render.video.write_video`, which writes atomically, so a
    cancelled or failed render leaves nothing behind. The job (if any) sees
    progress per frame and may cancel between frames.
    """
    scene = visible_scene(state)
    count = len(cameras)

    def frames():
        for i, rgb in enumerate(render_frames(scene, cameras, background=background)):
            if job is not None:
                job.check_cancelled()
                job.progress((i + 1) / count, f"frame {i + 1}/{count}")
            yield rgb

    write_video(path, frames(), fps=fps)
    return Path(path)
