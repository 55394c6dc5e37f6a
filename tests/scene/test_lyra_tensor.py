"""Official Lyra save_gaussians output: a torch-saved [1, N, 14] tensor under a .ply name."""

from __future__ import annotations

import pytest
import torch

from lyra.errors import SceneFileError
from lyra.scene import load
from lyra.scene.formats import detect_format


def lyra_tensor(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1)
    return torch.cat([torch.randn(n, 3, generator=gen), torch.rand(n, 1, generator=gen),
                      torch.rand(n, 3, generator=gen) * 0.1, quats, torch.rand(n, 3, generator=gen)], dim=1)


def test_detected_by_content_despite_ply_name(tmp_path):
    torch.save(lyra_tensor(5)[None], tmp_path / "gaussians.ply")
    assert detect_format(tmp_path / "gaussians.ply") == "lyra-tensor"


def test_columns_map_to_activated_attributes(tmp_path):
    t = lyra_tensor(20)
    torch.save(t[None], tmp_path / "g.ply")
    g = load(tmp_path / "g.ply")
    assert len(g) == 20 and g.sh_degree == 0
    assert torch.equal(g.means, t[:, 0:3])
    assert torch.equal(g.opacities, t[:, 3])
    assert torch.equal(g.scales, t[:, 4:7])
    torch.testing.assert_close(g.quats, t[:, 7:11])
    torch.testing.assert_close(g.rgb(), t[:, 11:14])  # rgb -> SH DC -> rgb


def test_two_dimensional_tensor_also_loads(tmp_path):
    torch.save(lyra_tensor(4), tmp_path / "g.ply")
    assert len(load(tmp_path / "g.ply")) == 4


def test_wrong_shape_raises(tmp_path):
    torch.save(torch.zeros(1, 4, 13), tmp_path / "g.ply")
    with pytest.raises(SceneFileError, match="shape \\[1, 4, 13\\]"):
        load(tmp_path / "g.ply")


def test_non_tensor_payload_raises(tmp_path):
    torch.save({"means": torch.zeros(3)}, tmp_path / "g.ply")
    with pytest.raises(SceneFileError, match="dict"):
        load(tmp_path / "g.ply")


def test_garbage_zip_raises_scene_file_error(tmp_path):
    (tmp_path / "g.ply").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(SceneFileError, match="torch.load refused"):
        load(tmp_path / "g.ply")


def test_nan_rows_dropped_on_request(tmp_path):
    t = lyra_tensor(6)
    t[2, 0] = float("nan")
    torch.save(t[None], tmp_path / "g.ply")
    with pytest.raises(SceneFileError, match="1 of 6"):
        load(tmp_path / "g.ply")
    with pytest.warns(UserWarning, match="dropped 1 of 6"):
        assert len(load(tmp_path / "g.ply", drop_invalid=True)) == 5
