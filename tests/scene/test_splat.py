"""antimatter15 .splat: 32-byte rows, largest-first order, 8-bit colour and rotation."""

from __future__ import annotations

import gsplat
import numpy as np
import pytest
import torch

from lyra.errors import SceneFileError
from lyra.scene import load, save
from lyra.scene.formats.splat import ROW


def by_position(g):
    order = np.lexsort(g.means.numpy().T[::-1])
    return g[torch.from_numpy(order)]


def assert_splat_quantization(loaded, g, color_step):
    a, b = by_position(loaded), by_position(g.with_sh_degree(0))
    assert torch.equal(a.means, b.means) and torch.equal(a.scales, b.scales)
    assert (a.rgb() - b.rgb()).abs().max() <= color_step + 1e-6
    assert (a.opacities - b.opacities).abs().max() <= color_step + 1e-6
    assert ((a.quats * b.quats).sum(1).abs().min()) >= 0.999


def test_round_trip_within_8_bit_quantization(tmp_path, gaussians_factory):
    g = gaussians_factory(100)
    save(g, tmp_path / "a.splat")
    back = load(tmp_path / "a.splat")
    assert len(back) == 100 and back.sh_degree == 0
    assert_splat_quantization(back, g, color_step=0.5 / 255)


def test_written_rows_are_sorted_largest_first(tmp_path, gaussians_factory):
    g = gaussians_factory(50)
    save(g, tmp_path / "a.splat")
    rows = np.fromfile(tmp_path / "a.splat", dtype=ROW)
    assert (tmp_path / "a.splat").stat().st_size == 50 * 32
    original_index = [int(np.flatnonzero((g.means.numpy() == p).all(1))[0]) for p in rows["position"]]
    importance = (g.scales.prod(dim=1) * g.opacities)[original_index]
    assert torch.all(importance[:-1] >= importance[1:])


def test_gsplat_exported_splat_loads_within_quantization(tmp_path, gaussians_factory):
    g = gaussians_factory(60, sh_degree=0)
    gsplat.export_splats(g.means, g.scales.log(), g.quats, torch.logit(g.opacities), g.sh[:, :1], g.sh[:, 1:],
                         format="splat", save_to=str(tmp_path / "gs.splat"))
    back = load(tmp_path / "gs.splat")
    a, b = by_position(back), by_position(g)
    torch.testing.assert_close(a.scales, b.scales, rtol=1e-6, atol=0)  # gsplat writes exp(log s)
    assert (a.rgb() - b.rgb()).abs().max() <= 1 / 255 + 1e-6  # gsplat truncates to 8 bits
    assert ((a.quats * b.quats).sum(1).abs().min()) >= 0.999


def test_size_not_multiple_of_32_raises(tmp_path):
    (tmp_path / "bad.splat").write_bytes(b"\1" * 33)
    with pytest.raises(SceneFileError, match="multiple of 32"):
        load(tmp_path / "bad.splat")
