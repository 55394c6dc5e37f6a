"""SPZ and SOG: round trips within each format's quantisation, older SPZ versions, bad files."""

from __future__ import annotations

import gzip
import json
import zipfile

import numpy as np
import pytest
import torch

from lyra.errors import SceneFileError
from lyra.scene import load, save
from lyra.scene.formats import detect_format, spz
from lyra.scene.formats.ply_compressed import morton_order
from lyra.scene.formats.sog_quantize import codebook_1d, palette


def assert_spz_close(back, g):
    """Bounds from SPZ's bit widths: 1/4096 position, 1/32 log-scale, 8-bit colour/alpha, 5/4-bit SH."""
    assert len(back) == len(g) and back.sh_degree == g.sh_degree
    assert (back.means - g.means).abs().max() <= 0.5 / 4096 + 1e-6
    assert (back.scales.log() - g.scales.log()).abs().max() <= 1 / 32 + 1e-5
    assert (back.opacities - g.opacities).abs().max() <= 0.5 / 255 + 1e-6
    assert (back.sh[:, 0] - g.sh[:, 0]).abs().max() <= 0.5 / (0.15 * 255) + 1e-5
    if g.sh_degree:
        assert (back.sh[:, 1:4] - g.sh[:, 1:4]).abs().max() <= 4.5 / 128 + 1e-6  # rounding, then 5 bits: buckets of 8/128
    if g.sh_degree > 1:
        assert (back.sh[:, 4:] - g.sh[:, 4:]).abs().max() <= 8.5 / 128 + 1e-6  # rounding, then 4 bits: buckets of 16/128
    assert (back.quats * g.quats).sum(1).abs().min() >= 1 - 2e-5  # 9-bit smallest three


@pytest.mark.parametrize("degree", [0, 3])
def test_spz_round_trip(tmp_path, gaussians_factory, degree):
    g = gaussians_factory(500, sh_degree=degree)
    save(g, tmp_path / "a.spz")
    assert detect_format(tmp_path / "a.spz") == "spz"
    assert (tmp_path / "a.spz").read_bytes()[:8] == b"NGSP\x04\x00\x00\x00"
    assert_spz_close(load(tmp_path / "a.spz"), g)


def test_spz_far_scene_lowers_fraction_bits(tmp_path, gaussians_factory):
    g = gaussians_factory(50, sh_degree=0)
    g = g.replace(means=g.means * 3000.0)  # past the 2048 units that 12 fraction bits reach
    save(g, tmp_path / "far.spz")
    back = load(tmp_path / "far.spz")
    assert (back.means - g.means).abs().max() <= 0.5 / 256 + 1e-3


def _gzip_file(g, version: int) -> bytes:
    """An SPZ v2/v3 file built here from the README layout (v2 rotations as x, y, z bytes with w >= 0)."""
    data = spz.encode(g)
    count, degree = len(g), g.sh_degree
    entries = [spz.TOC_ENTRY.unpack_from(data, 32 + 16 * i) for i in range(data[15])]
    import zstandard

    offset, streams = 32 + 16 * len(entries), []
    for compressed, _ in entries:
        streams.append(zstandard.ZstdDecompressor().decompress(data[offset:offset + compressed]))
        offset += compressed
    if version == 2:
        q = g.quats.numpy() * np.array([1, 1, -1, -1], np.float32)  # RDF -> RUB, as the v4 stream holds
        q = np.where(q[:, :1] < 0, -q, q)
        streams[4] = np.clip(np.rint(q[:, 1:] * 127.5 + 127.5), 0, 255).astype(np.uint8).tobytes()
    header = spz.HEADER_V3.pack(spz.MAGIC, version, count, degree, 12, 0, 0)
    return gzip.compress(header + b"".join(streams))


@pytest.mark.parametrize("version", [2, 3])
def test_spz_reads_gzip_versions(tmp_path, gaussians_factory, version):
    g = gaussians_factory(300, sh_degree=1)
    (tmp_path / "old.spz").write_bytes(_gzip_file(g, version))
    back = load(tmp_path / "old.spz")
    if version == 3:
        assert_spz_close(back, g)
    else:
        assert (back.quats * g.quats).sum(1).abs().min() >= 0.995  # 8-bit x, y, z
        assert (back.means - g.means).abs().max() <= 0.5 / 4096 + 1e-6


@pytest.mark.parametrize("cut", [10, 40, 200, -5])
def test_spz_truncated_raises(tmp_path, gaussians_factory, cut):
    save(gaussians_factory(300), tmp_path / "a.spz")
    for name, data in [("v4.spz", (tmp_path / "a.spz").read_bytes()), ("v3.spz", _gzip_file(gaussians_factory(300), 3))]:
        (tmp_path / name).write_bytes(data[:cut])
        with pytest.raises(SceneFileError):
            load(tmp_path / name)


def test_spz_lying_count_raises_before_allocating(tmp_path, gaussians_factory):
    save(gaussians_factory(10), tmp_path / "a.spz")
    data = bytearray((tmp_path / "a.spz").read_bytes())
    data[8:12] = (4_000_000_000).to_bytes(4, "little")
    (tmp_path / "a.spz").write_bytes(bytes(data))
    with pytest.raises(SceneFileError, match="splats"):
        load(tmp_path / "a.spz")


# ------------------------------------------------------------------------------------------------ SOG
def assert_sog_close(back, g):
    """SOG keeps 16-bit log-space centres, 8-bit codebooks, 8-bit quaternion components, a k-means SH palette."""
    g = g[torch.from_numpy(morton_order(g.means.numpy()))]
    assert len(back) == len(g) and back.sh_degree == g.sh_degree
    t = torch.sign(g.means) * torch.log1p(g.means.abs())
    step = (t.max(0).values - t.min(0).values) / 65535
    assert (back.means - g.means).abs().max() <= (step * torch.exp(t.abs().max())).max() + 1e-6
    assert (back.opacities - g.opacities).abs().max() <= 0.5 / 255 + 1e-6
    assert (back.scales.log() - g.scales.log()).abs().max() <= 0.05
    assert (back.sh[:, 0] - g.sh[:, 0]).abs().max() <= 0.02
    assert (back.quats * g.quats).sum(1).abs().min() >= 0.999
    if g.sh_degree:
        # 500 splats get a 256-entry palette: a lossy fit, but far better than predicting zero
        error = (back.sh[:, 1:] - g.sh[:, 1:]).pow(2).mean()
        assert error < 0.5 * g.sh[:, 1:].pow(2).mean()


@pytest.mark.parametrize("degree", [0, 3])
def test_sog_bundle_round_trip(tmp_path, gaussians_factory, degree):
    g = gaussians_factory(500, sh_degree=degree)
    save(g, tmp_path / "a.sog")
    assert detect_format(tmp_path / "a.sog") == "sog"
    names = zipfile.ZipFile(tmp_path / "a.sog").namelist()
    assert names[0] == "meta.json" and ("shN_labels.webp" in names) == (degree > 0)
    assert_sog_close(load(tmp_path / "a.sog"), g)


def test_sog_unbundled_meta_json_and_folder(tmp_path, gaussians_factory):
    g = gaussians_factory(200, sh_degree=2)
    (tmp_path / "s").mkdir()
    save(g, tmp_path / "s" / "meta.json")
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["version"] == 2 and meta["count"] == 200 and meta["shN"]["bands"] == 2
    from_file, from_folder = load(tmp_path / "s" / "meta.json"), load(tmp_path / "s")
    assert from_file.equal(from_folder)
    assert_sog_close(from_file, g)


def test_sog_bad_meta_and_missing_image_raise(tmp_path, gaussians_factory):
    (tmp_path / "s").mkdir()
    save(gaussians_factory(50, sh_degree=1), tmp_path / "s" / "meta.json")
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    cases = [dict(meta, version=1), dict(meta, count=10**12), dict(meta, count=10_000),
             dict(meta, means=dict(meta["means"], files=["../../etc/passwd", "x"])),
             dict(meta, scales=dict(meta["scales"], codebook=[0.0])), dict(meta, shN=dict(meta["shN"], bands=7)),
             dict(meta, means=dict(meta["means"], maxs=[1e3, 1e3, 1e3]))]  # centres overflow to inf
    for case in cases:
        (tmp_path / "s" / "meta.json").write_text(json.dumps(case))
        with pytest.raises(SceneFileError):
            load(tmp_path / "s" / "meta.json")
    (tmp_path / "s" / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "s" / "quats.webp").unlink()
    with pytest.raises(SceneFileError, match="quats"):
        load(tmp_path / "s")


def test_codebook_1d_is_exact_for_few_values_and_sorted():
    values = torch.tensor([0.5, -2.0, 3.0, 0.5, 3.0]).repeat(100)
    book, labels = codebook_1d(values, size=8)
    assert torch.all(book[1:] >= book[:-1])
    assert torch.equal(book[labels.long()], values)


def test_palette_recovers_clusters_and_is_deterministic():
    gen = torch.Generator().manual_seed(1)
    centres = torch.randn(40, 9, generator=gen) * 5
    points = centres[torch.randint(40, (4000,), generator=gen)] + 0.01 * torch.randn(4000, 9, generator=gen)
    table, labels = palette(points, 256)
    assert len(table) <= 256 and labels.max() < len(table)
    assert (table[labels] - points).abs().max() < 0.2  # every point lands in its own cluster's entry
    again, labels_again = palette(points, 256)
    assert torch.equal(table, again) and torch.equal(labels, labels_again)


def test_cli_convert_ply_to_spz_sog_and_back(tmp_path, gaussians_factory):
    from lyra.cli import main

    g = gaussians_factory(120, sh_degree=1)
    save(g, tmp_path / "a.ply")
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "a.spz")]) == 0
    assert main(["convert", str(tmp_path / "a.spz"), str(tmp_path / "b.sog")]) == 0
    assert main(["convert", str(tmp_path / "b.sog"), str(tmp_path / "c.ply")]) == 0
    assert detect_format(tmp_path / "a.spz") == "spz" and detect_format(tmp_path / "b.sog") == "sog"
    back = load(tmp_path / "c.ply")
    assert len(back) == 120 and back.sh_degree == 1
    order = torch.from_numpy(morton_order(g.means.numpy()))
    assert (back.means - g.means[order]).abs().max() < 1e-3
