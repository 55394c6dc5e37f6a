"""A tiny synthetic SDG data root (made once per session) and a matching tiny training config."""

import os

import pytest

from lyra.distill.config import config_from_dict


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    import torch

    from lyra.distill.make_data import make_synthetic_data

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("sdg")
    return make_synthetic_data(
        root, train_scenes=3, eval_scenes=1, width=48, height=32, latent_frames=2,
        trajectories=("left", "right", "zoom_in"), seed=7, rank=0, world=1,
    )


def tiny_train_config(root, **overrides) -> "object":
    raw = {
        "name": "test",
        "seed": 3,
        "model": {
            "enc_depth": 2, "llrm_7m1t_index": 2, "enc_embed_dim": 32, "enc_num_heads": 2, "mamba_d_state": 8,
            "mamba_headdim": 16, "mamba_chunk_size": 16, "dfar": 8.0, "gaussians_prune_ratio": 0.0,
        },
        "data": {"root": str(root)},
        "optim": {"lr": 0.002, "warmup_steps": 2},
        "loss": {"lpips": 0.0},
        "eval": {"every": 1000, "scenes": 1, "targets": 2},
        "stages": [{"steps_to": 40, "resolution": [16, 24], "frames": 9, "views": 1, "targets": 2}],
        "checkpoint_every": 1000,
        "threads": 1,
    }
    for key, value in overrides.items():
        raw[key] = value
    return config_from_dict(raw)


@pytest.fixture
def make_config():
    return tiny_train_config


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setitem(os.environ, "WORLD_SIZE", "1")
    monkeypatch.setitem(os.environ, "RANK", "0")
