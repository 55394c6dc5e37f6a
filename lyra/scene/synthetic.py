"""Seeded random Gaussian scenes for benchmarks and examples.

One generator instead of one per script: valid splats (unit quaternions,
positive scales, opacities inside (0, 1)) whose sizes are set relative to the
spread of the centres, so scenes of any size render and edit like real ones.
"""

from __future__ import annotations

import torch

from lyra.scene.gaussians import Gaussians
from lyra.scene.sh import num_sh_coeffs


def random_gaussians(
    n: int,
    *,
    seed: int = 0,
    sh_degree: int = 3,
    center: tuple[float, float, float] = (0.0, 0.0, 0.0),
    spread: float = 1.0,
    max_scale: float = 0.05,
    sh_std: float = 0.3,
) -> Gaussians:
    """``n`` splats with centres ~ N(center, spread^2), scales in
    [1e-3, max_scale] * spread, opacities in [0.01, 0.99] and SH coefficients
    ~ N(0, sh_std^2) (DC included, so colours vary around grey)."""
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=torch.randn(n, 3, generator=gen) * spread + torch.tensor(center),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1),
        scales=(torch.rand(n, 3, generator=gen) * (max_scale - 1e-3) + 1e-3) * spread,
        opacities=torch.rand(n, generator=gen) * 0.98 + 0.01,
        sh=torch.randn(n, num_sh_coeffs(sh_degree), 3, generator=gen) * sh_std,
    )
