"""The foreground-masking occlusion test of the 3D cache, as a mesh ray cast written in torch.

The official cache (GEN3C_SPEC.md section 7) builds, per target camera, a
triangle mesh from the target-camera points of the *boundary* pixels (where the
depth is unreliable, i.e. at depth discontinuities) at 1/4 resolution: two
triangles per 2x2 patch with any boundary vertex. It casts one ray per pixel
from the camera through ``K^-1 [x, y, 1]`` (integer pixel coordinates), and
marks a pixel occluded where the nearest hit's z-depth + 0.02 is smaller than
the splatted depth. Those stretched triangles are the "walls" that stop the
background from showing through the gaps a foreground object leaves when the
camera moves.

Choice: the ray cast is done as a screen-space rasterisation. All rays start
at the camera centre, so the nearest hit along pixel ``(x, y)``'s ray is the
nearest triangle covering ``(x, y)`` on the image plane, and its z-depth is the
perspective-correct interpolation ``1/z = sum_i b_i / z_i`` of the vertex depths
with screen-space barycentrics ``b_i``; this is exactly the ray-plane hit of a
flat triangle, without a BVH (NVIDIA Warp's) and vectorised over triangle-pixel
pairs. Triangles with a vertex at z <= 1e-6 (behind the camera) are skipped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MESH_DOWNSAMPLE = 4
OCCLUSION_MARGIN = 0.02
_MAX_PAIRS = 4_000_000  # triangle-pixel pairs per rasterisation batch (memory bound)


def boundary_mesh(cam_points: Tensor, boundary: Tensor, factor: int = MESH_DOWNSAMPLE) -> tuple[Tensor, Tensor]:
    """Vertices ``[V, 3]`` and faces ``[M, 3]`` of the boundary mesh at ``1/factor`` resolution.

    ``cam_points [H, W, 3]`` (target camera frame, resized bilinearly), ``boundary [H, W]`` (resized nearest).
    """
    height, width = cam_points.shape[:2]
    h, w = height // factor, width // factor
    pts = F.interpolate(cam_points.permute(2, 0, 1)[None], size=(h, w), mode="bilinear", align_corners=False)
    pts = pts[0].permute(1, 2, 0).reshape(-1, 3)
    mask = F.interpolate(boundary[None, None].float(), size=(h, w), mode="nearest")[0, 0] > 0
    patches = mask[:-1, :-1] | mask[:-1, 1:] | mask[1:, :-1] | mask[1:, 1:]
    py, px = torch.nonzero(patches, as_tuple=True)
    tl = py * w + px
    tr, bl, br = tl + 1, tl + w, tl + w + 1
    faces = torch.cat([torch.stack([tl, tr, bl], 1), torch.stack([tr, br, bl], 1)])
    return pts, faces


def rasterize_nearest_depth(vertices: Tensor, faces: Tensor, K: Tensor, height: int, width: int) -> Tensor:
    """Nearest hit z-depth ``[H, W]`` of the rays through integer pixels (inf where no triangle is hit)."""
    depth = torch.full((height * width,), float("inf"), dtype=vertices.dtype, device=vertices.device)
    if faces.numel() == 0:
        return depth.view(height, width)
    tri = vertices[faces]  # [M, 3, 3]
    z = tri[..., 2]
    front = (z > 1e-6).all(dim=1)
    tri, z = tri[front], z[front]
    px = K[0, 0] * tri[..., 0] / z + K[0, 2]  # [M, 3]
    py = K[1, 1] * tri[..., 1] / z + K[1, 2]
    x0 = px.min(1).values.ceil().clamp(0, width - 1)
    x1 = px.max(1).values.floor().clamp(-1, width - 1)
    y0 = py.min(1).values.ceil().clamp(0, height - 1)
    y1 = py.max(1).values.floor().clamp(-1, height - 1)
    nx = (x1 - x0 + 1).clamp(min=0).long()
    ny = (y1 - y0 + 1).clamp(min=0).long()
    keep = (nx > 0) & (ny > 0) & (px.max(1).values >= 0) & (py.max(1).values >= 0)
    keep &= (px.min(1).values <= width - 1) & (py.min(1).values <= height - 1)
    index = torch.nonzero(keep, as_tuple=True)[0]
    counts = nx[index] * ny[index]
    start = 0
    while start < len(index):
        # batches of triangles whose bounding boxes together hold at most _MAX_PAIRS pixels
        csum = torch.cumsum(counts[start:], 0)
        stop = start + max(1, int(torch.searchsorted(csum, torch.tensor(_MAX_PAIRS, device=csum.device)).item()))
        ids = index[start:stop]
        _raster_batch(depth, px[ids], py[ids], 1.0 / z[ids], x0[ids], y0[ids], nx[ids], ny[ids], width)
        start = stop
    return depth.view(height, width)


def _raster_batch(depth, px, py, inv_z, x0, y0, nx, ny, width) -> None:
    """Min-reduce the interpolated z of every covered pixel of these triangles into ``depth [H*W]``."""
    counts = nx * ny
    owner = torch.repeat_interleave(torch.arange(len(counts), device=px.device), counts)
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(int(counts.sum()), device=px.device) - first[owner]
    x = x0[owner] + (local % nx[owner])
    y = y0[owner] + torch.div(local, nx[owner], rounding_mode="floor")
    ax, ay = px[owner, 0], py[owner, 0]
    bx, by = px[owner, 1], py[owner, 1]
    cx, cy = px[owner, 2], py[owner, 2]
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    w0 = ((bx - x) * (cy - y) - (by - y) * (cx - x)) / area
    w1 = ((cx - x) * (ay - y) - (cy - y) * (ax - x)) / area
    w2 = 1.0 - w0 - w1
    eps = 1e-6
    inside = (w0 >= -eps) & (w1 >= -eps) & (w2 >= -eps) & (area.abs() > 1e-12)
    iz = w0 * inv_z[owner, 0] + w1 * inv_z[owner, 1] + w2 * inv_z[owner, 2]
    inside &= iz > 0
    flat = (y * width + x).long()[inside]
    depth.scatter_reduce_(0, flat, 1.0 / iz[inside], reduce="amin")


def occluded_pixels(
    cam_points: Tensor,  # [H, W, 3] the buffer's points in the target camera frame
    boundary: Tensor,  # [H, W] bool, unreliable-depth pixels of the initial frame
    K: Tensor,  # [3, 3] target intrinsics
    warped_depth: Tensor,  # [H, W] splatted z-depth, 0 in holes
) -> Tensor:  # [H, W] bool
    """Pixels where the boundary mesh lies more than 0.02 in front of the splatted surface."""
    height, width = warped_depth.shape
    vertices, faces = boundary_mesh(cam_points, boundary)
    mesh_z = rasterize_nearest_depth(vertices, faces, K, height, width)
    return torch.isfinite(mesh_z) & (mesh_z > 0) & (mesh_z + OCCLUSION_MARGIN < warped_depth)
