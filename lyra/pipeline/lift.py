"""The fast lift: one image and its depth -> surface-aligned 3D Gaussians (surfels), in well under a second per megapixel.

This is the preview a user gets on any machine, without the video model: every
pixel (or every ``s x s`` block of pixels, see *Resolution* below) with a depth
becomes one flat Gaussian, a surfel, centred on its 3D point.

Conventions (DESIGN.md): OpenCV cameras, intrinsics ``(fx, fy, cx, cy)`` in pixels
with pixel centres at ``+0.5``, ``c2w`` camera-to-world, z-depth (distance along
the optical axis, not along the ray).

Shape of each Gaussian, chosen so that the input view is reproduced and the
surface stays closed when seen from elsewhere:

* a disc in the tangent plane of the surface: the normal comes from the depth
  map (neighbouring pixels unprojected, the cross product of the horizontal and
  vertical differences; each axis uses the side whose depth jump is smaller, or
  their mean when both are smooth). A disc facing the pixel's view ray instead
  would turn edge-on as soon as the camera orbits away from a slanted surface
  (a floor becomes rows of slits, a "venetian blind");
* the normal is *unreliable* where the depth jumps on both sides of the pixel
  along an axis (a relative jump above ``EDGE_START``): there the disc faces
  the ray, as the depth says nothing about the surface's slant. A normal more
  than ``MAX_TILT`` away from the ray (a grazing surface) is turned back to
  ``MAX_TILT``: a disc of a grazing surface is stretched by ``1 / cos(tilt)``
  and the depth of such pixels is the least trustworthy;
* its size is the surface patch the pixel covers: the disc's covariance is
  ``sigma^2 (T_u T_u^T + T_v T_v^T)`` with ``T_u, T_v`` the surface points'
  derivatives per input pixel along the image axes, so its projection into the
  input camera is a round blob of ``sigma`` input pixels (standard deviation)
  everywhere, and neighbours keep their spacing on the surface whatever the
  viewing angle. ``sigma`` is chosen so that, drawn at the input camera with
  the ``EPS_2D`` (0.3 px^2) low-pass every splatting renderer adds, the blob
  is ``footprint`` times the spacing ``s``: ``sigma^2 = (footprint s)^2 - 0.3``.
  At full resolution that is a 0.35 px disc (sharp; the low-pass closes the
  gaps), for 2 x 2 blocks a 1.2 px one (overlapping in 3D, and above the
  browser's minimum on-screen size at the viewer's starting camera);
* discs without a reliable normal (depth edges) get half the size
  (``EDGE_SIZE``): they hang in the gap that opens behind an edge;
* thickness along the normal ``THIN_RATIO`` times the smaller in-plane size;
* opacity lowered where the depth jumps between neighbouring pixels: those
  pixels mix foreground and background colour, and at full opacity they would
  hang between the two surfaces as a "rubber sheet" when seen from the side.

Resolution (``pixels_per_splat``): ``1`` lifts every pixel (what server-side
renders of the input's resolution want); ``s > 1`` lifts ``s x s`` pixel
blocks (one surfel per block, the mean colour of the block's pixels on the
block's median surface, ``s`` times the size), so a large photo stays a scene
the browser draws and sorts quickly. ``None`` (the default) picks the smallest
``s`` that keeps the count at or below :data:`LIVE_VIEW_SPLATS`: a 741 x 500
photo becomes 2 x 2 blocks, a 256 x 256 one stays per pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import InputDataError
from lyra.render.projection import EPS_2D
from lyra.scene.gaussians import Gaussians, rotmats_to_quats
from lyra.scene.sh import SH_C0

# Standard deviation of a splat as drawn at the input camera (disc + the renderer's EPS_2D low-pass),
# in units of the splat spacing. Measured on the Middlebury motorcycle pair (bench/lift.py, full
# resolution, PSNR from the right camera over co-visible pixels): 0.60 / 0.63 / 0.65 / 0.67 / 0.74
# (discs of 0.25 / 0.3 / 0.35 / 0.4 / 0.5 px) give 24.79 / 24.92 / 24.96 / 24.88 / 24.44 dB; the
# previous lift (ray-facing 0.25 px discs) 24.86 dB.
DEFAULT_FOOTPRINT = 0.65
MIN_DISC = 0.1  # smallest disc standard deviation, in input pixels per lifted pixel
THIN_RATIO = 0.1  # thickness along the normal, relative to the smaller in-plane size
MAX_TILT = math.radians(75.0)  # largest angle between a disc's normal and its view ray
# The live view's share of a generated image: pixels_per_splat=None picks the smallest block size
# that keeps this many splats or fewer (2**17: a 512 x 256 image per pixel, 741 x 500 in 2 x 2 blocks).
LIVE_VIEW_SPLATS = 1 << 17
# Relative depth jump |z - z_neighbour| / z at which a pixel counts as "on an edge":
# opacity falls linearly from 1 at EDGE_START to MIN_EDGE_OPACITY at EDGE_FULL.
# Lower opacity lets the white background through where nothing lies behind an edge pixel in
# the input view, so the floor is moderate: 0.5 costs ~1 dB of input-view PSNR on real depth.
EDGE_START = 0.05
EDGE_FULL = 0.2
MIN_EDGE_OPACITY = 0.5
# Size of a disc without a reliable normal (a depth edge), relative to the others: its colour mixes
# both sides of the edge, and a full-size disc would hang further into the gap that opens behind
# the edge when seen from the side.
EDGE_SIZE = 0.5
MAX_OPACITY = 0.99


def lift_image(
    image: Tensor | np.ndarray,  # [H, W, 3] uint8, or float in 0..1
    depth: Tensor | np.ndarray,  # [H, W] z-depth; non-finite or <= 0 means "no depth"
    intrinsics: Tensor | Sequence[float],  # [4] (fx, fy, cx, cy) in pixels
    *,
    c2w: Tensor | np.ndarray | None = None,  # [4, 4] OpenCV camera-to-world; identity by default
    footprint: float = DEFAULT_FOOTPRINT,
    edge_opacity: bool = True,
    pixels_per_splat: int | None = None,
) -> Gaussians:
    """One surfel per pixel (or per ``pixels_per_splat`` squared block) with a valid depth; see the module docstring.

    ``footprint``: a splat's standard deviation as drawn at the input camera,
    in units of its spacing (see the module docstring).
    ``pixels_per_splat``: ``1`` for full resolution, ``s`` for ``s x s``
    blocks, ``None`` for :func:`live_view_stride` (at most
    :data:`LIVE_VIEW_SPLATS` splats). Returns float32 Gaussians with SH
    degree 0 in row-major (block) order.

    Raises :class:`lyra.errors.InputDataError` for mismatched shapes, a non-RGB
    image, bad intrinsics, a non-finite / non-rigid ``c2w`` or a bad
    ``pixels_per_splat``.
    """
    rgb = _image_float(image)  # [H, W, 3]
    height, width = rgb.shape[:2]
    z = torch.as_tensor(np.asarray(depth) if isinstance(depth, np.ndarray) else depth).to(torch.float32)
    if z.shape != (height, width):
        raise InputDataError(f"depth must be [H, W] = [{height}, {width}] like the image, found {tuple(z.shape)}")
    fx, fy, cx, cy = _intrinsics(intrinsics)
    pose = _c2w(c2w)
    stride = live_view_stride(height, width) if pixels_per_splat is None else _stride(pixels_per_splat)
    valid = torch.isfinite(z) & (z > 0)  # [H, W]
    z = torch.where(valid, z, torch.zeros_like(z))
    u = torch.arange(width, dtype=torch.float32) + 0.5  # pixel centres
    v = torch.arange(height, dtype=torch.float32) + 0.5
    grid_u, grid_v = u.expand(height, width), v[:, None].expand(height, width)
    if stride > 1:
        rgb, z, grid_u, grid_v, valid = _blocks(rgb, z, grid_u, grid_v, valid, stride)  # [h, w, ...]

    # The surface points of the (block) grid, in camera space, channels first (contiguous planes:
    # ~2x faster than [h, w, 3] for this elementwise work): [3, h, w], 0 where invalid.
    nx, ny = (grid_u - cx) / fx, (grid_v - cy) / fy  # normalised image coordinates
    points = torch.stack([nx * z, ny * z, z])
    normals, reliable = surface_normals(points, z, valid)  # [3, h, w] unit, facing the camera; [h, w]

    rows, cols = torch.nonzero(valid, as_tuple=True)  # [N], [N]
    zs, p_cam, n_cam = z[rows, cols], points[:, rows, cols], normals[:, rows, cols]  # [N], [3, N], [3, N]
    ray = torch.stack([nx[rows, cols], ny[rows, cols], torch.ones_like(zs)])  # [3, N] (x, y, 1)
    sigma = math.sqrt(max((footprint * stride) ** 2 - EPS_2D, (MIN_DISC * stride) ** 2))  # input pixels
    rot_cam, scales = _surfel_frames(p_cam, ray, n_cam, zs, (fx, fy), sigma)
    scales = scales * torch.where(reliable[rows, cols], 1.0, EDGE_SIZE).unsqueeze(-1)

    opacities = torch.full_like(zs, MAX_OPACITY)
    if edge_opacity:
        opacities = opacities * edge_opacity_factor(z, valid)[rows, cols]
    rot = pose[:3, :3]
    means = (rot @ p_cam).T + pose[:3, 3]  # [N, 3]
    quats = rotmats_to_quats(rot @ rot_cam)  # [N, 4]
    colors = rgb[rows, cols]  # [N, 3]
    sh = ((colors - 0.5) / SH_C0).unsqueeze(1)  # [N, 1, 3] degree-0 SH
    return Gaussians(means, quats, scales, opacities, sh)


def live_view_stride(height: int, width: int, max_splats: int = LIVE_VIEW_SPLATS) -> int:
    """The smallest block size ``s`` with ``ceil(H / s) * ceil(W / s) <= max_splats``."""
    stride = max(1, math.ceil(math.sqrt(height * width / max_splats)))
    while math.ceil(height / stride) * math.ceil(width / stride) > max_splats:
        stride += 1
    return stride


def surface_normals(
    points: Tensor,  # [3, H, W] camera-space points, channels first
    depth: Tensor,  # [H, W] z-depth, 0 where invalid
    valid: Tensor,  # [H, W] bool
) -> tuple[Tensor, Tensor]:  # [3, H, W] unit normals facing the camera (n . ray < 0), [H, W] reliable
    """Normals from the depth map's neighbours (the reversed view ray where they are unreliable), and where they are reliable.

    Along each image axis the difference to the neighbour with the smaller
    relative depth jump is used (their mean where both are below
    ``EDGE_START``); a pixel with no such neighbour along an axis is unreliable.
    Normals tilted more than ``MAX_TILT`` from the ray are turned back to it.
    """
    ray = points / depth.clamp_min(1e-30)  # [3, H, W] (x, y, 1)
    ray = ray / ray.norm(dim=0)
    tangents, reliable = [], valid.clone()
    for dim in (1, 0):  # image x (columns), then image y (rows)
        tangent, ok = _axis_tangent(points, depth, valid, dim)
        tangents.append(tangent)
        reliable &= ok
    normal = torch.linalg.cross(tangents[0], tangents[1], dim=0)  # x-right, y-down: away from the camera
    length = normal.norm(dim=0)
    reliable &= length > 0
    normal = -normal / length.clamp_min(1e-30)  # towards the camera
    normal = torch.where(reliable, normal, -ray)
    # Turn back to MAX_TILT: n = -ray cos(MAX_TILT) + (its component across the ray, unit) sin(MAX_TILT).
    cos_tilt = -(normal * ray).sum(0)
    across = normal + cos_tilt * ray
    across = across / across.norm(dim=0).clamp_min(1e-30)
    limited = -ray * math.cos(MAX_TILT) + across * math.sin(MAX_TILT)
    return torch.where(cos_tilt < math.cos(MAX_TILT), limited, normal), reliable


def _axis_tangent(points: Tensor, depth: Tensor, valid: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Surface difference per grid step along ``dim`` of the image ([3, H, W]) and whether one was found ([H, W])."""
    size = depth.shape[dim]
    if size < 2:
        return torch.zeros_like(points), torch.zeros_like(valid)
    step = points.narrow(dim + 1, 1, size - 1) - points.narrow(dim + 1, 0, size - 1)  # [3, .., size - 1, ..]
    jump = (depth.narrow(dim, 1, size - 1) - depth.narrow(dim, 0, size - 1)).abs()
    both = valid.narrow(dim, 1, size - 1) & valid.narrow(dim, 0, size - 1)
    jump = torch.where(both, jump, torch.full_like(jump, math.inf))
    # Per pixel: the step to the next pixel ("forward", none for the last) and from the previous one.
    forward, backward = _pad(step, dim + 1, 0.0, after=True), _pad(step, dim + 1, 0.0, after=False)
    jump_f, jump_b = _pad(jump, dim, math.inf, after=True), _pad(jump, dim, math.inf, after=False)
    limit = EDGE_START * depth
    ok_f, ok_b = jump_f < limit, jump_b < limit
    one = torch.where(ok_f & (jump_f <= jump_b), forward, backward)
    tangent = torch.where(ok_f & ok_b, 0.5 * (forward + backward), one)
    return tangent, ok_f | ok_b


def _pad(values: Tensor, dim: int, fill: float, *, after: bool) -> Tensor:
    """``values`` with one slice of ``fill`` appended (``after``) or prepended along ``dim``."""
    shape = list(values.shape)
    shape[dim] = 1
    extra = values.new_full(shape, fill)
    return torch.cat([values, extra] if after else [extra, values], dim=dim)


def _surfel_frames(
    points: Tensor,  # [3, N] camera space
    ray: Tensor,  # [3, N] (x, y, 1): the point is z * ray
    normal: Tensor,  # [3, N] unit
    depth: Tensor,  # [N] z
    focal: tuple[float, float],  # (fx, fy)
    sigma_px: float,  # disc standard deviation in input pixels
) -> tuple[Tensor, Tensor]:  # rotations [N, 3, 3] (columns: major axis, minor axis, normal), scales [N, 3]
    """Discs in the plane through each point with ``normal`` whose projection is round, ``sigma_px`` wide.

    On that plane the surface point under image position (u, v) moves by
    ``T_u = (z / fx) (e_x - ray n_x / (n . ray))`` per pixel along u (``T_v``
    likewise); the disc's covariance is ``sigma_px^2 (T_u T_u^T + T_v T_v^T)``.
    """
    fx, fy = focal
    facing = (normal * ray).sum(0)  # [N], < 0
    t_u = -ray * (normal[0] / facing)  # [3, N]
    t_u[0] += 1.0
    t_u = t_u * (depth / fx)
    t_v = -ray * (normal[1] / facing)
    t_v[1] += 1.0
    t_v = t_v * (depth / fy)
    # In-plane basis (a, b = n x a) and the 2x2 covariance there (T_u . b = 0 by construction).
    tu_a = t_u.norm(dim=0)
    a = t_u / tu_a
    b = torch.linalg.cross(normal, a, dim=0)
    tv_a, tv_b = (t_v * a).sum(0), (t_v * b).sum(0)
    c_aa, c_ab, c_bb = tu_a * tu_a + tv_a * tv_a, tv_a * tv_b, tv_b * tv_b
    half_diff = 0.5 * (c_aa - c_bb)
    spread = torch.sqrt(half_diff * half_diff + c_ab * c_ab)
    mid = 0.5 * (c_aa + c_bb)
    major = torch.sqrt(mid + spread)
    minor = torch.sqrt((mid - spread).clamp_min(0.0))
    angle = 0.5 * torch.atan2(c_ab, half_diff)  # major axis: cos(angle) a + sin(angle) b
    axis_major = torch.cos(angle) * a + torch.sin(angle) * b  # [3, N]
    axis_minor = torch.linalg.cross(normal, axis_major, dim=0)
    rot = torch.stack([axis_major, axis_minor, normal]).permute(2, 1, 0)  # [N, 3 (coordinate), 3 (axis)]
    scales = sigma_px * torch.stack([major, minor, THIN_RATIO * minor], dim=-1)
    return rot, scales


def _blocks(rgb: Tensor, depth: Tensor, grid_u: Tensor, grid_v: Tensor, valid: Tensor, stride: int):
    """``stride x stride`` blocks -> one sample each: ``(rgb [h, w, 3], depth, u, v, valid [h, w])``.

    The block's surface is its median valid depth; its pixels within ``EDGE_START``
    of it (relative) give the sample's colour, position and depth as means, so a
    block across a depth edge takes one side, never a blend floating between them.
    """
    height, width = depth.shape
    h, w = -(-height // stride), -(-width // stride)
    pad = (0, w * stride - width, 0, h * stride - height)

    def cells(values: Tensor) -> Tensor:  # [H, W, C] -> [h, w, stride * stride, C]
        padded = F.pad(values.permute(2, 0, 1), pad)  # [C, H', W']
        c = padded.shape[0]
        return padded.reshape(c, h, stride, w, stride).permute(1, 3, 2, 4, 0).reshape(h, w, stride * stride, c)

    ok = cells(valid.unsqueeze(-1).float())[..., 0] > 0  # [h, w, k]
    zc = cells(depth.unsqueeze(-1))[..., 0]
    median = torch.where(ok, zc, torch.full_like(zc, math.nan)).nanmedian(dim=-1).values  # [h, w]
    block_valid = ok.any(-1)
    median = torch.where(block_valid, median, torch.ones_like(median))
    member = ok & ((zc - median.unsqueeze(-1)).abs() <= EDGE_START * median.unsqueeze(-1))  # [h, w, k]
    weight = member.float()
    count = weight.sum(-1).clamp_min(1.0)
    values = cells(torch.cat([rgb, depth.unsqueeze(-1), grid_u.unsqueeze(-1), grid_v.unsqueeze(-1)], dim=-1))
    mean = (values * weight.unsqueeze(-1)).sum(-2) / count.unsqueeze(-1)  # [h, w, 6]
    block_depth = torch.where(block_valid, mean[..., 3], torch.zeros_like(median))
    return mean[..., :3], block_depth, mean[..., 4], mean[..., 5], block_valid


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


def _stride(pixels_per_splat) -> int:
    if isinstance(pixels_per_splat, bool) or not isinstance(pixels_per_splat, int | np.integer) or pixels_per_splat < 1:
        raise InputDataError(f"pixels_per_splat must be a whole number >= 1 (or None for automatic), found {pixels_per_splat!r}")
    return int(pixels_per_splat)
