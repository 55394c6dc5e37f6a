"""``lyra decode`` end to end on a synthetic scene, and its error reporting."""

import pytest
import torch

from lyra.cli import main
from lyra.errors import InputDataError
from lyra.pipeline.request import parse_times  # the one parser, shared with lyra generate
from lyra.scene import load


def test_decode_writes_a_pruned_ply(scene_dir, vae_dir, static_checkpoint_dir, tmp_path, capsys):
    out = tmp_path / "scene.ply"
    code = main(
        ["decode", str(scene_dir), "--checkpoint", str(static_checkpoint_dir), "--vae", str(vae_dir),
         "--views", "1,0", "--prune", "0.5", "--device", "cpu", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    gaussians = load(out)
    assert len(gaussians) == int(2 * 9 * 4 * 6 * 0.5)
    opacities = gaussians.opacities
    assert torch.all(opacities[:-1] >= opacities[1:] - 1e-6)  # kept in descending opacity order
    assert "wrote" in capsys.readouterr().out


def test_decode_with_missing_scene_folder_exits_1_with_message(tmp_path, vae_dir, static_checkpoint_dir, capsys):
    code = main(
        ["decode", str(tmp_path / "nope"), "--checkpoint", str(static_checkpoint_dir), "--vae", str(vae_dir),
         "--out", str(tmp_path / "x.ply")]
    )  # fmt: skip
    assert code == 1
    assert "scene folder not found" in capsys.readouterr().err


def test_decode_with_missing_checkpoint_tells_where_to_get_it(scene_dir, vae_dir, tmp_path, capsys):
    code = main(
        ["decode", str(scene_dir), "--checkpoint", str(tmp_path / "lyra_static.pt"), "--vae", str(vae_dir),
         "--views", "0,1", "--out", str(tmp_path / "x.ply")]
    )  # fmt: skip
    assert code == 1
    assert "nvidia/Lyra" in capsys.readouterr().err
    assert not (tmp_path / "x.ply").exists()


def test_decode_with_missing_view_folder_is_reported(scene_dir, vae_dir, static_checkpoint_dir, tmp_path, capsys):
    code = main(
        ["decode", str(scene_dir), "--checkpoint", str(static_checkpoint_dir), "--vae", str(vae_dir),
         "--views", "5,0", "--out", str(tmp_path / "x.ply")]
    )  # fmt: skip
    assert code == 1
    assert "trajectory folder not found" in capsys.readouterr().err


def test_times_option_parsing():
    assert parse_times("all") is None
    assert parse_times("0,60,120") == [0, 60, 120]
    assert parse_times("0:121:60") == [0, 60, 120]


def test_dynamic_decode_writes_a_sequence_folder(scene_dir, vae_dir, dynamic_checkpoint_dir, tmp_path):
    out = tmp_path / "sequence"
    code = main(
        ["decode", str(scene_dir), "--checkpoint", str(dynamic_checkpoint_dir), "--vae", str(vae_dir),
         "--views", "0,1", "--times", "0,8", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    sequence = load(out)
    assert len(sequence) == 2
    assert sequence.times == pytest.approx([0.0, 8 / 24])


def test_malformed_times_option_is_reported():
    with pytest.raises(InputDataError, match="^times: "):
        parse_times("0:x")
