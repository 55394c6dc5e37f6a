"""The Gaussians' opacity field sampled on a voxel grid (the input of mesh extraction).

``field(x) = sum_i o_i exp(-0.5 (x - mu_i)^T Sigma_i'^-1 (x - mu_i))`` at each voxel centre, where
``Sigma_i' = Sigma_i + (voxel / 2)^2 I``: a splat thinner than a voxel (a surfel on a surface) is widened
to half a voxel, with its peak opacity kept, so that it cannot fall between voxel centres and leave a
hole. Each splat is evaluated only in its 3-sigma box (its largest widened standard deviation, capped at
:data:`MAX_RADIUS_VOXELS`: a huge background splat is truncated there), in chunks sized so that a chunk's
``splats x box cells`` stays under ``cells_per_chunk``: memory is the grid plus one chunk, whatever the
splat count (2M splats on a 256^3 grid: 64 MB of grid, a few hundred MB of chunk).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.progress import Progress, report
from lyra.scene.gaussians import Gaussians

MAX_RADIUS_VOXELS = 16
DEFAULT_RESOLUTION = 256  # voxels along the longest side when no voxel size is given
MAX_CELLS = 512**3  # 512 MB of float32 grid
MIN_OPACITY = 1.0 / 255.0  # splats below this are invisible in every viewer: skipped


@dataclasses.dataclass
class VoxelGrid:
    """Samples of a scalar field at voxel centres ``origin + voxel * (i, j, k)``; ``values [X, Y, Z]``."""

    values: Tensor  # [X, Y, Z] float32
    origin: Tensor  # [3] world position of voxel (0, 0, 0)'s centre
    voxel: float  # edge length, world units

    def world_points(self, indices: Tensor) -> Tensor:  # [M, 3] (fractional) voxel indices -> [M, 3] world
        return self.origin + indices * self.voxel


def scene_box(g: Gaussians, quantile: float = 0.002) -> tuple[Tensor, Tensor]:
    """``(low [3], high [3])``: the box holding all but ``quantile`` of the centres on each side per axis
    (far floaters do not stretch the grid), padded by 5% and by 3 sigma of the median splat."""
    means = g.means.detach().float()
    if len(means) > 2_000_000:  # torch.quantile's input limit is 16M; a subsample is plenty for a box
        means = means[torch.randperm(len(means), generator=torch.Generator().manual_seed(0))[:2_000_000]]
    low = torch.quantile(means, quantile, dim=0)
    high = torch.quantile(means, 1.0 - quantile, dim=0)
    pad = 0.05 * (high - low).max() + 3.0 * g.scales.detach().float().max(dim=1).values.median()
    return low - pad, high + pad


def grid_for(g: Gaussians, voxel: float | None = None, resolution: int = DEFAULT_RESOLUTION) -> tuple[Tensor, float, tuple]:
    """``(origin [3], voxel, shape)`` of a grid over :func:`scene_box`; ``voxel`` None -> ``resolution`` cells
    along the longest side. InputDataError for a non-positive voxel or a grid over :data:`MAX_CELLS`."""
    g, _ = g.drop_invalid()
    if len(g) == 0:
        raise InputDataError("meshing needs at least one valid splat; the scene is empty (or all NaN/Inf)")
    low, high = scene_box(g)
    extent = (high - low).clamp(min=1e-6)
    if voxel is None:
        voxel = float(extent.max()) / resolution
    if not (math.isfinite(voxel) and voxel > 0.0):
        raise InputDataError(f"voxel size must be a positive number, found {voxel}")
    shape = tuple(int(math.ceil(float(e) / voxel)) + 1 for e in extent)
    cells = math.prod(shape)
    if cells > MAX_CELLS:
        raise InputDataError(f"a voxel size of {voxel:g} makes a {shape[0]}x{shape[1]}x{shape[2]} grid "
                             f"({cells / 1e6:.0f}M cells, at most {MAX_CELLS / 1e6:.0f}M); choose a larger voxel")
    return low, voxel, shape


def opacity_field(
    g: Gaussians,
    voxel: float | None = None,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    cells_per_chunk: int = 4_000_000,
    progress: Progress | None = None,
) -> VoxelGrid:
    """The opacity field of ``g`` on a grid over its box (see the module docstring).

    ``voxel``: edge length in world units (default: the box's longest side / ``resolution``).
    Splats with NaN/Inf values are ignored. Raises InputDataError for an empty scene or a grid too fine
    to hold in memory.
    """
    origin, voxel, shape = grid_for(g, voxel, resolution)
    g, _ = g.drop_invalid()  # NaN/Inf splats (which a loader may keep) have no place on a grid
    keep = g.opacities.detach() >= MIN_OPACITY
    means = g.means.detach().float()[keep]
    opacities = g.opacities.detach().float()[keep]
    widened = g.covariances().detach().float()[keep] + (0.5 * voxel) ** 2 * torch.eye(3)
    precision = torch.linalg.inv(widened)  # [N, 3, 3]
    sigma_max = torch.linalg.eigvalsh(widened)[:, -1].clamp(min=0).sqrt()
    radius = (3.0 * sigma_max / voxel).ceil().clamp(1, MAX_RADIUS_VOXELS).long()  # [N] voxels
    centre_index = ((means - origin) / voxel).round().long()  # [N, 3]
    # d = base + voxel * offset with base = the centre voxel's position - mean, so
    # d^T P d = base^T P base + 2 voxel (P base) . offset + voxel^2 offset^T P offset: two small matrix
    # products per chunk ([C, 3] @ [3, B] and [C, 6] @ [6, B]) instead of [C, B, 3] temporaries.
    base = origin + centre_index.float() * voxel - means  # [N, 3]
    p_base = (precision @ base.unsqueeze(-1)).squeeze(-1)  # [N, 3]
    base_term = (p_base * base).sum(-1)  # [N]
    upper = precision[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]] * torch.tensor([1.0, 1, 1, 2, 2, 2])  # [N, 6]
    grid = torch.zeros(math.prod(shape), dtype=torch.float32)
    dims = torch.tensor(shape)
    strides = torch.tensor([shape[1] * shape[2], shape[2], 1])
    flat_centre = (centre_index * strides).sum(-1)  # [N]
    done, total = 0, max(len(means), 1)
    for r in radius.unique().tolist():
        members = (radius == r).nonzero().squeeze(1)
        span = torch.arange(-r, r + 1)
        offsets = torch.stack(torch.meshgrid(span, span, span, indexing="ij"), -1).reshape(-1, 3)  # [B, 3]
        offsets = offsets[(offsets.float().norm(dim=1) <= r + 0.87)]  # the ball, not the box corners
        off = offsets.float() * voxel
        off_products = torch.stack([off[:, 0] ** 2, off[:, 1] ** 2, off[:, 2] ** 2, off[:, 0] * off[:, 1],
                                    off[:, 0] * off[:, 2], off[:, 1] * off[:, 2]])  # [6, B]
        flat_offsets = (offsets * strides).sum(-1)  # [B]
        # Splats whose ball lies inside the grid need no per-cell bounds test.
        whole = ((centre_index[members] - r) >= 0).all(-1) & ((centre_index[members] + r) < dims).all(-1)
        chunk = max(1, cells_per_chunk // len(offsets))
        for group, checked in ((members[whole], False), (members[~whole], True)):
            for start in range(0, len(group), chunk):
                idx = group[start:start + chunk]
                mahalanobis = base_term[idx, None] + 2.0 * (p_base[idx] @ off.T) + upper[idx] @ off_products
                values = opacities[idx, None] * torch.exp(-0.5 * mahalanobis.clamp(min=0))  # [C, B]
                flat = flat_centre[idx, None] + flat_offsets[None]  # [C, B]
                if not checked:
                    grid.index_add_(0, flat.reshape(-1), values.reshape(-1))
                else:
                    cells = centre_index[idx, None, :] + offsets[None]  # [C, B, 3]
                    inside = ((cells >= 0) & (cells < dims)).all(-1)
                    grid.index_add_(0, flat[inside], values[inside])
                done += len(idx)
                report(progress, done / total, f"opacity field: {done}/{len(means)} splats")
    return VoxelGrid(grid.reshape(shape), origin, voxel)
