"""The Lyra pipeline with the real GEN3C teacher class (tiny random transformer and tokenizer) and a tiny decoder."""

import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "teacher"))
from teacher_tiny import random_transformer  # noqa: E402

from lyra.model.checkpoint import load_decoder  # noqa: E402
from lyra.model.tokenizer import load_cosmos_tokenizer  # noqa: E402
from lyra.pipeline.generate import generate_scene, trajectory_cameras  # noqa: E402
from lyra.pipeline.inputs import Frames  # noqa: E402
from lyra.pipeline.request import GenerateRequest  # noqa: E402
from lyra.pipeline.sdg import read_trajectory  # noqa: E402
from lyra.scene import GaussianSequence  # noqa: E402
from lyra.teacher.teacher import Gen3CSettings, Gen3CTeacher  # noqa: E402

H, W = 32, 48


@pytest.mark.slow
def test_image_through_gen3c_to_the_sdg_folder_and_the_decoder(tmp_path, vae_dir, static_checkpoint_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    teacher = Gen3CTeacher(random_transformer(), vae, settings=Gen3CSettings(height=H, width=W, num_steps=2))
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.integers(0, 256, (1, 48, 72, 3), dtype=np.uint8))
    depth = np.full((48, 72), 1.5, np.float32) + np.linspace(0, 0.1, 72, dtype=np.float32)
    np.save(tmp_path / "depth.npy", depth)
    settings = GenerateRequest(input="photo.png", backend="lyra", trajectories=["left"], size=(W, H), num_frames=121,
                               steps=2, prune_ratio=0.0, depth=str(tmp_path / "depth.npy"))
    progress = []
    scene = generate_scene(
        Frames(image), settings, work_dir=tmp_path / "work", teacher=teacher, decoder=load_decoder(static_checkpoint_dir),
        tokenizer=vae, intrinsics=[60.0, 60.0, 36.0, 24.0],
        progress=lambda f, t: progress.append(t),
    )
    trajectory = read_trajectory(tmp_path / "work" / "sdg" / "0", rgb=True, depth=True)
    assert trajectory.latents.shape == (16, 16, H // 8, W // 8)  # 121 frames -> 16 latent frames
    assert trajectory.frames.shape == (121, H, W, 3)
    assert len(scene) == 121 * (H // 8) * (W // 8) and torch.isfinite(scene.means).all()
    assert any("trajectory 1/1 (left)" in t and "chunk 1/1" in t for t in progress)  # the teacher's own stages


@pytest.mark.slow
def test_video_through_gen3c_video_mode_to_the_dynamic_decoder_at_the_target_times(
    tmp_path, vae_dir, dynamic_checkpoint_dir
):
    vae = load_cosmos_tokenizer(vae_dir)
    teacher = Gen3CTeacher(random_transformer(), vae, settings=Gen3CSettings(height=H, width=W, num_steps=2))
    count = 121
    rng = np.random.default_rng(1)
    video = torch.from_numpy(rng.integers(0, 256, (count, H, W, 3), dtype=np.uint8))
    poses = torch.eye(4).repeat(count, 1, 1)
    poses[:, 0, 3] = torch.linspace(0.0, 0.4, count)  # the video's camera pans right
    k = torch.tensor([40.0, 40.0, 24.0, 16.0])
    frames = Frames(video, 24.0, torch.full((count, H, W), 3.0), poses, k.expand(count, 4).clone())
    settings = GenerateRequest(input="clip.mp4", backend="lyra", trajectories=["left"], size=(W, H), num_frames=count,
                               steps=2, prune_ratio=0.0, times=[0, 60, 120])
    result = generate_scene(frames, settings, work_dir=tmp_path / "work", teacher=teacher,
                            decoder=load_decoder(dynamic_checkpoint_dir), tokenizer=vae)
    assert isinstance(result, GaussianSequence) and len(result) == 3
    assert result.times == pytest.approx([0.0, 60 / 24, 120 / 24])
    assert all(len(frame) > 0 and torch.isfinite(frame.means).all() for frame in result.frames)
    written = read_trajectory(tmp_path / "work" / "sdg" / "0", rgb=True, depth=True)
    preset = trajectory_cameras("left", settings, k, center_depth=3.0)
    assert torch.allclose(written.c2w, poses @ preset.c2w, atol=1e-5)  # camera t placed relative to frame t
    assert written.latents.shape == (16, 16, H // 8, W // 8) and written.frames.shape == (count, H, W, 3)
