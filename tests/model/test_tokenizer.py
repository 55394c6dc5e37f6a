"""The Cosmos tokenizer wrapper: latent statistics and (de)normalisation."""

import pytest
import torch

from lyra.errors import CheckpointError
from lyra.model.tokenizer import (
    decode_video,
    denormalize_latents,
    encode_video,
    latent_statistics,
    load_cosmos_tokenizer,
    normalize_latents,
)


def test_denormalization_is_x_over_sigma_times_std_plus_mean():
    latents = torch.ones(2, 3, 1, 1)  # C=2, T=3
    mean = torch.tensor([[0.0, 1.0, 2.0, 9.0], [10.0, 20.0, 30.0, 9.0]])
    std = torch.tensor([[1.0, 2.0, 3.0, 9.0], [0.5, 0.5, 0.5, 9.0]])
    out = denormalize_latents(latents, mean, std)
    assert out[:, :, 0, 0].tolist() == [[2.0, 5.0, 8.0], [11.0, 21.0, 31.0]]


def test_normalize_inverts_denormalize_per_channel_and_frame():
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 16, 5, 2, 3, generator=g)
    mean, std = torch.randn(16, 16, generator=g), 0.5 + torch.rand(16, 16, generator=g)
    assert torch.allclose(normalize_latents(denormalize_latents(latents, mean, std), mean, std), latents, atol=1e-5)
    assert normalize_latents(mean[None, :, :5, None, None].expand(1, 16, 5, 2, 3), mean, std).abs().max() < 1e-6


def test_statistics_come_from_config_channel_major(vae_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    mean, std = latent_statistics(vae)
    assert mean.shape == std.shape == (16, 16)
    assert mean[1, 0].item() == pytest.approx(0.1 * (16 % 7))  # flat index c*16 + t
    assert std[0, 3].item() == pytest.approx(0.5 + 0.01 * 3)


def test_encode_then_decode_keeps_the_video_shape(vae_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    video = torch.rand(1, 3, 9, 32, 48) * 2 - 1
    latents = encode_video(vae, video)
    assert latents.shape == (1, 16, 2, 4, 6)
    assert decode_video(vae, latents).shape == (1, 3, 9, 32, 48)


def test_missing_tokenizer_folder_names_what_to_get(tmp_path):
    with pytest.raises(CheckpointError, match="Cosmos-Tokenize1-CV8x8x8-720p"):
        load_cosmos_tokenizer(tmp_path / "nope")
