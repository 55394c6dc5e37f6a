"""Memory modes on CPU: what can be checked without a GPU (placement bookkeeping, fp8 storage numerics)."""

import pytest
import torch
from teacher_tiny import random_transformer

from lyra.errors import InputDataError
from lyra.teacher.gen3c import compute_device_dtype, sample
from lyra.teacher.memory import MemoryMode


def sampler_inputs():
    g = torch.Generator().manual_seed(0)
    return dict(
        condition_latent=torch.randn(1, 16, 3, 6, 8, generator=g),
        condition_pose=torch.randn(1, 64, 3, 6, 8, generator=g),
        text_embeds=torch.randn(1, 5, 32, generator=g),
        negative_text_embeds=torch.randn(1, 5, 32, generator=g),
        noise=torch.randn(1, 16, 3, 6, 8, generator=g),
    )


def test_fp8_weight_storage_keeps_compute_dtype_and_stays_close():
    reference = sample(random_transformer(), num_steps=4, **sampler_inputs())
    model = MemoryMode(fp8_storage=True).prepare_transformer(random_transformer())
    assert model.transformer_blocks[0].ff.net[2].weight.dtype == torch.float8_e4m3fn  # stored in 8 bits
    assert model.transformer_blocks[0].attn1.norm_q.weight.dtype == torch.float32  # norms are skipped
    assert compute_device_dtype(model) == (torch.device("cpu"), torch.float32)
    out = sample(model, num_steps=4, **sampler_inputs())
    assert out.dtype == torch.float32
    error = (out - reference).norm() / reference.norm()
    assert 0 < error < 0.1  # fp8 weights change the numbers, a little


def test_model_offload_on_cpu_gives_identical_results_and_group_needs_cuda():
    reference = sample(random_transformer(), num_steps=3, **sampler_inputs())
    mode = MemoryMode(offload="model")
    model = mode.prepare_transformer(random_transformer())
    with mode.on_device(model):
        assert torch.equal(sample(model, num_steps=3, **sampler_inputs()), reference)
    with pytest.raises(InputDataError, match="CUDA"):
        MemoryMode(offload="group")
    with pytest.raises(InputDataError, match="offload"):
        MemoryMode(offload="disk")


def test_bfloat16_mode_casts_weights_and_samples_in_bfloat16():
    model = MemoryMode(dtype=torch.bfloat16).prepare_transformer(random_transformer())
    assert model.proj_out.weight.dtype == torch.bfloat16
    out = sample(model, num_steps=2, **sampler_inputs())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_presets_name_the_documented_combinations():
    assert MemoryMode.preset("24gb").offload == "model" and MemoryMode.preset("24gb").dtype == torch.bfloat16
    assert MemoryMode.preset("16gb").fp8_storage and MemoryMode.preset("12gb").offload == "group"
    assert MemoryMode.preset("cpu", free_text_encoder=False).free_text_encoder is False
    with pytest.raises(InputDataError, match="24gb"):
        MemoryMode.preset("8gb")
