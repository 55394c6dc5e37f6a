"""Loading GEN3C weights: official key names -> diffusers through our rename table, strictly."""

import pytest
import torch
from teacher_tiny import TINY_CONFIG, diffusers_name, official_keys, official_state_dict, random_transformer

from lyra.errors import CheckpointError
from lyra.teacher.checkpoint import GEN3C_7B_CONFIG, official_key_to_diffusers
from lyra.teacher.gen3c import load_transformer


def test_rename_table_matches_the_spec_examples_and_every_tiny_key():
    assert official_key_to_diffusers("net.blocks.block3.blocks.1.block.attn.to_k.1.weight") == (
        "transformer_blocks.3.attn2.norm_k.weight"
    )
    assert official_key_to_diffusers("net.blocks.block3.blocks.2.block.layer1.weight") == (
        "transformer_blocks.3.ff.net.0.proj.weight"
    )
    assert official_key_to_diffusers("net.x_embedder.proj.1.weight") == "patch_embed.proj.weight"
    for key in official_keys(12):  # two-digit block indices too
        assert official_key_to_diffusers(key) == diffusers_name(key), key


def test_official_7b_key_set_matches_the_diffusers_7b_model_on_meta():
    from diffusers import CosmosTransformer3DModel

    with torch.device("meta"):
        model = CosmosTransformer3DModel(**GEN3C_7B_CONFIG)
    keys = official_keys(28)
    assert len([k for k in keys if k.startswith("net.")]) == 571
    converted = {official_key_to_diffusers(k) for k in keys} - {None}
    assert converted == set(model.state_dict())
    assert len(converted) == 570
    assert model.patch_embed.proj.weight.shape == (4096, 328)


def test_official_state_dict_loads_strictly_with_identical_weights_and_official_eps(tiny_transformer):
    state = official_state_dict(tiny_transformer)
    state["net.blocks.block0.blocks.0.block.attn.to_q._extra_state"] = b"fp8 metadata"
    loaded = load_transformer(state, config=TINY_CONFIG)
    reference = tiny_transformer.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, reference[key]), key
    for block in loaded.transformer_blocks:
        for attn in (block.attn1, block.attn2):
            assert attn.norm_q.eps == 1e-6 and attn.norm_k.eps == 1e-6
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training


def test_model_pt_file_nested_under_model_and_dtype(tmp_path, tiny_transformer):
    path = tmp_path / "model.pt"
    torch.save({"model": official_state_dict(tiny_transformer), "optimizer": {}}, path)
    loaded = load_transformer(path, config=TINY_CONFIG, dtype=torch.bfloat16)
    assert loaded.proj_out.weight.dtype == torch.bfloat16
    assert torch.equal(loaded.proj_out.weight, tiny_transformer.proj_out.weight.bfloat16())


def test_wrong_key_is_named(tiny_transformer):
    state = official_state_dict(tiny_transformer)
    state["net.blocks.block1.blocks.0.block.attn.to_qq.0.weight"] = state.pop(
        "net.blocks.block1.blocks.0.block.attn.to_q.0.weight"
    )
    with pytest.raises(CheckpointError) as info:
        load_transformer(state, config=TINY_CONFIG)
    message = str(info.value)
    assert "net.blocks.block1.blocks.0.block.attn.to_qq.0.weight" in message  # unexpected, official name
    assert "1 missing (first: net.blocks.block1.blocks.0.block.attn.to_q.0.weight)" in message  # official name too


def test_every_diffusers_key_has_its_official_name(tiny_transformer):
    from lyra.teacher.checkpoint import diffusers_key_to_official

    official = set(official_state_dict(tiny_transformer))
    names = {diffusers_key_to_official(k) for k in tiny_transformer.state_dict()}
    assert names <= official and len(names) == len(tiny_transformer.state_dict())


def test_partial_config_keeps_gen3c_defaults(tiny_transformer):
    config = {k: v for k, v in TINY_CONFIG.items() if k != "in_channels"}  # in_channels falls back to GEN3C's 81
    loaded = load_transformer(official_state_dict(tiny_transformer), config=config)
    assert loaded.config.in_channels == 81


def test_state_dict_nested_under_model_is_unwrapped(tiny_transformer):
    loaded = load_transformer({"model": official_state_dict(tiny_transformer)}, config=TINY_CONFIG)
    assert torch.equal(loaded.proj_out.weight, tiny_transformer.proj_out.weight)


def test_transformer_engine_extra_state_as_bytesio_loads(tmp_path, tiny_transformer):
    import io

    state = official_state_dict(tiny_transformer)
    state["net.blocks.block0.blocks.0.block.attn.to_q.0._extra_state"] = io.BytesIO(b"fp8 metadata")
    path = tmp_path / "model.pt"
    torch.save({"model": state}, path)
    loaded = load_transformer(path, config=TINY_CONFIG)
    assert torch.equal(loaded.proj_out.weight, tiny_transformer.proj_out.weight)


def test_wrong_shape_is_named(tiny_transformer):
    state = official_state_dict(tiny_transformer)
    state["net.x_embedder.proj.1.weight"] = torch.zeros(64, 72)  # a Video2World (17-channel) patch embed
    with pytest.raises(CheckpointError, match=r"net\.x_embedder\.proj\.1\.weight \[64, 72\]"):
        load_transformer(state, config=TINY_CONFIG)


def test_missing_file_and_diffusers_folder(tmp_path, tiny_transformer):
    with pytest.raises(CheckpointError, match="nvidia/Gen3C-Cosmos-7B"):
        load_transformer(tmp_path / "nope.pt")
    tiny_transformer.save_pretrained(tmp_path / "diffusers")
    loaded = load_transformer(tmp_path / "diffusers")
    assert torch.equal(loaded.patch_embed.proj.weight, tiny_transformer.patch_embed.proj.weight)
    assert loaded.transformer_blocks[1].attn2.norm_k.eps == 1e-6


def test_loaded_model_runs_the_spec_call_mapping():
    model = load_transformer(official_state_dict(random_transformer(seed=3)), config=TINY_CONFIG)
    x = torch.randn(2, 16, 3, 6, 8)
    out = model(
        hidden_states=x,
        timestep=torch.full((2,), 0.25 * torch.log(torch.tensor(5.0)).item()),
        encoder_hidden_states=torch.randn(2, 7, 32),
        fps=24,
        condition_mask=torch.randn(2, 65, 3, 6, 8),
        padding_mask=torch.zeros(1, 1, 48, 64),
        return_dict=False,
    )[0]
    assert out.shape == x.shape and torch.isfinite(out).all()
