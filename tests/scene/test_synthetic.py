import torch

from lyra.scene.synthetic import random_gaussians


def test_random_gaussians_are_valid_and_have_the_requested_degree():
    g = random_gaussians(500, seed=3, sh_degree=2)
    g.validate()
    assert len(g) == 500 and g.sh_degree == 2


def test_random_gaussians_are_deterministic_per_seed():
    a, b, c = random_gaussians(100, seed=1), random_gaussians(100, seed=1), random_gaussians(100, seed=2)
    assert a.equal(b)
    assert not a.equal(c)


def test_random_gaussians_scale_with_spread_and_centre():
    g = random_gaussians(20_000, seed=0, center=(5.0, 0.0, 0.0), spread=2.0, max_scale=0.05)
    assert torch.allclose(g.means.mean(0), torch.tensor([5.0, 0.0, 0.0]), atol=0.1)
    assert abs(float(g.means.std(0).mean()) - 2.0) < 0.05
    assert float(g.scales.max()) <= 0.05 * 2.0 and float(g.scales.min()) >= 1e-3 * 2.0
