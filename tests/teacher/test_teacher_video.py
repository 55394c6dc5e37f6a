"""Gen3CTeacher's video mode (4D): output frame t is warped from source frame t, conditioned on source frame 0."""

import pytest
import torch
import torch.nn.functional as F
from teacher_tiny import random_transformer

import lyra.teacher.teacher as teacher_module
from lyra.errors import InputDataError
from lyra.render.camera import Camera
from lyra.teacher.teacher import Gen3CSettings, Gen3CTeacher

H, W = 32, 48  # generation size: latents 4 x 6
SRC_H, SRC_W = 24, 36
K = torch.tensor([30.0, 30.0, 18.0, 12.0])
COUNT = 121


def colour(t: int) -> torch.Tensor:  # uint8 [3], different for every frame
    return torch.tensor([2 * t, 255 - 2 * t, (7 * t) % 256], dtype=torch.uint8)


def video_inputs():
    frames = torch.stack([colour(t).expand(SRC_H, SRC_W, 3) for t in range(COUNT)])  # [F, H, W, 3] flat colours
    depth = 1.5 + 0.002 * torch.arange(SRC_W, dtype=torch.float32).expand(COUNT, SRC_H, SRC_W)  # smooth: reliable
    c2w = torch.eye(4).repeat(COUNT, 1, 1)
    c2w[:, 0, 3] = torch.linspace(0.0, 0.6, COUNT)  # the source camera pans right by 60 cm
    return frames, depth, K.expand(COUNT, 4).clone(), c2w


class Spy:
    def __init__(self, real):
        self.real, self.calls = real, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.real(*args, **kwargs)


def test_frame_t_is_warped_from_source_frame_t_and_conditioned_on_frame_0(monkeypatch, tiny_vae):
    warped = Spy(teacher_module.encode_warped_frames)
    sampled = Spy(teacher_module.sample)
    monkeypatch.setattr(teacher_module, "encode_warped_frames", warped)
    monkeypatch.setattr(teacher_module, "sample", sampled)
    teacher = Gen3CTeacher(random_transformer(), tiny_vae, settings=Gen3CSettings(height=H, width=W, num_steps=2))
    frames, depth, ks, c2w = video_inputs()
    # Trajectory camera t = source camera t: each warp is the identity when (and only when) frame t's pose is used.
    camera = Camera(c2w.clone(), ks, SRC_W, SRC_H)
    out = teacher.generate_video(frames, [camera], depth=depth, intrinsics=ks, c2w=c2w, names=["left"])

    (_, images, masks), call = warped.calls[0]
    assert images.shape == (1, COUNT, 1, 3, H, W) and call["buffer_max"] == 2  # one buffer per frame
    for t in (0, 1, 60, 120):
        hit = masks[0, t, 0, 0] > 0
        assert hit.float().mean() > 0.95, t  # a wrong source pose would shift the warp off by up to 16 pixels
        expected = colour(t).float() / 255 * 2 - 1  # the cache's normalisation
        assert torch.allclose(images[0, t, 0][:, hit], expected[:, None].expand(3, int(hit.sum())), atol=1e-4), t
    resized = F.interpolate(depth[120][None, None], size=(H, W), mode="bilinear", align_corners=False)[0, 0]
    hit = masks[0, 120, 0, 0] > 0
    assert torch.allclose(out.trajectories[0].depth[120][hit], resized[hit], atol=0.01)

    sampler = sampled.calls[0][1]
    assert torch.count_nonzero(sampler["condition_pose"][:, 32:]) == 0  # the missing second buffer: zero latents
    clip = torch.zeros(1, 3, COUNT, H, W)
    clip[:, :, 0] = F.interpolate(frames[0].permute(2, 0, 1)[None].float() / 128.0 - 1.0, size=(H, W), mode="bicubic",
                                  antialias=True)[0]
    assert torch.allclose(sampler["condition_latent"], teacher.tokenizer.encode(clip), atol=1e-5)  # source frame 0
    result = out.trajectories[0]
    assert result.name == "left" and result.frames.shape == (COUNT, H, W, 3) and result.latents.shape == (16, 16, 4, 6)
    assert torch.allclose(result.camera.intrinsics[0], torch.tensor([30 * W / SRC_W, 30 * H / SRC_H, 24.0, 16.0]))


def test_video_mode_refuses_trajectories_that_do_not_match_the_frames(tiny_vae):
    teacher = Gen3CTeacher(random_transformer(), tiny_vae, settings=Gen3CSettings(height=H, width=W, num_steps=2))
    frames, depth, ks, c2w = video_inputs()
    short = Camera(c2w[:9].clone(), ks[:9], SRC_W, SRC_H)
    with pytest.raises(InputDataError, match="one per video frame"):
        teacher.generate_video(frames, [short], depth=depth, intrinsics=ks, c2w=c2w)
    with pytest.raises(InputDataError, match="depth"):
        teacher.generate_video(frames, [short], depth=depth[:3], intrinsics=ks, c2w=c2w)
