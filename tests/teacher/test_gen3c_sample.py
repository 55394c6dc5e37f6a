"""The GEN3C sampler against a loop written from the spec's formulas (section 4), and its branch conditions."""

import math

import numpy as np
import pytest
import torch

from lyra.progress import Cancelled
from lyra.teacher.gen3c import chunk_ranges, encode_warped_frames, sample

B, T, H, W = 1, 3, 6, 8
SD = 0.5


class Spy(torch.nn.Module):
    """Wraps a transformer and records (hidden_states, timestep, text, condition_mask) of every call."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = []

    def forward(self, **kwargs):
        self.calls.append({k: (v.clone() if torch.is_tensor(v) else v) for k, v in kwargs.items()})
        return self.inner(**kwargs)


def inputs(seed=0, batch=B):
    g = torch.Generator().manual_seed(seed)
    return dict(
        condition_latent=torch.randn(batch, 16, T, H, W, generator=g),
        condition_pose=torch.randn(batch, 64, T, H, W, generator=g),
        text_embeds=torch.randn(batch, 5, 32, generator=g),
        negative_text_embeds=torch.randn(batch, 5, 32, generator=g),
        noise=torch.randn(batch, 16, T, H, W, generator=g),
    )


def karras_sigmas(num_steps):
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    lo, hi = 0.0002 ** (1 / 7), 80.0 ** (1 / 7)
    return torch.cat([((hi + ramp * (lo - hi)) ** 7).float(), torch.zeros(1)])


def reference_loop(net, *, condition_latent, condition_pose, text_embeds, negative_text_embeds, noise, guidance=1.0,
                   num_steps=35, a=0.001, euler_from_xt=False, fresh_noise=False):
    """Spec section 4 step by step with plain tensors (no diffusers scheduler)."""
    sigmas = karras_sigmas(num_steps)
    fixed = torch.from_numpy(np.random.RandomState(0).standard_normal(noise.shape).astype(np.float32))
    ind0 = torch.zeros(1, 1, T, 1, 1)
    ind0[:, :, 0] = 1
    mask = ind0.expand(noise.shape[0], 1, T, H, W)
    xt = noise * math.sqrt(80.0**2 + 1)
    for i in range(num_steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        ind = torch.zeros_like(ind0) if a >= sigma else ind0
        n = torch.randn_like(fixed) if fresh_noise else fixed
        aug = (condition_latent + a * n) / math.sqrt(a**2 + SD**2) * torch.sqrt(sigma**2 + SD**2)
        new = ind * aug + (1 - ind) * xt
        x_in = new / torch.sqrt(sigma**2 + SD**2)
        t = (0.25 * torch.log(sigma)).reshape(1).expand(noise.shape[0])
        call = dict(hidden_states=x_in, timestep=t, fps=24, padding_mask=torch.zeros(1, 1, 8 * H, 8 * W), return_dict=False)
        f_c = net(encoder_hidden_states=text_embeds, condition_mask=torch.cat([mask, condition_pose], 1), **call)[0]
        f_u = net(encoder_hidden_states=negative_text_embeds, condition_mask=torch.cat([mask, 0 * condition_pose], 1), **call)[0]
        f = f_c + guidance * (f_c - f_u)
        c_skip = SD**2 / (sigma**2 + SD**2)
        c_out = sigma * SD / torch.sqrt(sigma**2 + SD**2)
        f = ind * (condition_latent - c_skip * new) / c_out + (1 - ind) * f
        x0 = c_skip * new + c_out * f
        start = xt if euler_from_xt else new
        xt = start + (new - x0) / sigma * (sigma_next - sigma)
    return xt


@pytest.mark.parametrize("num_steps,guidance", [(8, 1.0), (35, 2.5)])
def test_sample_matches_the_spec_loop(tiny_transformer, num_steps, guidance):
    args = inputs()
    ours = sample(tiny_transformer, guidance=guidance, num_steps=num_steps, **args)
    ref = reference_loop(tiny_transformer, guidance=guidance, num_steps=num_steps, **args)
    assert ours.shape == (B, 16, T, H, W) and ours.dtype == torch.float32
    assert (ours - ref).abs().max() < 2e-5  # float32 round-off only (measured ~3e-6 on values ~6)
    # The usual mistakes are far off (so this comparison can fail).
    assert (ours - reference_loop(tiny_transformer, num_steps=num_steps, guidance=guidance, euler_from_xt=True, **args)).abs().max() > 1e-3
    torch.manual_seed(0)
    assert (ours - reference_loop(tiny_transformer, num_steps=num_steps, guidance=guidance, fresh_noise=True, **args)).abs().max() > 1e-3


def test_sample_is_deterministic_and_depends_on_the_noise_and_seed(tiny_transformer):
    args = inputs(seed=1, batch=2)
    first = sample(tiny_transformer, num_steps=6, **args)
    assert torch.equal(first, sample(tiny_transformer, num_steps=6, **args))
    assert not torch.equal(first, sample(tiny_transformer, num_steps=6, augment_seed=1, **args))
    other = dict(args, noise=torch.randn_like(args["noise"]))
    assert (first - sample(tiny_transformer, num_steps=6, **other)).abs().max() > 1e-2


def test_guidance_uses_raw_outputs_and_the_uncond_branch_gets_zero_pose_and_negative_text(tiny_transformer):
    spy = Spy(tiny_transformer)
    args = inputs(seed=2)
    sample(spy, num_steps=4, guidance=3.0, **args)
    assert len(spy.calls) == 8
    for cond, uncond in zip(spy.calls[0::2], spy.calls[1::2], strict=True):
        assert torch.equal(cond["hidden_states"], uncond["hidden_states"])  # same input for both branches
        assert torch.equal(cond["condition_mask"][:, 1:], args["condition_pose"])
        assert torch.count_nonzero(uncond["condition_mask"][:, 1:]) == 0
        for call in (cond, uncond):  # the indicator channel: 1 on latent frame 0 only, every step
            assert torch.equal(call["condition_mask"][:, 0, 0], torch.ones(B, H, W))
            assert torch.count_nonzero(call["condition_mask"][:, 0, 1:]) == 0
        assert torch.equal(cond["encoder_hidden_states"], args["text_embeds"])
        assert torch.equal(uncond["encoder_hidden_states"], args["negative_text_embeds"])
        assert cond["fps"] == 24 and cond["timestep"].shape == (B,)
    # guidance 0 equals the conditional branch alone, whatever the negative prompt is
    g0 = sample(tiny_transformer, num_steps=4, guidance=0.0, **args)
    other = dict(args, negative_text_embeds=torch.randn_like(args["negative_text_embeds"]))
    assert torch.equal(g0, sample(tiny_transformer, num_steps=4, guidance=0.0, **other))
    assert not torch.equal(g0, sample(tiny_transformer, num_steps=4, guidance=1.0, **other))


def test_last_steps_drop_the_condition_indicator(tiny_transformer):
    spy = Spy(tiny_transformer)
    args = inputs(seed=3)
    sample(spy, num_steps=35, **args)
    sigmas = karras_sigmas(35)
    fixed = torch.from_numpy(np.random.RandomState(0).standard_normal(args["noise"].shape).astype(np.float32))
    for i, call in enumerate(spy.calls[0::2]):
        sigma = sigmas[i]
        frame0 = call["hidden_states"][:, :, 0] * torch.sqrt(sigma**2 + SD**2)  # unscaled network input at frame 0
        augmented = ((args["condition_latent"] + 0.001 * fixed) / math.sqrt(0.001**2 + SD**2) * torch.sqrt(sigma**2 + SD**2))[:, :, 0]
        if sigma > 0.001:
            assert torch.allclose(frame0, augmented, atol=1e-5), i
        else:  # the final two steps (sigma ~5.5e-4 and 2e-4) take frame 0 from the sample itself
            assert i >= 33
            assert not torch.allclose(frame0, augmented, atol=1e-3)
    assert sum(1 for s in sigmas[:-1] if s <= 0.001) == 2


def test_progress_per_step_and_cancel(tiny_transformer):
    seen = []
    sample(tiny_transformer, num_steps=3, progress=lambda f, text: seen.append((f, text)), **inputs())
    assert [round(f, 4) for f, _ in seen] == [0.3333, 0.6667, 1.0] and "step 3/3" in seen[-1][1]

    def cancel(fraction, text):
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        sample(tiny_transformer, num_steps=3, progress=cancel, **inputs())


def test_encode_warped_frames_order_and_missing_buffers():
    calls = []

    def encode(video):  # [B, 3, F, H, W] -> a "latent" that remembers its input: mean over F into 16 channels
        calls.append(video.clone())
        return video.mean(dim=2, keepdim=True).repeat(1, 6, 1, 1, 1)[:, :16]

    images = torch.rand(1, 9, 2, 3, 4, 4) * 2 - 1
    masks = (torch.rand(1, 9, 2, 1, 4, 4) > 0.5).float()
    pose = encode_warped_frames(encode, images, masks)
    assert pose.shape == (1, 64, 1, 4, 4) and len(calls) == 4
    assert torch.equal(calls[0], images[:, :, 0].permute(0, 2, 1, 3, 4))
    assert torch.equal(calls[1], (masks[:, :, 0] * 2 - 1).repeat(1, 1, 3, 1, 1).permute(0, 2, 1, 3, 4))
    assert torch.equal(calls[2], images[:, :, 1].permute(0, 2, 1, 3, 4))
    one = encode_warped_frames(encode, images[:, :, :1], masks[:, :, :1])
    assert torch.equal(one[:, :32], pose[:, :32]) and torch.count_nonzero(one[:, 32:]) == 0
    with pytest.raises(Exception, match="1..2 cache buffers"):
        encode_warped_frames(encode, images.repeat(1, 1, 2, 1, 1, 1), masks.repeat(1, 1, 2, 1, 1, 1))


def test_chunk_ranges_overlap_by_one_frame():
    assert chunk_ranges(121) == [(0, 121)]
    assert chunk_ranges(361) == [(0, 121), (120, 241), (240, 361)]
    with pytest.raises(Exception, match="120k\\+1"):
        chunk_ranges(100)


def test_schedule_is_the_float32_karras_ramp_ending_at_zero():
    from lyra.teacher.gen3c import make_scheduler

    scheduler = make_scheduler(35)
    ramp = np.linspace(0, 1, 35, dtype=np.float32)
    expected = (np.float32(80 ** (1 / 7)) + ramp * np.float32(0.0002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert scheduler.sigmas.dtype == torch.float32 and len(scheduler.sigmas) == 36
    np.testing.assert_allclose(scheduler.sigmas[:-1].numpy(), expected, rtol=1e-6)
    assert scheduler.sigmas[0] == pytest.approx(80.0, rel=1e-6) and scheduler.sigmas[-1] == 0
    np.testing.assert_allclose(scheduler.timesteps.numpy(), 0.25 * np.log(expected), rtol=1e-5, atol=1e-6)
