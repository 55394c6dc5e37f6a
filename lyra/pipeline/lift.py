"""The fast lift: one image and its depth -> pixel-aligned 3D Gaussians, in well under a second per megapixel.

This is the preview a user gets on any machine, without the video model: every
pixel with a depth becomes one Gaussian centred on its 3D point.

Conventions (DESIGN.md): OpenCV cameras, intrinsics ``(fx, fy, cx, cy)`` in pixels
with pixel centres at ``+0.5``, ``c2w`` camera-to-world, z-depth (distance along
the optical axis, not along the ray).

Shape of each Gaussian, chosen so that the input view is reproduced and a
nearby view stays closed:

* a disc perpendicular to the pixel's view ray (the thin axis is the ray:
  depth from one image says nothing about extent along the ray);
* in-plane standard deviations sized to the pixel footprint at that depth:
  ``footprint * z / f`` across the ray, and ``footprint * z * cos(theta) / f``
  along the radial image direction (theta = angle off the optical axis), so
  its projection into the input camera is a round blob of ``footprint``
  pixels everywhere in the image;
* opacity lowered where the depth jumps between neighbouring pixels: those
  pixels mix foreground and background colour, and at full opacity they would
  hang between the two surfaces as a "rubber sheet" when seen from the side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from lyra.edit.ops import quat_multiply
from lyra.errors import InputDataError
from lyra.scene.gaussians import Gaussians, rotmats_to_quats
from lyra.scene.sh import SH_C0

# Disc standard deviation in input-view pixels. The rasterizer adds its own 0.3 px^2 low-pass
# (classic 3DGS), so a 0.25 px disc is drawn as a ~0.6 px blob: enough overlap that a nearby
# view shows no cracks, little enough blur that the input view stays sharp. Measured on the
# Middlebury motorcycle pair (tests/pipeline/test_lift.py): footprint 0.2 / 0.25 / 0.4 gives
# input-view PSNR 31.3 / 30.5 / 27.8 dB and second-view PSNR 26.2 / 26.2 / 25.3 dB.
DEFAULT_FOOTPRINT = 0.25
THIN_RATIO = 0.1  # thickness along the ray, relative to the in-plane size
# Relative depth jump |z - z_neighbour| / z at which a pixel counts as "on an edge":
# opacity falls linearly from 1 at EDGE_START to MIN_EDGE_OPACITY at EDGE_FULL.
# Lower opacity lets the white background through where nothing lies behind an edge pixel in
# the input view, so the floor is moderate: 0.5 costs ~1 dB of input-view PSNR on real depth.
EDGE_START = 0.05
EDGE_FULL = 0.2
MIN_EDGE_OPACITY = 0.5
MAX_OPACITY = 0.99


def lift_image(
    image: Tensor | np.ndarray,  # [H, W, 3] uint8, or float in 0..1
    depth: Tensor | np.ndarray,  # [H, W] z-depth; non-finite or <= 0 means "no depth"
    intrinsics: Tensor | Sequence[float],  # [4] (fx, fy, cx, cy) in pixels
    *,
    c2w: Tensor | np.ndarray | None = None,  # [4, 4] OpenCV camera-to-world; identity by default
    footprint: float = DEFAULT_FOOTPRINT,
    edge_opacity: bool = True,
) -> Gaussians:
    """One Gaussian per pixel with a valid depth; see the module docstring.

    Returns float32 Gaussians with SH degree 0, one per valid pixel in row-major
    pixel order.

    Raises :class:`lyra.errors.InputDataError` for mismatched shapes, a non-RGB
    image, bad intrinsics or a non-finite / non-rigid ``c2w``.
    """
    rgb = _image_float(image)  # [H, W, 3]
    height, width = rgb.shape[:2]
    z = torch.as_tensor(np.asarray(depth) if isinstance(depth, np.ndarray) else depth).to(torch.float32)
    if z.shape != (height, width):
        raise InputDataError(f"depth must be [H, W] = [{height}, {width}] like the image, found {tuple(z.shape)}")
    fx, fy, cx, cy = _intrinsics(intrinsics)
    pose = _c2w(c2w)
    valid = torch.isfinite(z) & (z > 0)  # [H, W]
    z = torch.where(valid, z, torch.zeros_like(z))

    rows, cols = torch.nonzero(valid, as_tuple=True)  # [N], [N]
    zs = z[rows, cols]  # [N]
    x = (cols.to(torch.float32) + 0.5 - cx) / fx  # [N] normalised image coordinates
    y = (rows.to(torch.float32) + 0.5 - cy) / fy
    points_cam = torch.stack([x * zs, y * zs, zs], dim=-1)  # [N, 3]

    # Local frame per pixel: e3 = view ray, e1 = tangential (perpendicular to the ray and the optical axis),
    # e2 = e3 x e1. As a quaternion: turn x onto e1 about the optical axis (angle phi), then the minimal
    # rotation taking the optical axis onto the ray (its axis is e1, so e1 stays put). Closed form: 3x
    # faster than building [N, 3, 3] frames and converting them.
    radial = torch.sqrt(x * x + y * y)  # [N] tan(theta)
    phi_half = 0.5 * torch.atan2(x, -y)  # e1 = (cos phi, sin phi, 0) = (-y, x, 0) / radial
    spin = torch.stack([torch.cos(phi_half), torch.sin(phi_half)], dim=-1)  # [N, 2] (w, z) of a turn about z
    ray = points_cam / points_cam.norm(dim=-1, keepdim=True)  # [N, 3]
    tilt = torch.stack([1.0 + ray[:, 2], -ray[:, 1], ray[:, 0]], dim=-1)  # [N, 3] (w, x, y), unnormalised
    tilt = tilt / tilt.norm(dim=-1, keepdim=True)
    local = torch.stack([
        tilt[:, 0] * spin[:, 0],
        tilt[:, 1] * spin[:, 0] + tilt[:, 2] * spin[:, 1],
        tilt[:, 2] * spin[:, 0] - tilt[:, 1] * spin[:, 1],
        tilt[:, 0] * spin[:, 1],
    ], dim=-1)  # [N, 4] tilt (x) spin
    rot = pose[:3, :3]
    # The camera's rotation applied to every local quaternion: a Hamilton product with a fixed left
    # factor is linear, so it is one [N, 4] x [4, 4] matmul (per-component products were 5x slower).
    pose_quat = rotmats_to_quats(rot)
    left = torch.stack([quat_multiply(pose_quat, e) for e in torch.eye(4)], dim=-1)  # [4, 4]: column j = a (x) e_j
    quats = local @ left.T  # [N, 4]

    focal = math.sqrt(fx * fy)
    cos_theta = 1.0 / torch.sqrt(1.0 + radial * radial)
    across = footprint * zs / focal  # [N]
    scales = torch.stack([across, across * cos_theta, THIN_RATIO * across], dim=-1)  # [N, 3]

    opacities = torch.full_like(zs, MAX_OPACITY)
    if edge_opacity:
        opacities = opacities * edge_opacity_factor(z, valid)[rows, cols]
    means = points_cam @ rot.T + pose[:3, 3]  # [N, 3]
    colors = rgb[rows, cols]  # [N, 3]
    sh = ((colors - 0.5) / SH_C0).unsqueeze(1)  # [N, 1, 3] degree-0 SH
    return Gaussians(means, quats, scales, opacities, sh)


def edge_opacity_factor(
    depth: Tensor,  # [H, W] z-depth, 0 where invalid
    valid: Tensor,  # [H, W] bool
) -> Tensor:  # [H, W] in [MIN_EDGE_OPACITY, 1]
    """Opacity multiplier from the largest relative depth jump to a 4-neighbour with depth.

    Neighbours without depth do not count (the border of a masked-out sky is
    not an edge of the object).
    """
    jump = torch.zeros_like(depth)
    safe = torch.where(valid, depth, torch.ones_like(depth))
    for dim in (0, 1):
        diff = (safe.narrow(dim, 1, safe.shape[dim] - 1) - safe.narrow(dim, 0, safe.shape[dim] - 1)).abs()
        both = valid.narrow(dim, 1, valid.shape[dim] - 1) & valid.narrow(dim, 0, valid.shape[dim] - 1)
        diff = torch.where(both, diff, torch.zeros_like(diff))
        # The same jump is relative to each side's own depth.
        after = jump.narrow(dim, 1, jump.shape[dim] - 1)
        before = jump.narrow(dim, 0, jump.shape[dim] - 1)
        after.copy_(torch.maximum(after, diff / safe.narrow(dim, 1, safe.shape[dim] - 1)))
        before.copy_(torch.maximum(before, diff / safe.narrow(dim, 0, safe.shape[dim] - 1)))
    ramp = ((jump - EDGE_START) / (EDGE_FULL - EDGE_START)).clamp(0.0, 1.0)
    return 1.0 - (1.0 - MIN_EDGE_OPACITY) * ramp


def _image_float(image: Tensor | np.ndarray) -> Tensor:  # -> [H, W, 3] float32 in 0..1
    array = torch.as_tensor(np.asarray(image) if isinstance(image, np.ndarray) else image)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise InputDataError(f"image must be [H, W, 3] RGB, found shape {tuple(array.shape)}")
    array = array[..., :3]
    if array.dtype == torch.uint8:
        return array.to(torch.float32) / 255.0
    if not array.is_floating_point():
        raise InputDataError(f"image must be uint8 or float in 0..1, found {array.dtype}")
    array = array.to(torch.float32)
    if not torch.isfinite(array).all():
        raise InputDataError("image contains NaN or Inf")
    return array.clamp(0.0, 1.0)


def _intrinsics(intrinsics: Tensor | Sequence[float]) -> tuple[float, float, float, float]:
    values = torch.as_tensor(intrinsics, dtype=torch.float64).flatten()
    if values.numel() != 4 or not torch.isfinite(values).all():
        raise InputDataError(f"intrinsics must be 4 finite numbers (fx, fy, cx, cy), found {values.tolist()}")
    fx, fy, cx, cy = (float(v) for v in values)
    if fx <= 0 or fy <= 0:
        raise InputDataError(f"focal lengths must be positive, found fx={fx}, fy={fy}")
    return fx, fy, cx, cy


def _c2w(c2w: Tensor | np.ndarray | None) -> Tensor:  # -> [4, 4] float32
    if c2w is None:
        return torch.eye(4)
    pose = torch.as_tensor(np.asarray(c2w) if isinstance(c2w, np.ndarray) else c2w).to(torch.float32)
    if pose.shape != (4, 4) or not torch.isfinite(pose).all():
        raise InputDataError(f"c2w must be a finite [4, 4] matrix, found shape {tuple(pose.shape)}")
    rot = pose[:3, :3]
    if not torch.allclose(rot @ rot.T, torch.eye(3), atol=1e-3):
        raise InputDataError("c2w must be rigid (its 3x3 block a rotation, no scale)")
    return pose
