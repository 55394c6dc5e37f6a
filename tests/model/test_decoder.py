"""LyraDecoder: official structure, layouts, deconvolution frame mapping, activations, pruning."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lyra.model import LyraDecoder, LyraDecoderConfig, activate_gaussians, prune_by_opacity
from lyra.model.checkpoint import build_decoder

MANIFEST_DIR = Path(__file__).parent / "data"


def manifest(kind):
    return json.loads((MANIFEST_DIR / f"decoder_manifest_{kind}.json").read_text())


def reduced(kind, **overrides):
    base = dict(enc_depth=8, enc_embed_dim=128, enc_num_heads=2, gaussians_prune_ratio=0.0)
    base.update(overrides)
    return dataclasses.replace(LyraDecoderConfig.official(kind), **base)


def perturbed_model(cfg, seed=0):
    torch.manual_seed(seed)
    model = LyraDecoder(cfg).eval()
    with torch.no_grad():  # make constant-initialised tensors (zeros/ones) matter
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def random_inputs(B=1, V=2, T=3, H=6, W=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    t_out = 8 * T - 7
    return dict(
        images=torch.randn(B, V * T, 16, H, W, generator=g),
        plucker=torch.randn(B, V * T, 32, H, W, generator=g),
        rays_os=torch.randn(B, V * t_out, 3, H, W, generator=g),
        rays_ds=F.normalize(torch.randn(B, V * t_out, 3, H, W, generator=g), dim=2),
        time_embeddings=torch.randn(B, T + 1, 16, H, W, generator=g),
    )


def raw_args(inputs):
    return inputs["images"], inputs["plucker"], inputs["time_embeddings"]


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_official_config_matches_resolved_official_config(kind):
    resolved = manifest(kind)["model_config_resolved"]
    config = LyraDecoderConfig.official(kind)
    for field in dataclasses.fields(config):
        if field.name in resolved:
            expected = resolved[field.name]
            value = (
                list(getattr(config, field.name))
                if field.name == "patch_size_out_factor"
                else getattr(config, field.name)
            )
            assert value == expected, field.name
    mamba = manifest(kind)["derived"]["mamba"]
    assert (config.mamba_d_state, config.mamba_d_conv, config.mamba_expand) == (
        mamba["d_state"],
        mamba["d_conv"],
        mamba["expand"],
    )
    assert (config.mamba_headdim, config.mamba_nheads, config.mamba_chunk_size) == (
        mamba["headdim"],
        mamba["nheads"],
        mamba["chunk_size"],
    )


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_full_size_model_strictly_loads_manifest_shaped_state_dict(kind):
    entries = manifest(kind)["state_dict"]
    g = torch.Generator().manual_seed(0)
    state = {e["key"]: torch.randn(e["shape"], generator=g) for e in entries}
    model = build_decoder(LyraDecoderConfig.official(kind), state)
    loaded = model.state_dict()
    assert list(loaded) == [e["key"] for e in entries]  # registration order too
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert model.num_parameters == manifest(kind)["total_parameters"] == 32_753_996


def test_transformer_blocks_sit_at_official_indices():
    config = LyraDecoderConfig.official("static")
    assert [i for i in range(16) if config.is_transformer_block(i)] == [7, 15]


def test_deconv_output_shape_is_8t_minus_7_frames_at_latent_resolution():
    model = perturbed_model(reduced("static"))
    inputs = random_inputs(B=1, V=2, T=3)
    with torch.no_grad():
        raw = model.forward_raw(*raw_args(inputs), num_views=2)
    assert raw.shape == (2, 12, 17, 6, 10)
    assert model.config.num_output_frames(16) == 121


@pytest.mark.parametrize("latent_frame", [0, 1, 2])
def test_deconv_maps_latent_frame_t_to_output_frames_8t_minus_4_to_8t_plus_4(latent_frame):
    model = LyraDecoder(reduced("static", enc_embed_dim=8, enc_num_heads=2, mamba_headdim=4, mamba_d_state=4))
    conv = model.deconv
    with torch.no_grad():
        conv.bias.zero_()
        conv.weight.fill_(1.0)
        x = torch.zeros(1, 8, 3, 2, 2)
        x[0, :, latent_frame, 1, 0] = 1.0
        out = conv(x)
    touched_frames = torch.nonzero(out.abs().sum(dim=(0, 1, 3, 4))).flatten().tolist()
    expected = [tau for tau in range(17) if 0 <= tau - (8 * latent_frame - 4) <= 8]
    assert touched_frames == expected
    touched_pixels = torch.nonzero(out.abs().sum(dim=(0, 1, 2))).tolist()
    assert touched_pixels == [[2, 0], [2, 1], [3, 0], [3, 1]]  # token (y=1, x=0) paints its 2x2 block


def test_deconv_frame_between_latents_sums_tap_8_and_tap_0():
    model = LyraDecoder(reduced("static", enc_embed_dim=8, enc_num_heads=2, mamba_headdim=4, mamba_d_state=4))
    conv = model.deconv
    with torch.no_grad():
        conv.bias.zero_()
        conv.weight.zero_()
        conv.weight[0, 0, 8] = 2.0  # tap 8 (from latent t)
        conv.weight[0, 0, 0] = 3.0  # tap 0 (from latent t+1)
        x = torch.zeros(1, 8, 2, 1, 1)
        x[0, 0] = 1.0
        out = conv(x)[0, 0, :, 0, 0]
    assert out.tolist() == [0, 0, 0, 0, 5, 0, 0, 0, 0]


def test_activations_follow_official_formulas():
    config = LyraDecoderConfig.official("static")
    raw = torch.tensor(
        [
            [1.65, 0.0, 10.0, -10.0, 1.0, 5.0, -3.0, 3.0, 0.0, 4.0, 0.0, 2.0],
            [-100.0, 0.5, 0.5, 0.5, 1.0 - math.log(2), 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, -1.0],
        ]
    )
    origins = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    packed = activate_gaussians(raw, origins, dirs, config)
    assert packed.shape == (2, 14)
    # position: sigmoid(1.65 - 1.65) = 0.5 -> depth 250.05 along +z; -100 -> dnear 0.1 along +x
    assert torch.allclose(packed[0, :3], torch.tensor([1.0, 2.0, 3.0 + 250.05]))
    assert torch.allclose(packed[1, :3], torch.tensor([0.1, 0.0, 0.0]), atol=1e-6)
    # opacity sigmoid(a - 2)
    assert torch.allclose(packed[:, 3], torch.sigmoid(torch.tensor([0.0, -3.0])))
    # scale min(0.3 e^(s - 1), 0.3)
    assert torch.allclose(packed[0, 4:7], torch.tensor([0.3, 0.3, 0.3 * math.exp(-4.0)]))
    assert torch.allclose(packed[1, 4:7], torch.tensor([0.15, 0.3, 0.3]))
    # quaternion normalised, order kept
    assert torch.allclose(packed[0, 7:11], torch.tensor([0.6, 0.0, 0.8, 0.0]))
    assert torch.allclose(packed[1, 7:11], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    # rgb 0.5 tanh + 0.5
    assert torch.allclose(packed[0, 11:14], 0.5 * torch.tanh(torch.tensor([0.0, 10.0, -10.0])) + 0.5)


def test_forward_gaussians_packs_views_frames_rows_columns_in_official_order():
    model = perturbed_model(reduced("dynamic"))
    inputs = random_inputs(B=2, V=2, T=2, H=4, W=6)
    with torch.no_grad():
        raw = model.forward_raw(*raw_args(inputs), num_views=2)  # [B*V, 12, T_out, H, W]
        packed = model.forward_gaussians(**inputs, num_views=2)
    B, V, t_out, H, W = 2, 2, 9, 4, 6
    raw_tokens = raw.reshape(B, V, 12, t_out, H, W).permute(0, 1, 3, 4, 5, 2).reshape(B, -1, 12)

    def rays(r):
        return r.reshape(B, V, t_out, 3, H, W).permute(0, 1, 2, 4, 5, 3).reshape(B, -1, 3)

    expected = activate_gaussians(raw_tokens, rays(inputs["rays_os"]), rays(inputs["rays_ds"]), model.config)
    assert packed.shape == (B, V * t_out * H * W, 14)
    assert torch.allclose(packed, expected, atol=1e-6)


def test_all_views_form_one_view_major_token_sequence():
    model = perturbed_model(reduced("static"))
    inputs = random_inputs(B=1, V=2, T=2, H=4, W=4)
    seen = {}
    model.enc_blocks[0].register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0]))
    with torch.no_grad():
        model.forward_raw(*raw_args(inputs), num_views=2)
        images = inputs["images"].reshape(2, 2, 16, 4, 4)
        plucker = inputs["plucker"].reshape(2, 2, 32, 4, 4)
        per_view = model.patch_embed(images) + model.patch_plucker_embed(plucker)  # [V, T*h*w, E]
    assert seen["x"].shape == (1, 2 * 2 * 2 * 2, 128)
    assert torch.allclose(seen["x"][0], per_view.reshape(-1, 128), atol=1e-6)


def test_batch_elements_are_decoded_independently():
    model = perturbed_model(reduced("dynamic"))
    inputs = random_inputs(B=2, V=2, T=2, H=4, W=4)
    with torch.no_grad():
        both = model.forward_raw(*raw_args(inputs), num_views=2)
        second = model.forward_raw(*(t[1:] for t in raw_args(inputs)), num_views=2)
    assert torch.allclose(both[2:], second, atol=1e-5)


def test_static_model_ignores_time_embeddings():
    model = perturbed_model(reduced("static"))
    inputs = random_inputs()
    with torch.no_grad():
        with_time = model.forward_raw(*raw_args(inputs), num_views=2)
        without = model.forward_raw(inputs["images"], inputs["plucker"], None, num_views=2)
    assert torch.equal(with_time, without)


def test_dynamic_model_output_depends_on_target_time_latent():
    model = perturbed_model(reduced("dynamic"))
    inputs = random_inputs(T=3)
    other = inputs["time_embeddings"].clone()
    other[:, 3] += 1.0
    with torch.no_grad():
        a = model.forward_raw(*raw_args(inputs), num_views=2)
        b = model.forward_raw(inputs["images"], inputs["plucker"], other, num_views=2)
    assert (a - b).abs().max() > 1e-4


def test_dynamic_model_requires_time_embeddings():
    model = perturbed_model(reduced("dynamic"))
    inputs = random_inputs()
    with pytest.raises(ValueError, match="time_embeddings"):
        model.forward_raw(inputs["images"], inputs["plucker"], None, num_views=2)


def test_mismatched_plucker_shape_is_rejected():
    model = perturbed_model(reduced("static"))
    inputs = random_inputs()
    with pytest.raises(ValueError, match="plucker must be"):
        model.forward_raw(inputs["images"], inputs["plucker"][:, :, :16], None, num_views=2)


def test_pruning_keeps_most_opaque_fraction_in_descending_order():
    packed = torch.zeros(2, 10, 14)
    packed[0, :, 3] = torch.tensor([0.1, 0.9, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])
    packed[1, :, 3] = torch.linspace(0, 1, 10)
    packed[..., 0] = torch.arange(10.0)  # identity marker
    kept = prune_by_opacity(packed, 0.5)
    assert kept.shape == (2, 5, 14)
    assert kept[0, :, 0].tolist() == [1.0, 6.0, 4.0, 8.0, 2.0]
    assert kept[1, :, 0].tolist() == [9.0, 8.0, 7.0, 6.0, 5.0]


def test_pruning_count_uses_official_integer_truncation():
    # The official count is int(N * (1 - r)); in floating point 10 * (1 - 0.8) = 1.9999999999999996 -> 1.
    assert prune_by_opacity(torch.rand(1, 10, 14), 0.8).shape == (1, 1, 14)
    assert prune_by_opacity(torch.rand(1, 1000, 14), 0.8).shape == (1, 199, 14)


def test_zero_prune_ratio_is_identity():
    packed = torch.randn(1, 7, 14)
    assert prune_by_opacity(packed, 0.0) is packed


def test_bfloat16_model_gives_float32_gaussians_close_to_float32_model():
    model = perturbed_model(reduced("static"))
    inputs = random_inputs(B=1, V=2, T=2, H=4, W=4)
    del inputs["time_embeddings"]
    with torch.no_grad():
        reference = model.forward_gaussians(**inputs, num_views=2)
        half = model.to(torch.bfloat16).forward_gaussians(
            **{k: v.to(torch.bfloat16) for k, v in inputs.items()}, num_views=2
        )
    assert half.dtype == torch.float32
    assert torch.isfinite(half).all()
    assert (half[..., 3] - reference[..., 3]).abs().max() < 0.05  # opacities agree to bf16 precision
