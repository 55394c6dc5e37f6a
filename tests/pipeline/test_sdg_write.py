"""Writing the official SDG trajectory layout and reading it back (what a teacher produces)."""

import numpy as np
import pytest
import torch

from lyra.errors import InputDataError
from lyra.pipeline.sdg import read_depth_zip, read_trajectory, write_trajectory

T, H, W = 2, 4, 6
F = 8 * (T - 1) + 1


def _trajectory_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(16, T, H, W, generator=g)
    c2w = torch.eye(4).repeat(F, 1, 1)
    c2w[:, 0, 3] = torch.linspace(0, 1, F)
    K = torch.tensor([[40.0, 0, 24], [0, 42, 16], [0, 0, 1]]).repeat(F, 1, 1)
    ramp = torch.linspace(0, 255, 8 * W).round().to(torch.uint8)
    frames = ramp[None, None, :, None].expand(F, 8 * H, 8 * W, 3).contiguous()
    depth = 1.0 + torch.rand(F, 8 * H, 8 * W, generator=g) * 10
    return latents, c2w, K, frames, depth


def test_written_trajectory_reads_back_with_the_same_values(tmp_path):
    latents, c2w, K, frames, depth = _trajectory_data()
    write_trajectory(tmp_path / "0", latents=latents, c2w=c2w, intrinsics=K, frames=frames, depth=depth, name="img")
    traj = read_trajectory(tmp_path / "0", rgb=True, depth=True)
    assert traj.name == "img"
    assert torch.equal(traj.latents, latents)
    assert torch.equal(traj.c2w, c2w)
    assert traj.intrinsics[0].tolist() == [40.0, 42.0, 24.0, 16.0]  # K matrices become (fx, fy, cx, cy)
    assert traj.frames.shape == (F, 8 * H, 8 * W, 3) and traj.frames.dtype == torch.uint8
    assert (traj.frames.float() - frames.float()).abs().mean() < 3  # H.264 is lossy, but close
    assert torch.allclose(traj.depth, depth.half().float())  # EXR channel Z is float16
    assert traj.cameras.width == 8 * W and traj.cameras.height == 8 * H


def test_written_files_follow_the_official_names_keys_and_dtypes(tmp_path):
    latents, c2w, K, _, depth = _trajectory_data()
    folder = write_trajectory(tmp_path / "3", latents=latents, c2w=c2w, intrinsics=K, depth=depth)
    stored = torch.load(folder / "latent" / "scene.pkl", weights_only=True)
    assert stored.shape == (1, 16, T, H, W) and stored.dtype == torch.float32
    with np.load(folder / "pose" / "scene.npz") as npz:
        assert sorted(npz.files) == ["data", "inds"]
        assert npz["data"].shape == (F, 4, 4) and npz["inds"].tolist() == list(range(F))
    with np.load(folder / "intrinsics" / "scene.npz") as npz:
        assert npz["data"].shape == (F, 4)
    assert read_depth_zip(folder / "depth" / "scene.zip").shape == (F, 8 * H, 8 * W)
    assert not (folder / "rgb").exists()  # frames are optional


def test_mismatched_camera_count_writes_nothing(tmp_path):
    latents, c2w, K, _, _ = _trajectory_data()
    with pytest.raises(InputDataError, match="9 frames need c2w"):
        write_trajectory(tmp_path / "0", latents=latents, c2w=c2w[:5], intrinsics=K)
    assert not (tmp_path / "0").exists()


def test_depth_of_the_wrong_size_is_refused(tmp_path):
    latents, c2w, K, _, depth = _trajectory_data()
    with pytest.raises(InputDataError, match="depth must be"):
        write_trajectory(tmp_path / "0", latents=latents, c2w=c2w, intrinsics=K, depth=depth[:, :8])


def test_reading_rgb_that_is_missing_names_the_file(tmp_path):
    latents, c2w, K, _, _ = _trajectory_data()
    write_trajectory(tmp_path / "0", latents=latents, c2w=c2w, intrinsics=K)
    with pytest.raises(InputDataError, match=r"rgb/scene\.mp4: video file not found"):
        read_trajectory(tmp_path / "0", rgb=True)


def test_a_zip_without_exr_frames_is_reported(tmp_path):
    import zipfile

    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "no depth here")
    with pytest.raises(InputDataError, match="found none"):
        read_depth_zip(path)
