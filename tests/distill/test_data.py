"""The SDG dataset over the official on-disk layout (a tiny folder written here)."""

import numpy as np
import pytest
import torch

from lyra.distill.data import SDGDataset, draw_spec, eval_specs, find_scenes
from lyra.errors import InputDataError
from lyra.pipeline.sdg import write_trajectory

T, H, W = 2, 4, 6  # latent frames and grid -> 9 frames of 32x48


def _pose(f: int, shift: float) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, 3] = [0.05 * f + shift, 0.0, 0.01 * f]
    return pose


def write_scene(folder, trajectories: int, seed: int):
    rng = np.random.default_rng(seed)
    frames = 8 * (T - 1) + 1
    for t in range(trajectories):
        write_trajectory(
            folder / str(t),
            latents=torch.from_numpy(rng.standard_normal((16, T, H, W)).astype(np.float32)),
            c2w=np.stack([_pose(f, 0.3 * t + 1.0) for f in range(frames)]),
            intrinsics=np.tile([[40.0, 40.0, 24.0, 16.0]], (frames, 1)),
            frames=torch.from_numpy(rng.integers(0, 256, (frames, 8 * H, 8 * W, 3), dtype=np.uint8)),
            depth=torch.from_numpy(rng.uniform(1, 3, (frames, 8 * H, 8 * W)).astype(np.float32)),
            name="scene",
        )


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_scene(root / "a", 3, 0)
    write_scene(root / "b", 2, 1)
    (root / "not_a_scene").mkdir()
    return root


def test_finds_scenes_and_their_trajectories(root):
    ds = SDGDataset(root)
    assert [p.name for p in ds.scenes] == ["a", "b"]
    assert [ds.num_trajectories(i) for i in range(2)] == [3, 2]
    assert find_scenes(root / "a") == [root / "a"]  # a scene folder is a root of one scene
    with pytest.raises(InputDataError, match="found none"):
        find_scenes(root / "not_a_scene")


def test_sample_shapes_poses_and_resize(root):
    ds = SDGDataset(root)
    spec = eval_specs(ds, num_views=2, num_targets=3, num_frames=9)[0]
    assert spec.inputs == (0, 1) and all(p == 2 for p, _ in spec.targets)  # targets: other trajectories
    sample = ds.sample(spec, resolution=(16, 24), latent_frames=2)
    assert sample.latents.shape == (2 * T, 16, H, W)
    assert sample.input_c2w.shape == (2 * 9, 4, 4)
    assert torch.allclose(sample.input_c2w[0], torch.eye(4), atol=1e-6)  # relative to the first input camera
    # trajectory 1 frame 0 sits 0.3 to the right of trajectory 0 frame 0
    assert torch.allclose(sample.input_c2w[9, :3, 3], torch.tensor([0.3, 0.0, 0.0]), atol=1e-5)
    assert sample.target_rgb.shape == (3, 16, 24, 3) and sample.target_depth.shape == (3, 16, 24)
    assert 0 <= sample.target_rgb.min() and sample.target_rgb.max() <= 1
    assert torch.allclose(sample.target_intrinsics[0], torch.tensor([20.0, 20.0, 12.0, 8.0]))  # halved
    assert sample.image_size == (32, 48)
    one = ds.sample(spec, resolution=(16, 24), latent_frames=1)  # a shorter stage: first latent frame only
    assert one.latents.shape == (2, 16, H, W) and one.input_c2w.shape == (2, 4, 4)


def test_stored_latents_and_frames_are_what_was_written(root):
    ds = SDGDataset(root)
    spec = eval_specs(ds, 1, 1, 9)[0]
    sample = ds.sample(spec, resolution=(32, 48), latent_frames=2)
    rng = np.random.default_rng(0)
    latents = torch.from_numpy(rng.standard_normal((16, T, H, W)).astype(np.float32))
    assert torch.equal(sample.latents, latents.permute(1, 0, 2, 3))


def test_random_targets_avoid_input_trajectories(root):
    ds = SDGDataset(root)
    rng = np.random.default_rng(0)
    for _ in range(50):
        spec = draw_spec(rng, ds, num_views=1, num_targets=4, num_frames=9)
        assert all(p not in spec.inputs for p, _ in spec.targets)
        assert all(0 <= f < 9 for _, f in spec.targets)
    dyn = draw_spec(rng, ds, 1, 4, 9, dynamic=True)
    assert len({f for _, f in dyn.targets}) == 1 and dyn.target_time == dyn.targets[0][1]


def test_cache_is_bounded(root):
    ds = SDGDataset(root, cache_size=2)
    for spec in eval_specs(ds, 1, 2, 9):
        ds.sample(spec, (16, 24), 2)
    assert len(ds._cache) <= 2


def test_too_few_trajectories_is_a_clear_error(root):
    ds = SDGDataset(root / "b")
    with pytest.raises(InputDataError, match="3 input views"):
        draw_spec(np.random.default_rng(0), ds, 3, 1, 9)


def test_without_an_eval_folder_the_last_scenes_are_held_out(root):
    from lyra.distill.config import config_from_dict
    from lyra.distill.train import split_datasets

    config = config_from_dict({"eval": {"scenes": 1}})
    train_set, eval_set = split_datasets(config, root, root / "no_eval_here")
    assert [p.name for p in train_set.scenes] == ["a"] and [p.name for p in eval_set.scenes] == ["b"]
