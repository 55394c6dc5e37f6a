"""Decimation: merge neighbouring splats by moment matching until a target count is reached.

Each round pairs splats that are each other's nearest neighbour (centre
distance, a KD-tree), ranks the pairs by Ward's cost (the spread a merge
adds, ``m_i m_j / (m_i + m_j) |mu_i - mu_j|^2``) and merges the cheapest ones,
never more than are needed to reach the target. Merging two splats keeps
their first and second moments:

* mass ``m = opacity * area`` with ``area = det(Sigma)^(1/3)`` (the squared
  geometric-mean radius: a splat's footprint on screen grows with its area,
  so this is the "paint" it puts down);
* mean: mass-weighted mean of the centres;
* covariance: mass-weighted mean of ``Sigma_k + (mu_k - mu)(mu_k - mu)^T``
  (the spread of the centres is part of the merged shape);
* SH (colour): mass-weighted mean;
* opacity: ``(m_i + m_j) / area(Sigma)``, so total mass is kept exactly
  unless that exceeds 1 (two opaque splats on top of each other), where it is
  clamped to 1.

Rounds repeat until the target is met (each removes up to ~a third of the
splats). Extras are dropped (they have no merge rule).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from lyra.errors import EditError
from lyra.progress import Progress, report
from lyra.scene.gaussians import Gaussians, normalize_quats, rotmats_to_quats

_MIN_AREA = 1e-30


def splat_mass(g: Gaussians) -> Tensor:  # [N]
    """Opacity times footprint area ``(s_x s_y s_z)^(2/3)`` (what :func:`simplify` keeps)."""
    return g.opacities * g.scales.prod(1).clamp(min=_MIN_AREA).pow(2.0 / 3.0)


def parse_target(text: str | int, count: int) -> int:
    """``"500000"`` or ``"25%"`` (of ``count``) -> a splat count in ``1..count``; raises EditError."""
    raw = str(text).strip()
    try:
        target = round(count * float(raw[:-1]) / 100) if raw.endswith("%") else int(raw)
    except ValueError:
        raise EditError(f"decimation target must be a count (500000) or a percentage (25%), got {text!r}") from None
    if target < 1:
        raise EditError(f"decimation target must keep at least one splat, got {text!r}")
    return min(target, count)


def _mutual_pairs(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) that are each other's nearest neighbour."""
    _, nn = cKDTree(means).query(means, k=2)
    nearest = nn[:, 1]
    i = np.arange(len(means))
    mutual = (nearest[nearest] == i) & (i < nearest)
    return i[mutual], nearest[mutual]


def _merge(g: Gaussians, a: Tensor, b: Tensor) -> Gaussians:
    """Moment-matched merges of splats ``a[k]`` and ``b[k]`` (module docstring)."""
    ga, gb = g[a], g[b]  # only the splats being merged
    cov_a, cov_b = ga.covariances().double(), gb.covariances().double()
    ma, mb = splat_mass(ga).double(), splat_mass(gb).double()
    total = (ma + mb).clamp(min=1e-300)
    wa, wb = (ma / total)[:, None], (mb / total)[:, None]
    mean = wa * ga.means.double() + wb * gb.means.double()  # [M, 3]
    da, db = ga.means.double() - mean, gb.means.double() - mean
    merged_cov = (wa[..., None] * (cov_a + da[:, :, None] * da[:, None, :])
                  + wb[..., None] * (cov_b + db[:, :, None] * db[:, None, :]))  # [M, 3, 3]
    eigvals, eigvecs = torch.linalg.eigh(merged_cov)
    eigvecs = eigvecs * torch.where(torch.linalg.det(eigvecs) < 0, -1.0, 1.0)[:, None, None]  # proper rotations
    scales = eigvals.clamp(min=1e-20).sqrt()
    area = scales.prod(1).clamp(min=_MIN_AREA).pow(2.0 / 3.0)
    opacity = (total / area).clamp(max=1.0)
    sh = wa[..., None] * ga.sh.double() + wb[..., None] * gb.sh.double()
    dtype = g.dtype
    return Gaussians(mean.to(dtype), normalize_quats(rotmats_to_quats(eigvecs).to(dtype)), scales.to(dtype),
                     opacity.to(dtype), sh.to(dtype))


def simplify(gaussians: Gaussians, target: int, *, progress: Progress | None = None) -> Gaussians:
    """Reduce ``gaussians`` to ``target`` splats by merging neighbours (module docstring).

    Returns the input unchanged (extras dropped) when it already has at most
    ``target`` splats. Deterministic. Raises EditError for ``target < 1``.
    """
    if target < 1:
        raise EditError(f"simplify needs a target of at least 1 splat, got {target}")
    g = Gaussians(gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities, gaussians.sh)
    start = len(g)
    while len(g) > target:
        report(progress, (start - len(g)) / max(1, start - target), f"merging: {len(g)} -> {target} splats")
        a, b = _mutual_pairs(g.means.detach().cpu().double().numpy())
        if len(a) == 0:  # all centres coincide in chains of equal distances: merge along index order instead
            a, b = np.arange(0, len(g) - 1, 2), np.arange(1, len(g), 2)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        mass_a, mass_b = splat_mass(g[ta]).detach().double(), splat_mass(g[tb]).detach().double()
        gap = (g.means[ta] - g.means[tb]).detach().double().pow(2).sum(1)
        cost = mass_a * mass_b / (mass_a + mass_b).clamp(min=1e-300) * gap
        take = torch.argsort(cost, stable=True)[: len(g) - target]
        ta, tb = ta[take], tb[take]
        keep = torch.ones(len(g), dtype=torch.bool)
        keep[ta] = False
        keep[tb] = False
        g = Gaussians.cat([g[keep], _merge(g, ta, tb)])
    report(progress, 1.0, f"{len(g)} splats")
    return g


def drop_lowest_opacity(gaussians: Gaussians, target: int) -> Gaussians:
    """The naive baseline: keep the ``target`` most opaque splats (in their original order)."""
    keep = torch.argsort(gaussians.opacities, descending=True, stable=True)[:target].sort().values
    return gaussians[keep]


__all__ = ["simplify", "splat_mass", "parse_target", "drop_lowest_opacity"]
