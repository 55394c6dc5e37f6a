"""Scene framing, the ONE place that decides where cameras go for a scene.

Lyra scenes live in the first input camera's OpenCV frame (camera at the
origin looking down +z), so when most splats are in front of the origin
(z > 0) that camera is the natural starting view and the trajectory's
``center_depth`` is the median splat depth. Any other scene gets a camera on
its -z side looking at the centre of its 5-95 percentile box, far enough back
that the box fits the vertical field of view.

Users: :func:`frame_scene` (starting camera, centre, radius: the viewer's
fit-camera and its default selection volumes) and :func:`trajectory_cameras`
(a named path or a camera-path JSON around the framed scene: ``lyra render``
and the viewer's Render panel, so both draw the same path). A
:class:`~lyra.scene.GaussianSequence` is framed by its first frame.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.render.camera import Camera, look_at_c2w
from lyra.render.trajectories import DEFAULT_FOV_Y
from lyra.scene.gaussians import Gaussians
from lyra.scene.sequence import GaussianSequence

ROBUST_QUANTILES = (0.05, 0.95)
TRAJECTORY_HELP = (
    "orbit, a Lyra preset (left, right, up, down, zoom_in, zoom_out, clockwise, counterclockwise, none) "
    "or a camera-path JSON file"
)
_MAX_SAMPLES = 200_000  # quantiles of a random subset: enough for framing, cheap for 10M splats


@dataclasses.dataclass
class Framing:
    origin_c2w: Tensor  # [4, 4] the starting camera
    center: Tensor  # [3] robust centre of the scene
    center_depth: float  # distance from the starting camera to the centre along its view
    radius: float  # half the diagonal of the robust box

    @property
    def look_at(self) -> Tensor:  # [3]
        """The point the starting camera looks at: ``center_depth`` along its view direction."""
        return self.origin_c2w[:3, 3] + self.origin_c2w[:3, 2] * self.center_depth

    @property
    def up(self) -> Tensor:  # [3]
        """The starting camera's image-up direction in world space (OpenCV: -y of the camera)."""
        return -self.origin_c2w[:3, 1]


def robust_bounds(means: Tensor) -> tuple[Tensor, Tensor]:  # [N, 3] -> ([3], [3])
    """The 5th and 95th percentiles of the splat centres per axis."""
    if len(means) == 0:
        zero = torch.zeros(3, dtype=torch.float64)
        return zero - 1, zero + 1
    pts = means.detach().double().cpu()
    if len(pts) > _MAX_SAMPLES:
        generator = torch.Generator().manual_seed(0)
        pts = pts[torch.randperm(len(pts), generator=generator)[:_MAX_SAMPLES]]
    q = torch.quantile(pts, torch.tensor(ROBUST_QUANTILES, dtype=torch.float64), dim=0)
    return q[0], q[1]


def frame_scene(scene: Gaussians | GaussianSequence, fov_y: float = DEFAULT_FOV_Y) -> Framing:
    """A starting camera and scale for ``scene`` (see the module docstring)."""
    gaussians = scene.frames[0] if isinstance(scene, GaussianSequence) else scene
    lo, hi = robust_bounds(gaussians.means)
    center = 0.5 * (lo + hi)
    radius = max(float(0.5 * (hi - lo).norm()), 1e-3)
    z = gaussians.means[:, 2].detach().double().cpu()
    if len(z) and float((z > 0).double().mean()) >= 0.9:
        depth = float(torch.median(z[z > 0]))
        return Framing(torch.eye(4, dtype=torch.float64), center, depth, radius)
    distance = radius / math.tan(0.5 * fov_y) * 1.1
    eye = center - torch.tensor([0.0, 0.0, distance], dtype=torch.float64)
    return Framing(look_at_c2w(eye, center), center, distance, radius)


def trajectory_names() -> list[str]:
    """The named paths :func:`trajectory_cameras` draws: ``orbit`` and the Lyra presets."""
    from lyra.render.trajectories import LYRA_PRESETS

    return ["orbit", *LYRA_PRESETS]


def trajectory_cameras(
    scene: Gaussians | GaussianSequence,
    trajectory,  # str | CameraPath
    num_frames: int,
    width: int,
    height: int,
    *,
    fov_y: float = DEFAULT_FOV_Y,
    rotation: str = "center_facing",
    distance_factor: float = 1.0,
) -> tuple[Camera, Tensor | None]:
    """Cameras ``[num_frames]`` along ``trajectory`` around the framed ``scene``, and times (JSON paths only).

    ``trajectory``: ``orbit`` (around the robust centre, the box filling the view), a
    Lyra preset (from the starting camera, moving ``center_depth``-relative distances)
    a path to a camera-path JSON file, or a :class:`lyra.render.paths.CameraPath` already read.
    Raises InputDataError for anything else.
    """
    from lyra.render.paths import CameraPath
    from lyra.render.trajectories import LYRA_PRESETS, lyra_trajectory, orbit

    if isinstance(trajectory, CameraPath):  # already read (e.g. by the viewer, confined)
        return trajectory.sample(num_frames, width, height)
    if trajectory.lower().endswith(".json"):
        return CameraPath.load(trajectory).sample(num_frames, width, height)
    if trajectory not in trajectory_names():
        raise InputDataError(f"trajectory: expected {TRAJECTORY_HELP}; found {trajectory!r}")
    framing = frame_scene(scene, fov_y)
    if trajectory == "orbit":
        radius = framing.radius / math.tan(0.5 * fov_y) * 1.1
        return orbit(framing.center, radius, num_frames, fov_y=fov_y, width=width, height=height), None
    assert trajectory in LYRA_PRESETS
    cameras = lyra_trajectory(
        trajectory, num_frames, rotation=rotation, distance_factor=distance_factor,
        center_depth=framing.center_depth, fov_y=fov_y, width=width, height=height,
        origin_c2w=framing.origin_c2w,
    )
    return cameras, None
