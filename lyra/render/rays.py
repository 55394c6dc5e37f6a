"""Per-pixel camera rays and Plucker embeddings (OpenCV convention).

Cameras are OpenCV camera-to-world ``c2w [..., 4, 4]`` (x right, y down,
z forward) with pinhole intrinsics ``[..., 4] = (fx, fy, cx, cy)`` in pixels.
Pixel ``(i, j)`` (column, row) has its centre at ``(i + 0.5, j + 0.5)``.
This is the one implementation of rays in the project: the renderer, the
decoder's inputs and the viewer's picking all use it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pixel_rays(
    c2w: Tensor,  # [..., 4, 4] OpenCV camera-to-world
    intrinsics: Tensor,  # [..., 4] (fx, fy, cx, cy) in pixels
    width: int,
    height: int,
) -> tuple[Tensor, Tensor]:
    """Ray origins and unit directions in world space, each ``[..., H, W, 3]``."""
    dtype, device = c2w.dtype, c2w.device
    u = torch.arange(width, dtype=dtype, device=device) + 0.5  # [W]
    v = torch.arange(height, dtype=dtype, device=device) + 0.5  # [H]
    fx, fy, cx, cy = (intrinsics[..., i, None, None] for i in range(4))  # [..., 1, 1]
    x = (u - cx) / fx  # [..., 1, W]
    y = (v[:, None] - cy) / fy  # [..., H, 1]
    x, y = torch.broadcast_tensors(x, y)
    dirs_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # [..., H, W, 3]
    dirs_cam = dirs_cam / dirs_cam.norm(dim=-1, keepdim=True)
    rot = c2w[..., None, None, :3, :3]  # [..., 1, 1, 3, 3]
    dirs = (rot @ dirs_cam.unsqueeze(-1)).squeeze(-1)
    origins = c2w[..., None, None, :3, 3].expand_as(dirs)
    return origins, dirs


def plucker_embedding(origins: Tensor, dirs: Tensor) -> Tensor:
    """Plucker coordinates ``[o x d, d]``: ``[..., 3]`` each -> ``[..., 6]``."""
    return torch.cat([torch.linalg.cross(origins, dirs, dim=-1), dirs], dim=-1)


def scale_intrinsics(intrinsics: Tensor, factor_x: float, factor_y: float | None = None) -> Tensor:
    """Intrinsics ``[..., 4]`` for an image resized by ``factor`` (e.g. 1/8 for the latent grid).

    With pixel centres at +0.5, resizing an image by f maps pixel-edge coordinates
    linearly, so fx, fy, cx, cy all scale by f.
    """
    factor_y = factor_x if factor_y is None else factor_y
    scale = intrinsics.new_tensor([factor_x, factor_y, factor_x, factor_y])
    return intrinsics * scale
