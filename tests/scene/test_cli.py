"""``lyra info`` and ``lyra convert`` through the CLI entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lyra.cli import main
from lyra.scene import GaussianSequence, load, save


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_info_json_for_static_scene(tmp_path, capsys, gaussians_factory):
    g = gaussians_factory(40, sh_degree=2)
    save(g, tmp_path / "a.ply")
    info = run_json(capsys, "info", str(tmp_path / "a.ply"), "--json")
    assert info["kind"] == "static" and info["format"] == "ply"
    assert info["num_frames"] == 1 and info["num_gaussians"] == 40 and info["sh_degree"] == 2
    np.testing.assert_allclose(info["bbox"]["min"], g.means.min(0).values.numpy(), rtol=1e-6)
    np.testing.assert_allclose(info["opacity_range"], [g.opacities.min(), g.opacities.max()], rtol=1e-5)
    np.testing.assert_allclose(info["scale_range"], [g.scales.min(), g.scales.max()], rtol=1e-5)
    assert info["warnings"] == []


def test_info_json_for_sequence_lists_counts_per_frame(tmp_path, capsys, gaussians_factory):
    save(GaussianSequence([gaussians_factory(3), gaussians_factory(8, seed=1)], fps=10), tmp_path / "seq")
    info = run_json(capsys, "info", str(tmp_path / "seq"), "--json")
    assert info["kind"] == "sequence" and info["num_frames"] == 2 and info["num_gaussians"] == [3, 8]
    assert info["fps"] == 10


def test_info_reports_loading_warnings(tmp_path, capsys, gaussians_factory):
    g = gaussians_factory(5, sh_degree=0)
    save(g, tmp_path / "a.ply")
    data = (tmp_path / "a.ply").read_bytes()
    # Rewrite opacity logits as already-activated values in [0, 1].
    import plyfile

    ply = plyfile.PlyData.read(str(tmp_path / "a.ply"))
    ply["vertex"].data["opacity"] = g.opacities.numpy()
    ply.write(str(tmp_path / "b.ply"))
    assert len(data) > 0
    info = run_json(capsys, "info", str(tmp_path / "b.ply"), "--json")
    assert any("already activated" in w for w in info["warnings"])


def test_info_on_bad_file_exits_1_with_message(tmp_path, capsys):
    (tmp_path / "bad.ply").write_bytes(b"ply\nnonsense\n")
    assert main(["info", str(tmp_path / "bad.ply")]) == 1
    assert "bad.ply" in capsys.readouterr().err


def test_convert_ply_to_compressed_with_sh_degree(tmp_path, capsys, gaussians_factory):
    save(gaussians_factory(30), tmp_path / "a.ply")
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "b.compressed.ply"), "--sh-degree", "1"]) == 0
    back = load(tmp_path / "b.compressed.ply")
    assert len(back) == 30 and back.sh_degree == 1


def test_convert_format_flag_overrides_name(tmp_path, gaussians_factory):
    save(gaussians_factory(10), tmp_path / "a.ply")
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "out.bin"), "--format", "splat"]) == 0
    assert (tmp_path / "out.bin").stat().st_size == 10 * 32


def test_convert_refuses_to_overwrite_without_flag(tmp_path, capsys, gaussians_factory):
    save(gaussians_factory(10), tmp_path / "a.ply")
    (tmp_path / "b.splat").write_bytes(b"keep")
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "b.splat")]) == 1
    assert (tmp_path / "b.splat").read_bytes() == b"keep"
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "b.splat"), "--overwrite"]) == 0
    assert len(load(tmp_path / "b.splat")) == 10


def test_convert_sequence_folder_to_sequence_folder(tmp_path, gaussians_factory):
    save(GaussianSequence([gaussians_factory(3), gaussians_factory(4, seed=2)]), tmp_path / "seq")
    assert main(["convert", str(tmp_path / "seq"), str(tmp_path / "copy")]) == 0
    assert load(tmp_path / "copy").num_gaussians == [3, 4]


def test_convert_multi_frame_sequence_to_single_file_fails_clearly(tmp_path, capsys, gaussians_factory):
    save(GaussianSequence([gaussians_factory(3), gaussians_factory(4, seed=2)]), tmp_path / "seq")
    assert main(["convert", str(tmp_path / "seq"), str(tmp_path / "one.ply")]) == 1
    assert "sequence of 2 frames" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["ply", "splat"])
def test_convert_lyra_tensor_to_standard_formats(tmp_path, fmt):
    t = torch.cat([torch.randn(6, 3), torch.rand(6, 1), torch.rand(6, 3) * 0.1 + 0.01,
                   torch.nn.functional.normalize(torch.randn(6, 4), dim=1), torch.rand(6, 3)], dim=1)
    torch.save(t[None], tmp_path / "lyra.ply")
    out = tmp_path / f"out.{fmt}"
    assert main(["convert", str(tmp_path / "lyra.ply"), str(out)]) == 0
    torch.testing.assert_close(load(out).means.sort(0).values, t[:, :3].sort(0).values)


@pytest.mark.parametrize("name", ["out.glb", "out.usdz", "out.usda"])
def test_convert_to_gltf_and_usd_by_name(tmp_path, gaussians_factory, name):
    g = gaussians_factory(12, sh_degree=2)
    save(g, tmp_path / "a.ply")
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / name)]) == 0
    assert load(tmp_path / name).equal(g, atol=1e-5)


def test_convert_clip_to_usd_keeps_every_frame_and_to_glb_writes_a_folder(tmp_path, gaussians_factory):
    save(GaussianSequence([gaussians_factory(3), gaussians_factory(4, seed=2)], fps=5), tmp_path / "seq")
    assert main(["convert", str(tmp_path / "seq"), str(tmp_path / "clip.usdc")]) == 0
    clip = load(tmp_path / "clip.usdc")
    assert isinstance(clip, GaussianSequence) and clip.num_gaussians == [3, 4] and clip.fps == 5
    assert main(["convert", str(tmp_path / "clip.usdc"), str(tmp_path / "clip.glb")]) == 0
    assert (tmp_path / "clip.glb").is_dir() and load(tmp_path / "clip.glb").num_gaussians == [3, 4]
