"""SuperSplat compressed PLY: our round trip and gsplat's exporter, within the format's quantisation."""

from __future__ import annotations

import gsplat
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from lyra.errors import SceneFileError
from lyra.scene import load, save
from lyra.scene.formats import detect_format
from lyra.scene.formats.ply_compressed import CHUNK_SIZE, morton_order


def match_rows(loaded, original):
    """Index into ``original`` of each loaded splat (files are Morton-reordered), by nearest centre."""
    dist, index = cKDTree(original.means.numpy()).query(loaded.means.numpy())
    assert len(set(index.tolist())) == len(original), "nearest-centre matching is not one-to-one"
    return torch.from_numpy(index)


def assert_within_quantization(loaded, g):
    """Bounds from the bit widths: 10 bits over the extent for centres and log-scales, 8 for colour/opacity."""
    g = g[match_rows(loaded, g)]
    extent = (g.means.max(0).values - g.means.min(0).values).max()
    assert (loaded.means - g.means).abs().max() <= extent / 1023
    log_extent = (g.scales.log().max() - g.scales.log().min())
    assert (loaded.scales.log() - g.scales.log()).abs().max() <= log_extent / 1023 + 1e-5
    assert (loaded.opacities - g.opacities).abs().max() <= 0.5 / 255 + 1e-6
    rgb_extent = (g.rgb().max() - g.rgb().min())
    assert (loaded.rgb() - g.rgb()).abs().max() <= rgb_extent / 255 + 1e-5
    if g.sh_degree > 0:
        assert (loaded.sh[:, 1:] - g.sh[:, 1:]).abs().max() <= 8 / 256 + 1e-6
    dots = (loaded.quats * g.quats).sum(1).abs()
    assert dots.min() >= 1 - 2e-5


def test_round_trip_within_quantization(tmp_path, gaussians_factory):
    g = gaussians_factory(600, grid=True)
    save(g, tmp_path / "a.compressed.ply")
    back = load(tmp_path / "a.compressed.ply")
    assert len(back) == 600 and back.sh_degree == 3
    assert_within_quantization(back, g)


def test_degree_zero_writes_no_sh_element(tmp_path, gaussians_factory):
    save(gaussians_factory(10, sh_degree=0), tmp_path / "a.compressed.ply")
    header = (tmp_path / "a.compressed.ply").read_bytes()[:2000]
    assert b"element sh" not in header and b"element chunk 1\n" in header
    assert load(tmp_path / "a.compressed.ply").sh_degree == 0


def test_file_size_is_16_bytes_plus_sh_per_splat(tmp_path, gaussians_factory):
    save(gaussians_factory(512, sh_degree=1), tmp_path / "a.compressed.ply")
    header_end = (tmp_path / "a.compressed.ply").read_bytes().index(b"end_header\n") + len(b"end_header\n")
    assert (tmp_path / "a.compressed.ply").stat().st_size - header_end == 2 * 18 * 4 + 512 * (16 + 9)


def test_detected_by_chunk_element(tmp_path, gaussians_factory):
    save(gaussians_factory(5), tmp_path / "x.ply", format="ply-compressed")
    assert detect_format(tmp_path / "x.ply") == "ply-compressed"


@pytest.mark.parametrize("degree", [0, 3])
def test_gsplat_exported_file_loads_within_quantization(tmp_path, gaussians_factory, degree):
    g = gaussians_factory(600, sh_degree=degree, grid=True)
    path = tmp_path / "gsplat.compressed.ply"
    gsplat.export_splats(g.means, g.scales.log(), g.quats, torch.logit(g.opacities), g.sh[:, :1], g.sh[:, 1:],
                         format="ply_compressed", save_to=str(path))
    back = load(path)
    assert back.sh_degree == degree
    assert_within_quantization(back, g)


def test_constant_attribute_chunk_does_not_divide_by_zero(tmp_path, gaussians_factory):
    g = gaussians_factory(20, sh_degree=0)
    g = g.replace(scales=torch.full((20, 3), 0.02))
    save(g, tmp_path / "c.compressed.ply")
    torch.testing.assert_close(load(tmp_path / "c.compressed.ply").scales, g.scales)


def test_morton_order_groups_nearby_centres():
    means = np.array([[0, 0, 0], [1, 1, 1], [0.01, 0, 0], [0.99, 1, 1]], np.float64)
    order = morton_order(means).tolist()
    assert abs(order.index(0) - order.index(2)) == 1 and abs(order.index(1) - order.index(3)) == 1


def test_chunk_count_mismatch_raises(tmp_path, gaussians_factory):
    save(gaussians_factory(CHUNK_SIZE + 1), tmp_path / "a.compressed.ply")
    data = (tmp_path / "a.compressed.ply").read_bytes().replace(b"element chunk 2", b"element chunk 1", 1)
    (tmp_path / "b.compressed.ply").write_bytes(data)
    with pytest.raises(SceneFileError, match="2 chunks for 257 splats"):
        load(tmp_path / "b.compressed.ply")


def test_truncated_file_raises(tmp_path, gaussians_factory):
    save(gaussians_factory(30), tmp_path / "a.compressed.ply")
    (tmp_path / "t.compressed.ply").write_bytes((tmp_path / "a.compressed.ply").read_bytes()[:-7])
    with pytest.raises(SceneFileError, match="truncated"):
        load(tmp_path / "t.compressed.ply")


def test_huge_declared_counts_raise_before_allocating(tmp_path, gaussians_factory):
    save(gaussians_factory(10), tmp_path / "a.compressed.ply")
    data = (tmp_path / "a.compressed.ply").read_bytes()
    data = data.replace(b"element vertex 10\n", b"element vertex 2560000000\n").replace(b"element chunk 1\n", b"element chunk 10000000\n")
    data = data.replace(b"element sh 10\n", b"element sh 2560000000\n")
    (tmp_path / "huge.compressed.ply").write_bytes(data)
    with pytest.raises(SceneFileError, match="truncated"):
        load(tmp_path / "huge.compressed.ply")
