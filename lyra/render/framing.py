"""Default camera placement for a scene: frame its robust bounds.

Lyra scenes live in the first input camera's OpenCV frame (camera at the
origin looking down +z), so when most splats are in front of the origin
(z > 0) that camera is the natural starting view and the trajectory's
``center_depth`` is the median splat depth. Any other scene gets a camera on
its -z side looking at the centre of its 5-95 percentile box, far enough back
that the box fits the vertical field of view.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from lyra.render.camera import look_at_c2w
from lyra.scene.gaussians import Gaussians
from lyra.scene.sequence import GaussianSequence

ROBUST_QUANTILES = (0.05, 0.95)
_MAX_SAMPLES = 200_000  # quantiles of a random subset: enough for framing, cheap for 10M splats


@dataclasses.dataclass
class Framing:
    origin_c2w: Tensor  # [4, 4] the starting camera
    center: Tensor  # [3] robust centre of the scene
    center_depth: float  # distance from the starting camera to the centre along its view
    radius: float  # half the diagonal of the robust box


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


def frame_scene(scene: Gaussians | GaussianSequence, fov_y: float = math.radians(60.0)) -> Framing:
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
