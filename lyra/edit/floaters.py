"""Floater detection by statistical outlier removal on splat centres.

For each centre we take the mean distance to its ``k`` nearest neighbours
(itself excluded). A splat is a floater when that distance exceeds
``mean + std_ratio * std`` of the distances over all splats: isolated
specks far from any surface have a much larger neighbour distance than
splats on a surface. This is the classic SOR filter of point-cloud tools.

Neighbours come from :class:`scipy.spatial.cKDTree` (a well-kept library made
for the job) with ``workers=-1`` (all cores): about a second to build and a
few seconds to query at one million splats on two cores, so the viewer runs
it as a background job rather than on every click.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from lyra.errors import EditError


def mean_neighbor_distance(means: Tensor, k: int = 16) -> Tensor:  # means [N, 3] -> [N] float
    """Mean distance from each centre to its ``k`` nearest other centres (``k`` capped at N-1)."""
    if means.ndim != 2 or means.shape[1] != 3:
        raise EditError(f"means must have shape (N, 3), got {tuple(means.shape)}")
    if k < 1:
        raise EditError(f"k must be at least 1, got {k}")
    n = len(means)
    if n < 2:
        return torch.zeros(n, dtype=means.dtype, device=means.device)
    points = means.detach().cpu().numpy().astype(np.float64, copy=False)
    if not np.isfinite(points).all():
        raise EditError("means contain NaN/Inf; drop invalid splats first (Gaussians.drop_invalid)")
    k = min(k, n - 1)
    tree = cKDTree(points)
    distances, _ = tree.query(points, k=k + 1, workers=-1)  # [N, k+1], column 0 is the point itself
    mean_distance = distances[:, 1:].mean(axis=1)
    return torch.from_numpy(mean_distance).to(dtype=means.dtype, device=means.device)


def floater_mask(means: Tensor, k: int = 16, std_ratio: float = 2.0) -> Tensor:  # means [N, 3] -> [N] bool
    """``True`` for splats whose mean ``k``-neighbour distance exceeds ``mean + std_ratio * std``.

    Lower ``std_ratio`` removes more. Fewer than ``k + 2`` splats: nothing is flagged
    (the statistics would be meaningless).
    """
    if len(means) < k + 2:
        if means.ndim != 2 or means.shape[1] != 3:
            raise EditError(f"means must have shape (N, 3), got {tuple(means.shape)}")
        return torch.zeros(len(means), dtype=torch.bool, device=means.device)
    distance = mean_neighbor_distance(means, k).double()
    threshold = distance.mean() + float(std_ratio) * distance.std()
    return distance > threshold
