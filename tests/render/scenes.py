"""The seeded random scene the renderer tests share."""

from __future__ import annotations

import torch

from lyra.scene import Gaussians


def random_scene(n=120, sh_degree=0, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=gen) * 0.6 + torch.tensor([0.0, 0.0, 3.0])
    g = Gaussians.from_rgb(
        means, torch.randn(n, 4, generator=gen), torch.rand(n, 3, generator=gen) * 0.12 + 0.01,
        torch.rand(n, generator=gen) * 0.9 + 0.05, torch.rand(n, 3, generator=gen), sh_degree=sh_degree,
    )
    if sh_degree:
        g = g.replace(sh=torch.cat([g.sh[:, :1], 0.3 * torch.randn(n, g.sh.shape[1] - 1, 3, generator=gen)], 1))
    return g.to(dtype=dtype)
