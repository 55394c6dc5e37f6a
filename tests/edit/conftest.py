"""Tiny hand-made Gaussians for the edit tests."""

from __future__ import annotations

import pytest
import torch

from lyra.scene import Gaussians


def _make_gaussians(means, rgb=None, opacities=None, scales=None, sh_degree=0) -> Gaussians:
    """Gaussians at ``means`` with identity orientation; defaults: grey, opacity 1, scale 0.01."""
    means = torch.as_tensor(means, dtype=torch.float32).reshape(-1, 3)
    n = len(means)
    rgb = torch.full((n, 3), 0.5) if rgb is None else torch.as_tensor(rgb, dtype=torch.float32).reshape(n, 3)
    opacities = torch.ones(n) if opacities is None else torch.as_tensor(opacities, dtype=torch.float32)
    scales = torch.full((n, 3), 0.01) if scales is None else torch.as_tensor(scales, dtype=torch.float32).reshape(n, 3)
    quats = torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(n, 4).clone()
    return Gaussians.from_rgb(means, quats, scales, opacities, rgb, sh_degree=sh_degree)


@pytest.fixture
def make_gaussians():
    """Factory: ``make_gaussians(means, rgb=None, opacities=None, scales=None, sh_degree=0)``."""
    return _make_gaussians


@pytest.fixture
def random_gaussians() -> Gaussians:
    """50 random splats with degree-3 SH and random orientations."""
    gen = torch.Generator().manual_seed(0)
    n = 50
    return Gaussians(
        means=torch.randn(n, 3, generator=gen),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1),
        scales=torch.rand(n, 3, generator=gen) * 0.1,
        opacities=torch.rand(n, generator=gen),
        sh=torch.randn(n, 16, 3, generator=gen) * 0.3,
    )
