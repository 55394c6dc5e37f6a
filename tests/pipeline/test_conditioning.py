"""Conditioning on in-memory tensors and cameras: differentiable, and decoding from memory equals decoding a folder."""

import pytest
import torch

from lyra.model.checkpoint import load_decoder
from lyra.model.tokenizer import latent_statistics, load_cosmos_tokenizer
from lyra.pipeline.conditioning import decoder_inputs
from lyra.pipeline.decode import decode_latents, decode_scene
from lyra.pipeline.sdg import read_scene, write_trajectory
from lyra.progress import Cancelled


def test_gradients_flow_from_decoder_inputs_back_to_the_latents(scene_dir, vae_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    traj = read_scene(scene_dir, ["0"])[0]
    latents = traj.latents.clone().requires_grad_(True)
    inputs = decoder_inputs([latents], [traj.cameras], vae, latent_statistics(vae))
    inputs.images.sum().backward()
    mean, std = latent_statistics(vae)
    # d(x / 0.5 * std + mean)/dx = 2 std, per channel and latent frame
    expected = (2 * std[:, : latents.shape[1], None, None]).expand_as(latents)
    assert torch.allclose(latents.grad, expected)


def test_scene_written_by_the_writer_decodes_like_the_in_memory_latents(tmp_path, scene_dir, vae_dir, static_checkpoint_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    model = load_decoder(static_checkpoint_dir)
    trajectories = read_scene(scene_dir, ["0", "1"])
    for t in trajectories:
        write_trajectory(tmp_path / "copy" / t.folder.name, latents=t.latents, c2w=t.c2w, intrinsics=t.intrinsics)
    from_disk = decode_scene(model, vae, tmp_path / "copy", views=["0", "1"])
    in_memory = decode_latents(model, vae, [t.latents for t in trajectories], [t.cameras for t in trajectories])
    assert torch.allclose(from_disk.means, in_memory.means, atol=1e-5)


def test_decoding_reports_rising_progress_up_to_one_and_can_be_cancelled(scene_dir, vae_dir, static_checkpoint_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    model = load_decoder(static_checkpoint_dir)
    seen = []
    decode_scene(model, vae, scene_dir, views=["0", "1"], progress=lambda f, text: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3

    def cancel(fraction, text):
        if fraction > 0.3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        decode_scene(model, vae, scene_dir, views=["0", "1"], progress=cancel)


def test_prune_ratio_is_a_decode_argument(scene_dir, vae_dir, static_checkpoint_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    model = load_decoder(static_checkpoint_dir)
    full = decode_scene(model, vae, scene_dir, views=["0"])
    half = decode_scene(model, vae, scene_dir, views=["0"], prune_ratio=0.5)
    assert len(half) == len(full) // 2
    assert model.config.gaussians_prune_ratio == 0.0  # the config is not swapped
