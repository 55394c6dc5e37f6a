"""Point unprojection, the depth-reliability mask and forward warping by bilinear splatting (GEN3C_SPEC.md section 7).

Conventions of the official 3D cache, kept here so its renders match:

* pixel ``(x, y)`` sits at *integer* coordinates (no +0.5) both when
  unprojecting and on the splat grid; ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``;
* depth is z-depth; ``X_cam = z K^-1 [x, y, 1]``, ``X_world = w2c^-1 X_cam``;
* splatting: every source point adds its value to the 4 integer neighours of its
  target position ``(u, v) = (p_x, p_y) / (p_z + 1e-7)`` with the bilinear
  proximity weight, times its mask, divided by the soft z-buffer weight
  ``exp(min(50 log1p(z) / (max log1p(z) + 1e-7), 80)) + 1e-7`` (nearer points
  dominate exponentially, no hard depth test). Coordinates are offset by +1 and
  clamped to a 1-pixel border that is cropped afterwards. The result is
  ``sum(w c) / sum(w)`` where ``sum(w) > 0``, -1 (images) elsewhere, and the mask
  is ``sum(w) > 0``.

Vectorised: points whose every neighbour lands in the cropped border or whose
weight is zero are dropped before one ``index_add_`` per frame (they add nothing,
so the result is the same as the official all-points scatter); the soft z-buffer
maximum still runs over all points of the official warp chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DEPTH_WEIGHT_SCALE = 50.0
MAX_EXPONENT = 80.0  # float32 / bfloat16 value of the official clamp


def intrinsics_matrix(intrinsics: Tensor) -> Tensor:  # [..., 4] (fx, fy, cx, cy) -> [..., 3, 3]
    fx, fy, cx, cy = intrinsics.unbind(-1)
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    rows = [torch.stack([fx, zero, cx], -1), torch.stack([zero, fy, cy], -1), torch.stack([zero, zero, one], -1)]
    return torch.stack(rows, -2)


def unproject_depth(depth: Tensor, w2c: Tensor, K: Tensor) -> Tensor:  # [H, W], [4, 4], [3, 3] -> [H, W, 3]
    """World points of every pixel with depth > 0 (others are 0), at integer pixel coordinates."""
    height, width = depth.shape
    y, x = torch.meshgrid(
        torch.arange(height, dtype=depth.dtype), torch.arange(width, dtype=depth.dtype), indexing="ij"
    )
    pixels = torch.stack([x, y, torch.ones_like(x)], -1)  # [H, W, 3]
    rays = pixels @ torch.linalg.inv(K.float()).to(depth.dtype).T
    cam = rays * depth[..., None]
    c2w = torch.linalg.inv(w2c.float()).to(depth.dtype)
    world = cam @ c2w[:3, :3].T + c2w[:3, 3]
    return torch.where((depth > 0)[..., None], world, torch.zeros_like(world))


def reliable_depth_mask(depth: Tensor, window: int = 5, ratio: float = 0.05, eps: float = 1e-6) -> Tensor:
    """``(max - min) / (mean + eps) < ratio`` over a ``window`` square (zero padding counts in the mean) and depth > 0.

    ``depth [..., H, W]`` -> bool ``[..., H, W]``.
    """
    shape = depth.shape
    d = depth.reshape(-1, 1, *shape[-2:]).float()
    pad = window // 2
    local_max = F.max_pool2d(d, window, stride=1, padding=pad)
    local_min = -F.max_pool2d(-d, window, stride=1, padding=pad)
    local_mean = F.avg_pool2d(d, window, stride=1, padding=pad)  # count_include_pad: padding zeros count
    reliable = ((local_max - local_min) / (local_mean + eps) < ratio) & (d > 0)
    return reliable.reshape(shape)


def project(points: Tensor, w2c: Tensor, K: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``points [P, 3]`` world -> target pixel ``u, v`` and camera z, each ``[P]``."""
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    proj = cam @ K.T
    z = proj[:, 2]
    return proj[:, 0] / (z + 1e-7), proj[:, 1] / (z + 1e-7), z


def soft_zbuffer_weights(z: Tensor, log_max: Tensor) -> Tensor:
    """``1 / (exp(min(50 log1p(z) / (log_max + 1e-7), 80)) + 1e-7)``; ``log_max`` is the chunk's max log1p(z)."""
    exponent = torch.log1p(z.clamp(min=0)) / (log_max + 1e-7) * DEPTH_WEIGHT_SCALE
    return 1.0 / (torch.exp(exponent.clamp(max=MAX_EXPONENT)) + 1e-7)


def splat(
    u: Tensor,  # [P] target x
    v: Tensor,  # [P] target y
    weight: Tensor,  # [P] mask / soft z-buffer weight
    values: Tensor,  # [P, C]
    height: int,
    width: int,
) -> tuple[Tensor, Tensor]:  # sums [H, W, C] of w * value, weights [H, W]
    """Bilinear splatting of weighted values onto an ``height x width`` grid (official corner rules)."""
    ou = (u + 1).clamp(0, width + 1)
    ov = (v + 1).clamp(0, height + 1)
    # floor / ceil of the *unclamped* offset position, then clamped, as the official code does
    fu = torch.floor(u + 1).clamp(0, width + 1)
    fv = torch.floor(v + 1).clamp(0, height + 1)
    cu = torch.ceil(u + 1).clamp(0, width + 1)
    cv = torch.ceil(v + 1).clamp(0, height + 1)
    wx_f, wx_c = 1 - (ou - fu), 1 - (cu - ou)
    wy_f, wy_c = 1 - (ov - fv), 1 - (cv - ov)
    stride = width + 2
    fu_i, fv_i, cu_i, cv_i = fu.long(), fv.long(), cu.long(), cv.long()
    index = torch.cat([fv_i * stride + fu_i, cv_i * stride + fu_i, fv_i * stride + cu_i, cv_i * stride + cu_i])
    corner = torch.cat([wy_f * wx_f, wy_c * wx_f, wy_f * wx_c, wy_c * wx_c]) * weight.repeat(4)  # [4P]
    packed = torch.cat([values, torch.ones_like(values[:, :1])], dim=1)  # [P, C + 1]
    contrib = packed.repeat(4, 1) * corner[:, None]
    grid = torch.zeros((height + 2) * stride, packed.shape[1], dtype=values.dtype, device=values.device)
    grid.index_add_(0, index, contrib)
    grid = grid.view(height + 2, stride, -1)[1:-1, 1:-1]
    return grid[..., :-1], grid[..., -1]


def visible_points(u: Tensor, v: Tensor, weight: Tensor, height: int, width: int) -> Tensor:  # [P] bool
    """Points that can reach a kept pixel: positive weight and -1 < u < W, -1 < v < H (else only the border)."""
    return (weight > 0) & (u > -1) & (u < width) & (v > -1) & (v < height)


def forward_warp(
    points: Tensor,  # [P, 3] world points of one buffer
    values: Tensor,  # [P, C] colours in [-1, 1]
    mask: Tensor,  # [P] float 0/1 source reliability
    w2c: Tensor,  # [4, 4] target camera
    K: Tensor,  # [3, 3]
    height: int,
    width: int,
    log_max: Tensor | None = None,  # max log1p(z) of the official warp chunk; this warp's own when None
) -> tuple[Tensor, Tensor, Tensor]:  # image [H, W, C] (-1 in holes, clamped), mask [H, W] bool, depth [H, W]
    """Warp one buffer into one target camera; also returns the splatted z-depth (0 in holes)."""
    return splat_projected(*project(points, w2c, K), values, mask, height, width, log_max)


def splat_projected(
    u: Tensor,  # [P]
    v: Tensor,  # [P]
    z: Tensor,  # [P] target-camera z
    values: Tensor,  # [P, C]
    mask: Tensor,  # [P]
    height: int,
    width: int,
    log_max: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`forward_warp` after the projection (so a caller can share one projection)."""
    if log_max is None:
        log_max = torch.log1p(z.clamp(min=0)).max()
    weight = mask * (z > 0) * soft_zbuffer_weights(z, log_max)
    keep = visible_points(u, v, weight, height, width)
    packed = torch.cat([values[keep], z[keep, None]], dim=1)
    sums, weights = splat(u[keep], v[keep], weight[keep], packed, height, width)
    weights = torch.nan_to_num(weights, nan=1000.0)
    hit = weights > 0
    safe = torch.where(hit, weights, torch.ones_like(weights))[..., None]
    image = torch.where(hit[..., None], sums[..., :-1] / safe, torch.full_like(sums[..., :-1], -1.0)).clamp(-1, 1)
    depth = torch.where(hit, sums[..., -1] / safe[..., 0], torch.zeros_like(weights))
    return image, hit, depth
