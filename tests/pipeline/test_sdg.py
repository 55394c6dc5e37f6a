"""Reading and decoding a synthetic SDG scene written in the official layout (tiny random tokenizer and decoder)."""

import numpy as np
import pytest
import torch

from lyra.errors import InputDataError
from lyra.model.checkpoint import load_decoder, load_official_decoder
from lyra.model.tokenizer import denormalize_latents, latent_statistics, load_cosmos_tokenizer
from lyra.pipeline.conditioning import TimeEmbedder, decoder_inputs, normalized_times, time_embedding_values
from lyra.pipeline.decode import decode_scene
from lyra.pipeline.sdg import load_latent_file, read_scene
from lyra.scene import Gaussians, GaussianSequence


def test_latent_file_loads_from_numpy_and_tensor_pickles(scene_dir):
    from_numpy = load_latent_file(scene_dir / "0" / "latent" / "scene.pkl")
    from_tensor = load_latent_file(scene_dir / "1" / "latent" / "scene.pkl")
    assert from_numpy.shape == from_tensor.shape == (16, 2, 4, 6)
    assert from_numpy.dtype == torch.float32


def test_latent_file_with_arbitrary_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    torch.save({"payload": print}, path)
    with pytest.raises(InputDataError, match="unreadable"):
        load_latent_file(path)


def test_latent_file_with_wrong_rank_is_rejected(tmp_path):
    path = tmp_path / "flat.pkl"
    torch.save(torch.zeros(16, 5), path)
    with pytest.raises(InputDataError, match=r"expected latents \[1, C, T, H, W\]"):
        load_latent_file(path)


def test_time_values_are_normalised_over_inputs_and_target():
    tau_in, tau_target = normalized_times(torch.arange(9), 4)
    assert tau_in.tolist() == pytest.approx([i / 8 for i in range(9)])
    assert tau_target.tolist() == pytest.approx([0.5])
    emb = time_embedding_values(torch.tensor([0.0, 1.0]))
    assert emb.flatten().tolist() == pytest.approx([0.0, 1.0, 0.0, 1.0, np.cos(1.0), np.sin(1.0)])


def test_time_embedder_gives_t_plus_one_latent_frames(vae_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    embed = TimeEmbedder(vae, num_frames=9, image_size=(32, 48))
    latents = embed(8)
    assert latents.shape == (1, 3, 16, 4, 6)
    assert not torch.equal(latents[:, 2], embed(0)[:, 2])  # the target frame changes with the target time
    assert torch.equal(latents[:, :2], embed(0)[:, :2])  # input times do not


def test_inputs_use_relative_poses_and_latent_grid_rays(scene_dir, vae_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    trajectories = read_scene(scene_dir, ["1", "0"])
    inputs = decoder_inputs(
        [t.latents for t in trajectories], [t.cameras for t in trajectories], vae, latent_statistics(vae)
    )
    assert inputs.images.shape == (1, 4, 16, 4, 6)
    assert inputs.plucker.shape == (1, 4, 32, 4, 6)
    assert inputs.rays_os.shape == inputs.rays_ds.shape == (1, 18, 3, 4, 6)
    # First frame of the first view (folder "1") is the reference camera: origin 0, identity rotation.
    assert torch.allclose(inputs.rays_os[0, 0], torch.zeros(3, 4, 6), atol=1e-6)
    fx, fy, cx, cy = 40.0 / 8, 42.0 / 8, 24.0 / 8, 16.0 / 8
    d = torch.tensor([(2 + 0.5 - cx) / fx, (1 + 0.5 - cy) / fy, 1.0])
    assert torch.allclose(inputs.rays_ds[0, 0, :, 1, 2], d / d.norm(), atol=1e-6)
    # Images are denormalised latents of folder "1" first, frames in order.
    mean, std = latent_statistics(vae)
    expected = denormalize_latents(load_latent_file(scene_dir / "1" / "latent" / "scene.pkl"), mean, std)
    assert torch.allclose(inputs.images[0, :2], expected.permute(1, 0, 2, 3))


def test_static_scene_decodes_to_gaussians_matching_the_network_output(scene_dir, vae_dir, static_checkpoint_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    model = load_decoder(static_checkpoint_dir)
    gaussians = decode_scene(model, vae, scene_dir, views=["0", "1"])
    assert isinstance(gaussians, Gaussians)
    assert len(gaussians) == 2 * 9 * 4 * 6
    trajectories = read_scene(scene_dir, ["0", "1"])
    inputs = decoder_inputs(
        [t.latents for t in trajectories], [t.cameras for t in trajectories], vae, latent_statistics(vae)
    )
    with torch.no_grad():
        packed = model.forward_gaussians(inputs.images, inputs.plucker, inputs.rays_os, inputs.rays_ds, num_views=2)[0]
    assert torch.allclose(gaussians.means, packed[:, :3])
    assert torch.allclose(gaussians.opacities, packed[:, 3])
    assert torch.allclose(gaussians.rgb(), packed[:, 11:14], atol=1e-6)
    gaussians.validate()


def test_dynamic_scene_decodes_one_gaussian_set_per_target_frame(
    scene_dir, vae_dir, dynamic_deepspeed_file, make_tiny_config
):
    vae = load_cosmos_tokenizer(vae_dir)
    model = load_official_decoder(dynamic_deepspeed_file, config=make_tiny_config("dynamic"))
    sequence = decode_scene(model, vae, scene_dir, views=["0", "1"], target_frames=[0, 8])
    assert isinstance(sequence, GaussianSequence)
    assert sequence.times == pytest.approx([0.0, 8 / 24])
    assert not torch.allclose(sequence[0].means, sequence[1].means)


def test_mismatched_pose_frame_count_is_reported(scene_dir, make_trajectory):
    make_trajectory(scene_dir / "1", 1, as_numpy=False, num_frames=7)
    with pytest.raises(InputDataError, match=r"expected frames 0\.\.8"):
        read_scene(scene_dir, ["0", "1"])


def test_wrong_pose_shape_is_reported(scene_dir):
    np.savez(scene_dir / "0" / "pose" / "scene.npz", data=np.zeros((9, 3, 4)), inds=np.arange(9))
    with pytest.raises(InputDataError, match=r"expected data \[F, 4, 4\]"):
        read_scene(scene_dir, ["0"])


def test_missing_trajectory_folder_is_reported(scene_dir):
    with pytest.raises(InputDataError, match="trajectory folder not found"):
        read_scene(scene_dir, ["0", "5"])


def test_missing_intrinsics_file_is_reported(scene_dir):
    (scene_dir / "1" / "intrinsics" / "scene.npz").unlink()
    with pytest.raises(InputDataError, match="intrinsics.*not found"):
        read_scene(scene_dir, ["1"])


def test_differently_sized_latents_across_views_are_reported(scene_dir):
    torch.save(torch.zeros(1, 16, 2, 4, 8), scene_dir / "1" / "latent" / "scene.pkl")
    with pytest.raises(InputDataError, match="differ from"):
        read_scene(scene_dir, ["0", "1"])
