"""Findings 6 and 7 (scenes): near-zero quaternions are invalid; empty scenes export cleanly or refuse clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lyra.errors import InvalidGaussiansError, LyraError, SceneFileError
from lyra.scene import Gaussians, load, save
from lyra.scene.formats.ply_header import format_header
from tests.security.conftest import tiny_gaussians


@pytest.mark.parametrize("norm", [1e-30, 1e-20, 1e-12, 0.0])
def test_quaternion_of_tiny_norm_is_rejected(tmp_path, norm):
    g = tiny_gaussians(4)
    quats = g.quats.clone()
    quats[2] = torch.tensor([norm, 0.0, 0.0, 0.0])
    bad = g.replace(quats=quats)
    with pytest.raises(InvalidGaussiansError, match="zero quaternions"):
        bad.validate()
    # the same value in a PLY file (raw, unnormalised rot_*) is refused or dropped at load
    props = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
    rows = np.zeros((4, len(props)), "<f4")
    rows[:, 6] = -1.0  # opacity logits (values in [0, 1] would warn)
    rows[:, 10] = 1.0
    rows[2, 10] = norm
    path = tmp_path / "tiny.ply"
    path.write_bytes(format_header([("vertex", 4, [(p, "f4") for p in props])]) + rows.tobytes())
    with pytest.raises(SceneFileError, match="zero quaternions"):
        load(path)
    with pytest.warns(UserWarning, match="dropped 1 of 4"):
        kept = load(path, drop_invalid=True)
    assert len(kept) == 3 and torch.isfinite(kept.covariances()).all()


def test_ordinary_small_quaternions_still_load(tmp_path):
    g = tiny_gaussians(4)
    save(g.replace(quats=g.quats * 1e-4), tmp_path / "small.ply")
    back = load(tmp_path / "small.ply")
    assert torch.allclose(back.quats.norm(dim=1), torch.ones(4), atol=1e-5)


@pytest.mark.parametrize("name", ["empty.ply", "empty.compressed.ply", "empty.splat", "empty_clip"])
def test_empty_scene_export_reads_back_or_raises_clearly(tmp_path, name):
    empty = Gaussians.empty(sh_degree=3)
    try:
        save(empty, tmp_path / name)
    except LyraError as exc:
        assert name.endswith(".splat") and "at least one splat" in str(exc)
        assert not (tmp_path / name).exists()
        return
    back = load(tmp_path / name)
    frame = back.frames[0] if name == "empty_clip" else back
    assert len(frame) == 0


def test_ply_export_over_a_folder_raises_a_lyra_error(tmp_path):
    (tmp_path / "taken.ply").mkdir()
    (tmp_path / "taken.ply" / "keep").write_text("x")
    for overwrite in (True, False):
        with pytest.raises(SceneFileError):
            save(tiny_gaussians(4), tmp_path / "taken.ply", overwrite=overwrite)
    assert (tmp_path / "taken.ply" / "keep").read_text() == "x"
