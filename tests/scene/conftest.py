"""Shared fixtures for scene tests: tiny random Gaussian sets."""

from __future__ import annotations

import pytest
import torch

from lyra.scene import Gaussians
from lyra.scene.sh import num_sh_coeffs


def make_gaussians(n: int = 64, sh_degree: int = 3, seed: int = 0, grid: bool = False) -> Gaussians:
    """Random valid Gaussians; ``grid=True`` puts centres on a jittered 0.5-spaced grid (unique nearest neighbours)."""
    gen = torch.Generator().manual_seed(seed)
    if grid:
        side = round(n ** (1 / 3)) + 1
        cells = torch.stack(torch.meshgrid(*[torch.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
        means = cells.float() * 0.5 + (torch.rand(n, 3, generator=gen) - 0.5) * 0.05
    else:
        means = torch.randn(n, 3, generator=gen)
    return Gaussians(
        means=means,
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1),
        scales=torch.rand(n, 3, generator=gen) * 0.1 + 0.005,
        opacities=torch.rand(n, generator=gen) * 0.9 + 0.05,
        sh=(torch.rand(n, num_sh_coeffs(sh_degree), 3, generator=gen) - 0.5) * 2.0,
    )


@pytest.fixture
def gaussians_factory():
    return make_gaussians
