"""Decimation by moment matching: mass and box kept, renders beat dropping the least opaque splats."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.edit.simplify import drop_lowest_opacity, parse_target, simplify, splat_mass
from lyra.errors import EditError
from lyra.render import Camera, render
from lyra.scene import Gaussians


def surface_scene(n: int = 4000, seed: int = 0) -> Gaussians:
    """Small splats on a textured, wavy sheet (like a generated scene's surfaces), moderate opacities."""
    gen = torch.Generator().manual_seed(seed)
    uv = torch.rand(n, 2, generator=gen) * 2 - 1
    z = 0.1 * torch.sin(3 * uv[:, 0]) * torch.cos(2 * uv[:, 1])
    means = torch.cat([uv, z[:, None]], 1)
    rgb = torch.stack([0.5 + 0.4 * torch.sin(4 * uv[:, 0]), 0.5 + 0.4 * torch.cos(3 * uv[:, 1]),
                       0.5 + 0.3 * torch.sin(2 * (uv[:, 0] + uv[:, 1]))], 1)
    scales = torch.rand(n, 3, generator=gen) * 0.02 + 0.015
    scales[:, 2] *= 0.2
    return Gaussians.from_rgb(means, torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1) * 0 +
                              torch.tensor([1.0, 0, 0, 0]), scales, torch.rand(n, generator=gen) * 0.25 + 0.05, rgb)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).pow(2).mean()))


def test_parse_target():
    assert parse_target("25%", 1000) == 250 and parse_target("300", 1000) == 300 and parse_target(5000, 1000) == 1000
    for bad in ["0", "-3", "abc", "0%"]:
        with pytest.raises(EditError):
            parse_target(bad, 1000)


def test_simplify_reaches_target_keeps_mass_and_box():
    g = surface_scene()
    half = simplify(g, 2000)
    assert len(half) == 2000 and half.opacities.max() < 1
    # no merge clamped its opacity at 1, so the mass is kept to rounding
    assert torch.isclose(splat_mass(half).sum(), splat_mass(g).sum(), rtol=1e-4)
    out = simplify(g, 1000)
    assert len(out) == 1000
    out.validate()
    # at 4x, merges of overlapping splats clamp at opacity 1: mass can only be lost there, and little
    assert 0.97 * splat_mass(g).sum() <= splat_mass(out).sum() <= splat_mass(g).sum() * (1 + 1e-5)
    lo, hi = g.bounds()
    out_lo, out_hi = out.bounds()
    assert torch.all(out_lo >= lo - 1e-6) and torch.all(out_hi <= hi + 1e-6)  # merged centres are convex combinations
    assert torch.all((out_hi - out_lo) >= 0.9 * (hi - lo))
    colour = (g.rgb() * splat_mass(g)[:, None]).sum(0) / splat_mass(g).sum()
    out_colour = (half.rgb() * splat_mass(half)[:, None]).sum(0) / splat_mass(half).sum()
    assert torch.allclose(colour, out_colour, atol=1e-4)  # mass-weighted colour is a conserved moment too


def test_merging_two_splats_matches_the_mixture_moments():
    g = Gaussians.from_rgb(torch.tensor([[0.0, 0, 0], [0.3, 0, 0]]), torch.tensor([[1.0, 0, 0, 0]] * 2),
                           torch.full((2, 3), 0.1), torch.tensor([0.2, 0.2]), torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]))
    out = simplify(g, 1)
    assert torch.allclose(out.means, torch.tensor([[0.15, 0, 0]]), atol=1e-6)
    expected = torch.diag(torch.tensor([0.01 + 0.15**2, 0.01, 0.01]))
    assert torch.allclose(out.covariances()[0], expected, atol=1e-6)
    assert torch.allclose(out.rgb(), torch.tensor([[0.5, 0, 0.5]]), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_simplified_renders_beat_dropping_lowest_opacity(fraction):
    g = surface_scene(6000)
    cams = [Camera.look_at([0.3 * math.sin(a), -0.4, 2.2], [0, 0, 0], width=96, height=96) for a in (-0.6, 0.0, 0.6)]
    target = int(len(g) * fraction)
    ours, baseline = simplify(g, target), drop_lowest_opacity(g, target)
    scores = []
    for cam in cams:
        full = render(g, cam, backend="torch").rgb
        scores.append((psnr(render(ours, cam, backend="torch").rgb, full),
                       psnr(render(baseline, cam, backend="torch").rgb, full)))
    mean_ours = sum(s[0] for s in scores) / len(scores)
    mean_base = sum(s[1] for s in scores) / len(scores)
    assert mean_ours > mean_base + 1.0, scores


def test_cli_convert_decimate(tmp_path, capsys):
    from lyra.cli import main
    from lyra.scene import load, save

    save(surface_scene(800), tmp_path / "a.ply")
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "b.spz"), "--decimate", "25%"]) == 0
    assert len(load(tmp_path / "b.spz")) == 200
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "c.ply"), "--decimate", "300"]) == 0
    assert len(load(tmp_path / "c.ply")) == 300
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "d.ply"), "--decimate", "lots"]) == 1
    assert "decimation target" in capsys.readouterr().err
