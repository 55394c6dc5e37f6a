"""``lyra generate --backend lyra`` with every model taken from the registry (tiny random ones saved to disk)."""

import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "teacher"))
from teacher_tiny import random_transformer  # noqa: E402

from lyra.cli import main  # noqa: E402
from lyra.pipeline.sdg import read_trajectory  # noqa: E402
from lyra.scene import load  # noqa: E402


@pytest.mark.slow
def test_lyra_backend_from_the_registry_resumes_from_its_work_folder(tmp_path, vae_dir, static_checkpoint_dir, monkeypatch):
    import imageio.v3 as iio

    random_transformer(seed=2).save_pretrained(tmp_path / "gen3c")
    registry = tmp_path / "models.yaml"
    registry.write_text(
        f"gen3c:\n  path: {tmp_path / 'gen3c'}\n  file: config.json\n"
        f"tokenizer:\n  path: {vae_dir}\n  subfolder: null\n"
        f"decoder_static:\n  path: {static_checkpoint_dir}\n  file: config.yaml\n"
    )
    monkeypatch.setenv("LYRA_MODELS", str(registry))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # t5 missing: zero text embeddings
    rng = np.random.default_rng(1)
    iio.imwrite(tmp_path / "photo.png", rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    np.save(tmp_path / "depth.npy", np.full((32, 48), 2.0, np.float32))
    out = tmp_path / "scene.ply"
    args = ["generate", str(tmp_path / "photo.png"), "--backend", "lyra", "--depth", str(tmp_path / "depth.npy"),
            "--trajectories", "left", "--steps", "1", "--size", "48x32", "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(args) == 0
    scene = load(out)
    assert len(scene) > 0 and torch.isfinite(scene.means).all()
    work = tmp_path / "scene.ply.work"
    assert read_trajectory(work / "sdg" / "0").latents.shape == (16, 16, 4, 6)
    # A second run finds every stage on disk and regenerates nothing.
    stamp = (work / "sdg" / "0" / "stage.json").stat().st_mtime_ns
    os.remove(out)
    assert main(args) == 0
    assert (work / "sdg" / "0" / "stage.json").stat().st_mtime_ns == stamp
    assert torch.equal(load(out).means, scene.means)


@pytest.mark.slow
def test_lyra_backend_turns_a_vipe_video_into_a_sequence_at_the_chosen_times(
    tmp_path, vae_dir, dynamic_checkpoint_dir, monkeypatch
):
    import imageio.v3 as iio

    from lyra.pipeline.sdg import write_depth_zip
    from lyra.scene import GaussianSequence

    random_transformer(seed=2).save_pretrained(tmp_path / "gen3c")
    registry = tmp_path / "models.yaml"
    registry.write_text(
        f"gen3c:\n  path: {tmp_path / 'gen3c'}\n  file: config.json\n"
        f"tokenizer:\n  path: {vae_dir}\n  subfolder: null\n"
        f"decoder_dynamic:\n  path: {dynamic_checkpoint_dir}\n  file: config.yaml\n"
    )
    monkeypatch.setenv("LYRA_MODELS", str(registry))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    count, folder = 121, tmp_path / "vipe"
    for sub in ("rgb", "depth", "pose", "intrinsics"):
        (folder / sub).mkdir(parents=True)
    rng = np.random.default_rng(1)
    iio.imwrite(folder / "rgb" / "clip.mp4", rng.integers(0, 256, (count, 32, 48, 3), dtype=np.uint8), fps=24,
                codec="libx264", macro_block_size=1)
    write_depth_zip(folder / "depth" / "clip.zip", np.full((count, 32, 48), 2.0, np.float32))
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, 0, 3] = np.linspace(0.0, 0.5, count)
    np.savez(folder / "pose" / "clip.npz", data=poses, inds=np.arange(count))
    np.savez(folder / "intrinsics" / "clip.npz", data=np.tile([40.0, 40.0, 24.0, 16.0], (count, 1)), inds=np.arange(count))
    out = tmp_path / "clip"
    args = ["generate", str(folder), "--dynamic", "--backend", "lyra", "--trajectories", "left", "--steps", "1",
            "--size", "48x32", "--times", "0:121:60", "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(args) == 0
    sequence = load(out)
    assert isinstance(sequence, GaussianSequence) and len(sequence) == 3  # frames 0, 60, 120
    assert all(len(frame) > 0 and torch.isfinite(frame.means).all() for frame in sequence.frames)
    assert read_trajectory(tmp_path / "clip.work" / "sdg" / "0").latents.shape == (16, 16, 4, 6)
