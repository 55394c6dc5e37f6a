"""Server-side renders for the Render panel (viser-free): stills and MP4 videos through :mod:`lyra.render`.

Renders draw every visible layer with soft deletes applied and full SH; the
background is an RGB triple in [0, 1] (None: the look's own). ``look`` is a
name of :data:`lyra.render.looks.LOOKS` ("lyra": 3DGUT as Lyra's own renders,
"standard": EWA splatting); None picks :func:`lyra.render.looks.default_look`
of the scene ("lyra" for scenes that came from Lyra). Videos go through the same framing
(:func:`lyra.render.framing.trajectory_cameras`) and the same
:func:`lyra.render.video.render_video` as ``lyra render``, so a path drawn here
is the path the CLI draws for the same scene, size and frame count.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lyra.progress import Progress
from lyra.render.camera import Camera
from lyra.render.framing import DEFAULT_FOV_Y, trajectory_cameras
from lyra.render.looks import default_look, look_options
from lyra.render.render import render
from lyra.render.video import render_video, to_uint8
from lyra.scene import GaussianSequence
from viewer.state import AppState


def render_still(state: AppState, camera: Camera, background=None, look: str | None = None) -> np.ndarray:
    """``uint8 [H, W, 3]`` image of the visible scene (frame shown now) from ``camera`` (a single camera)."""
    scene = state.visible_scene()
    with torch.no_grad():
        return to_uint8(render(scene, camera, **look_options(look or default_look(scene), background=background)).rgb)


def render_path_video(
    state: AppState,
    trajectory,  # str | lyra.render.paths.CameraPath
    num_frames: int,
    width: int,
    height: int,
    path: str | os.PathLike,
    *,
    fps: float = 24.0,
    freeze_time: bool = False,
    background=None,
    look: str | None = None,
    fov_y: float = DEFAULT_FOV_Y,
    progress: Progress | None = None,
) -> Path:
    """An MP4 of the visible scene along ``trajectory`` (a name of ``trajectory_names()``, a JSON path or a CameraPath).

    A 4D scene plays over the video (its whole clip spread over the frames, as
    ``lyra render`` does) unless ``freeze_time``, which holds the frame shown now.
    The write is atomic; a cancel from ``progress`` leaves no file.
    """
    scene = state.visible_scene(animate=not freeze_time)
    cameras, times = trajectory_cameras(scene, trajectory, num_frames, width, height, fov_y=fov_y)
    times = times.tolist() if times is not None and isinstance(scene, GaussianSequence) else None
    options = look_options(look or default_look(scene), background=background)
    render_video(scene, cameras, path, fps=fps, times=times, progress=progress, **options)
    return Path(path)
