"""Small deterministic scenes for the viewer tests."""

from __future__ import annotations

import pytest
import torch

from lyra.scene import Gaussians, GaussianSequence
from viewer.state import AppState


def random_gaussians(n: int, seed: int = 0, sh_degree: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    g = Gaussians.from_rgb(
        torch.rand(n, 3, generator=gen) * 2 - 1,  # inside [-1, 1]^3
        torch.randn(n, 4, generator=gen),
        torch.rand(n, 3, generator=gen) * 0.05 + 0.005,
        torch.rand(n, generator=gen),
        torch.rand(n, 3, generator=gen),
        sh_degree=sh_degree,
    )
    if sh_degree:
        g.sh[:, 1:] = torch.randn(n, g.sh.shape[1] - 1, 3, generator=gen) * 0.2
    return g


@pytest.fixture
def make_gaussians():
    """``make_gaussians(n, seed=0, sh_degree=0)``: splats with centres in [-1, 1]^3."""
    return random_gaussians


@pytest.fixture
def static_state() -> AppState:
    state = AppState()
    state.add_scene(random_gaussians(400), "static")
    return state


@pytest.fixture
def sequence_state() -> AppState:
    state = AppState()
    state.add_scene(GaussianSequence([random_gaussians(300 + 10 * i, seed=i) for i in range(4)], fps=8), "clip")
    return state


@pytest.fixture
def app(server, tmp_path):
    """A ViewerApp on a real local viser server (no browser), exports under ``tmp_path / "out"``."""
    from viewer.app import ViewerApp

    app = ViewerApp(server, output_dir=tmp_path / "out", max_upload_mb=1)
    yield app
    app.stop()
    server.gui.reset()
    server.scene.reset()
