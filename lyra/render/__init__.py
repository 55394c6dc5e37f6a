"""Cameras, trajectories, rays and renderers.

Public API (stable; other packages import from here):

* :class:`Camera` - OpenCV camera-to-world ``c2w [..., 4, 4]``, pixel
  intrinsics ``[..., 4] = (fx, fy, cx, cy)``, width, height; ``look_at``,
  ``from_fov``, ``resized``, ``rays``, ``plucker``, ``to_viser`` / ``from_viser``.
* :func:`render` -> :class:`RenderOutput` (``rgb [..., H, W, 3]``,
  ``alpha [..., H, W]``, ``depth [..., H, W]`` expected depth); backends
  ``"auto"`` (gsplat on CUDA, else torch), ``"gsplat"``, ``"torch"`` (CPU, differentiable).
* Trajectories: :func:`lyra_trajectory` (Lyra presets), :func:`orbit`,
  keyframed :class:`CameraPath` / :class:`Keyframe` (JSON load/save).
* :func:`frame_scene`: a default starting camera for a scene.
* Output: :func:`render_video`, :func:`render_frames`, :func:`write_video`, :func:`write_image`.
* Rays: :func:`pixel_rays`, :func:`plucker_embedding`, :func:`scale_intrinsics`.
"""

from lyra.render.camera import DEFAULT_UP, Camera, look_at_c2w
from lyra.render.framing import Framing, frame_scene
from lyra.render.paths import CameraPath, Keyframe
from lyra.render.rays import pixel_rays, plucker_embedding, scale_intrinsics
from lyra.render.render import BACKENDS, RenderOutput, gsplat_available, render
from lyra.render.trajectories import (
    LYRA_DEMO_ORDER,
    LYRA_PRESETS,
    LYRA_TRAJECTORY_INDEX,
    lyra_positions,
    lyra_trajectory,
    orbit,
    preset_distance,
)
from lyra.render.video import render_frames, render_video, write_image, write_video

__all__ = [
    "BACKENDS",
    "DEFAULT_UP",
    "LYRA_DEMO_ORDER",
    "LYRA_PRESETS",
    "LYRA_TRAJECTORY_INDEX",
    "Camera",
    "CameraPath",
    "Framing",
    "Keyframe",
    "RenderOutput",
    "frame_scene",
    "gsplat_available",
    "look_at_c2w",
    "lyra_positions",
    "lyra_trajectory",
    "orbit",
    "pixel_rays",
    "plucker_embedding",
    "preset_distance",
    "render",
    "render_frames",
    "render_video",
    "scale_intrinsics",
    "write_image",
    "write_video",
]
