"""Shared fixtures: tiny random decoders and Cosmos tokenizer, a synthetic SDG scene in the official layout."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from lyra.model import LyraDecoder, LyraDecoderConfig
from lyra.model.checkpoint import save_decoder

LATENT_T, LATENT_H, LATENT_W = 2, 4, 6
NUM_FRAMES = 8 * (LATENT_T - 1) + 1  # 9


def tiny_config(kind: str, **overrides) -> LyraDecoderConfig:
    fields = dict(
        enc_depth=2,
        llrm_7m1t_index=2,  # block 1 is the Transformer
        enc_embed_dim=32,
        enc_num_heads=2,
        mamba_d_state=8,
        mamba_headdim=16,
        mamba_chunk_size=16,
        gaussians_prune_ratio=0.0,
    )
    fields.update(overrides)
    return dataclasses.replace(LyraDecoderConfig.official(kind), **fields)


def tiny_decoder(kind: str, seed: int = 0) -> LyraDecoder:
    torch.manual_seed(seed)
    model = LyraDecoder(tiny_config(kind)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope="session")
def vae_dir(tmp_path_factory):
    from diffusers import AutoencoderKLCosmos

    torch.manual_seed(0)
    vae = AutoencoderKLCosmos(
        encoder_block_out_channels=(8, 8, 8, 8),
        decode_block_out_channels=(8, 8, 8, 8),
        attention_resolutions=(),
        num_layers=1,
        resolution=64,
        latents_mean=[0.1 * (i % 7) for i in range(256)],
        latents_std=[0.5 + 0.01 * (i % 5) for i in range(256)],
    )
    folder = tmp_path_factory.mktemp("vae")
    vae.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def static_checkpoint_dir(tmp_path_factory):
    return save_decoder(tiny_decoder("static"), tmp_path_factory.mktemp("ckpt") / "static")


@pytest.fixture(scope="session")
def dynamic_deepspeed_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny_lyra_dynamic.pt"
    torch.save({"module": tiny_decoder("dynamic", seed=1).state_dict(), "global_steps": 7}, path)
    return path


def look_at_poses(num_frames: int, shift: float) -> np.ndarray:
    poses = np.tile(np.eye(4), (num_frames, 1, 1))
    for f in range(num_frames):
        angle = 0.05 * f + shift
        poses[f, :3, :3] = np.array(
            [[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]]
        )
        poses[f, :3, 3] = [0.1 * f + shift, 0.05 * shift, 0.02 * f]
    return poses


def write_trajectory(folder, seed: int, *, as_numpy: bool, name: str = "scene", num_frames: int = NUM_FRAMES):
    rng = np.random.default_rng(seed)
    for sub in ("latent", "pose", "intrinsics"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    latents = rng.standard_normal((1, 16, LATENT_T, LATENT_H, LATENT_W)).astype(np.float32)
    torch.save(latents if as_numpy else torch.from_numpy(latents), folder / "latent" / f"{name}.pkl")
    np.savez(folder / "pose" / f"{name}.npz", data=look_at_poses(num_frames, 0.3 * seed), inds=np.arange(num_frames))
    intr = np.tile([[40.0, 42.0, 24.0, 16.0]], (num_frames, 1))
    np.savez(folder / "intrinsics" / f"{name}.npz", data=intr, inds=np.arange(num_frames))
    return latents


@pytest.fixture
def scene_dir(tmp_path):
    scene = tmp_path / "diffusion_output"
    write_trajectory(scene / "0", 0, as_numpy=True)
    write_trajectory(scene / "1", 1, as_numpy=False)
    return scene


@pytest.fixture
def make_tiny_decoder():
    return tiny_decoder


@pytest.fixture
def make_trajectory():
    return write_trajectory


@pytest.fixture
def make_tiny_config():
    return tiny_config


@pytest.fixture(scope="session")
def dynamic_checkpoint_dir(tmp_path_factory):
    return save_decoder(tiny_decoder("dynamic", seed=1), tmp_path_factory.mktemp("ckpt") / "dynamic")


@pytest.fixture(scope="module")
def server():
    """A real viser server on a free loopback port, shared by one test module."""
    import viser

    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    yield server
    server.stop()
