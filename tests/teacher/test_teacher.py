"""Gen3CTeacher with tiny random models: what reaches the sampler, chunking, text, progress, and the SDG round trip."""

import subprocess
import sys

import pytest
import torch
from teacher_tiny import random_transformer, tiny_t5

import lyra.teacher.teacher as teacher_module
from lyra.errors import InputDataError
from lyra.progress import Cancelled
from lyra.render.trajectories import lyra_trajectory
from lyra.teacher.base import Teacher, TeacherOutput
from lyra.teacher.teacher import Gen3CSettings, Gen3CTeacher
from lyra.teacher.text import DEFAULT_NEGATIVE_PROMPT, T5TextEncoder, prompt_embeddings

H, W = 32, 48  # generation size: latents 4 x 6
SRC_H, SRC_W = 24, 36
K = torch.tensor([30.0, 30.0, 18.0, 12.0])


def make_teacher(vae, **settings):
    return Gen3CTeacher(random_transformer(), vae, settings=Gen3CSettings(height=H, width=W, num_steps=2, **settings))


def inputs(num_frames=121, names=("left", "up")):
    g = torch.Generator().manual_seed(0)
    image = (torch.rand(SRC_H, SRC_W, 3, generator=g) * 255).to(torch.uint8)
    depth = 1.5 + 0.002 * torch.arange(SRC_W, dtype=torch.float32).expand(SRC_H, SRC_W)  # smooth: reliable
    trajectories = [lyra_trajectory(n, num_frames, width=SRC_W, height=SRC_H, intrinsics=K) for n in names]
    return image, depth, trajectories


class SampleSpy:
    def __init__(self):
        self.calls = []
        self.real = teacher_module.sample

    def __call__(self, transformer, **kwargs):
        self.calls.append(kwargs)
        return self.real(transformer, **kwargs)


def test_teacher_satisfies_the_protocol_and_returns_every_trajectory(monkeypatch, tiny_vae):
    spy = SampleSpy()
    monkeypatch.setattr(teacher_module, "sample", spy)
    teacher = make_teacher(tiny_vae)
    assert isinstance(teacher, Teacher)
    image, depth, trajectories = inputs()
    out = teacher.generate(image, trajectories, depth=depth, intrinsics=K, names=["left", "up"])
    assert isinstance(out, TeacherOutput) and [t.name for t in out.trajectories] == ["left", "up"]
    for traj, camera in zip(out.trajectories, trajectories, strict=True):
        assert traj.frames.shape == (121, H, W, 3) and traj.frames.dtype == torch.uint8
        assert traj.latents.shape == (16, 16, 4, 6) and traj.latents.dtype == torch.float32
        assert torch.equal(traj.camera.c2w, camera.c2w)
        assert torch.allclose(traj.camera.intrinsics[0], torch.tensor([30 * W / SRC_W, 30 * H / SRC_H, 24.0, 16.0]))
        assert traj.depth.shape == (121, H, W) and (traj.depth[0] > 0).float().mean() > 0.5
    assert out.input_depth.shape == (H, W)
    # What the sampler got: the condition clip's latent, 64 pose channels with the missing buffer as zero
    # latents, zero text embeddings (no text encoder) and one unit-Gaussian noise per trajectory.
    call = spy.calls[0]
    assert call["condition_pose"].shape == (1, 64, 16, 4, 6)
    assert torch.count_nonzero(call["condition_pose"][:, 32:]) == 0
    assert torch.count_nonzero(call["text_embeds"]) == 0 and call["text_embeds"].shape == (1, 512, 32)
    clip = torch.zeros(1, 3, 121, H, W)
    clip[:, :, 0] = torch.nn.functional.interpolate(
        image.permute(2, 0, 1)[None].float() / 128.0 - 1.0, size=(H, W), mode="bicubic", antialias=True
    )[0]
    assert torch.allclose(call["condition_latent"], teacher.tokenizer.encode(clip), atol=1e-5)
    assert call["num_steps"] == 2 and call["guidance"] == 1.0 and call["fps"] == 24


def test_generation_is_deterministic_for_a_seed(tiny_vae):
    image, depth, trajectories = inputs(names=("right",))
    a = make_teacher(tiny_vae).generate(image, trajectories, depth=depth, intrinsics=K)
    b = make_teacher(tiny_vae).generate(image, trajectories, depth=depth, intrinsics=K)
    c = make_teacher(tiny_vae, seed=2).generate(image, trajectories, depth=depth, intrinsics=K)
    assert torch.equal(a.trajectories[0].latents, b.trajectories[0].latents)
    assert not torch.equal(a.trajectories[0].latents, c.trajectories[0].latents)


def test_long_trajectory_runs_in_overlapping_chunks_with_a_depth_estimator(monkeypatch, tiny_vae):
    spy = SampleSpy()
    monkeypatch.setattr(teacher_module, "sample", spy)
    image, depth, trajectories = inputs(num_frames=241, names=("zoom_out",))
    with pytest.raises(InputDataError, match="depth_estimator"):
        make_teacher(tiny_vae).generate(image, trajectories, depth=depth, intrinsics=K)
    seen = []
    teacher = make_teacher(tiny_vae)
    teacher.depth_estimator = lambda frame: seen.append(frame.clone()) or torch.full(frame.shape[:2], 1.5)
    out = teacher.generate(image, trajectories, depth=depth, intrinsics=K).trajectories[0]
    assert out.frames.shape[0] == 241 and out.latents.shape[1] == 31  # 16 + 15: F = 8 (T - 1) + 1
    assert len(seen) == 1 and seen[0].shape == (H, W, 3)
    second = spy.calls[-1]
    # chunk 2 is conditioned on chunk 1's last frame, and the cache now holds two buffers (both encoded)
    assert torch.count_nonzero(second["condition_pose"][:, 32:]) > 0
    assert torch.equal(out.frames[120], seen[0])


def test_progress_covers_each_trajectory_and_cancel_stops(monkeypatch, tiny_vae):
    image, depth, trajectories = inputs()
    events = []
    make_teacher(tiny_vae).generate(image, trajectories, depth=depth, intrinsics=K, progress=lambda f, t: events.append((f, t)))
    fractions = [f for f, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any("trajectory 1/2" in t and "denoising step" in t for _, t in events)
    assert any("trajectory 2/2" in t for _, t in events)

    def cancel(fraction, text):
        if "trajectory 2/2" in text:
            raise Cancelled("user cancelled")

    with pytest.raises(Cancelled):
        make_teacher(tiny_vae).generate(image, trajectories, depth=depth, intrinsics=K, progress=cancel)


def test_missing_depth_is_a_clear_error(tiny_vae):
    image, _, trajectories = inputs()
    with pytest.raises(InputDataError, match="depth"):
        make_teacher(tiny_vae).generate(image, trajectories, intrinsics=K)


def test_t5_embeddings_zero_past_the_prompt_and_negative_prompt_rules():
    tokenizer, model = tiny_t5()
    encoder = T5TextEncoder(tokenizer, model)
    emb = encoder.encode(["a red car"])
    assert emb.shape == (1, 512, 32)
    raw = model(input_ids=torch.tensor([[3, 4, 5, 1]])).last_hidden_state
    assert torch.allclose(emb[0, :4], raw[0], atol=1e-5)  # no padding in the way of the first 4 tokens
    assert torch.count_nonzero(emb[0, 4:]) == 0
    empty = encoder.encode([""])
    assert torch.count_nonzero(empty[0, 1:]) == 0 and torch.count_nonzero(empty[0, 0]) > 0  # "</s>" only
    positive, negative = prompt_embeddings(encoder, "a red car", DEFAULT_NEGATIVE_PROMPT, width=32)
    assert negative is not None and not torch.equal(positive, negative)
    assert prompt_embeddings(encoder, "a red car", "", width=32)[1] is None  # the uncond reuses the positive
    zeros = prompt_embeddings(None, "a red car", width=1024)
    assert zeros[0].shape == (1, 512, 1024) and torch.count_nonzero(zeros[0]) == torch.count_nonzero(zeros[1]) == 0


def test_text_encoder_runs_once_then_is_freed(monkeypatch, tiny_vae):
    spy = SampleSpy()
    monkeypatch.setattr(teacher_module, "sample", spy)
    tokenizer, model = tiny_t5()
    teacher = Gen3CTeacher(
        random_transformer(), tiny_vae, T5TextEncoder(tokenizer, model),
        settings=Gen3CSettings(height=H, width=W, num_steps=1, prompt="a red car"),
    )
    image, depth, trajectories = inputs()
    teacher.generate(image, trajectories, depth=depth, intrinsics=K)
    assert teacher.text_encoder is None
    first, second = spy.calls[0], spy.calls[1]
    assert torch.equal(first["text_embeds"], second["text_embeds"]) and torch.count_nonzero(first["text_embeds"]) > 0
    assert torch.count_nonzero(first["text_embeds"][0, 4:]) == 0


@pytest.mark.slow
def test_image_to_sdg_folder_to_lyra_decode_to_a_scene(tmp_path, tiny_vae, vae_dir, static_checkpoint_dir):
    from lyra.pipeline.sdg import read_trajectory
    from lyra.pipeline.teach import Unit, write_unit
    from lyra.scene import load

    teacher = Gen3CTeacher(random_transformer(), tiny_vae, settings=Gen3CSettings(height=H, width=W, num_steps=2))
    image, depth, trajectories = inputs()
    out = teacher.generate(image, trajectories, depth=depth, intrinsics=K, names=["0", "1"])
    scene = tmp_path / "sdg"
    for trajectory in out.trajectories:  # the one SDG writer: lyra.pipeline.teach
        write_unit(Unit(str(scene / trajectory.name), "scene", trajectory.name, "image", "k"), trajectory)
    back = read_trajectory(scene / "1", rgb=True, depth=True)
    assert torch.equal(back.latents, out.trajectories[1].latents)
    assert torch.allclose(back.c2w, out.trajectories[1].camera.c2w, atol=1e-6)
    assert back.frames.shape == (121, H, W, 3) and back.depth.shape == (121, H, W)
    assert torch.allclose(back.depth, out.trajectories[1].depth, rtol=1e-3, atol=1e-3)  # float16 EXR
    ply = tmp_path / "scene.ply"
    result = subprocess.run(
        [sys.executable, "-m", "lyra", "decode", str(scene), "--checkpoint", str(static_checkpoint_dir),
         "--vae", str(vae_dir), "--views", "0,1", "--out", str(ply)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    gaussians = load(ply)
    assert len(gaussians) > 0 and torch.isfinite(gaussians.means).all()


def test_load_from_the_registry_and_missing_models_name_what_to_get(tmp_path, monkeypatch, vae_dir):
    from lyra.model.registry import ModelNotFoundError
    from lyra.teacher.teacher import load_gen3c_teacher

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    user = tmp_path / "models.yaml"
    monkeypatch.setenv("LYRA_MODELS", str(user))
    with pytest.raises(ModelNotFoundError, match="nvidia/Gen3C-Cosmos-7B"):
        load_gen3c_teacher()
    random_transformer(seed=5).save_pretrained(tmp_path / "gen3c")
    tokenizer, model = tiny_t5()
    tokenizer.save_pretrained(tmp_path / "t5")
    model.save_pretrained(tmp_path / "t5")
    user.write_text(f"gen3c:\n  path: {tmp_path / 'gen3c'}\n  file: config.json\ntokenizer:\n  path: {vae_dir}\n  subfolder: null\n")
    with pytest.raises(ModelNotFoundError, match="google-t5/t5-11b"):
        load_gen3c_teacher()
    teacher = load_gen3c_teacher(text_encoder=False, settings=Gen3CSettings(height=H, width=W, num_steps=1))
    assert teacher.text_encoder is None
    assert torch.equal(teacher.transformer.proj_out.weight, random_transformer(seed=5).proj_out.weight)
    user.write_text(user.read_text() + f"t5:\n  path: {tmp_path / 't5'}\n")
    teacher = load_gen3c_teacher(settings=Gen3CSettings(height=H, width=W, num_steps=1, prompt="a red car"))
    assert teacher.text_encoder is not None and teacher.text_encoder.width == 32
