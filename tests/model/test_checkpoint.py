"""Checkpoints: official DeepSpeed files, our safetensors folders, clear errors."""

import collections

import pytest
import torch

from lyra.errors import CheckpointError
from lyra.model.checkpoint import (
    guess_kind,
    load_decoder,
    load_official_decoder,
    read_official_state_dict,
    save_decoder,
)


def test_saved_folder_round_trips_weights_and_config(tmp_path, make_tiny_decoder):
    model = make_tiny_decoder("dynamic")
    folder = save_decoder(model, tmp_path / "ours")
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "model.safetensors"]
    loaded = load_decoder(folder)
    assert loaded.config == model.config
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
    assert not loaded.training


def test_deepspeed_file_state_dict_is_read_from_module_key(tmp_path, make_tiny_decoder, make_tiny_config):
    model = make_tiny_decoder("static")
    path = tmp_path / "lyra_static.pt"
    torch.save({"module": model.state_dict(), "optimizer": None}, path)
    loaded = load_official_decoder(path, config=make_tiny_config("static"))
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )


def test_kind_is_guessed_from_official_file_names():
    assert guess_kind("ckpts/lyra_dynamic.pt") == "dynamic"
    assert guess_kind("ckpts/lyra_static.pt") == "static"


def test_missing_checkpoint_names_the_hub_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"lyra_static\.pt.*nvidia/Lyra"):
        load_decoder(tmp_path / "lyra_static.pt")


def test_checkpoint_needing_arbitrary_unpickling_is_refused(tmp_path):
    path = tmp_path / "lyra_static.pt"
    torch.save({"module": {"w": torch.zeros(1)}, "extra": collections.OrderedDict, "call": print}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_official_state_dict(path)


def test_truncated_checkpoint_gives_checkpoint_error(tmp_path, make_tiny_decoder):
    path = tmp_path / "lyra_static.pt"
    torch.save({"module": make_tiny_decoder("static").state_dict()}, path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="unreadable"):
        read_official_state_dict(path)


def test_mismatched_state_dict_lists_missing_unexpected_and_misshaped_keys(
    tmp_path, make_tiny_decoder, make_tiny_config
):
    state = make_tiny_decoder("static").state_dict()
    state.pop("deconv.bias")
    state["extra.weight"] = torch.zeros(1)
    state["enc_norm.weight"] = torch.zeros(7)
    path = tmp_path / "lyra_static.pt"
    torch.save({"module": state}, path)
    with pytest.raises(CheckpointError) as info:
        load_official_decoder(path, config=make_tiny_config("static"))
    message = str(info.value)
    assert "1 missing: deconv.bias" in message
    assert "1 unexpected: extra.weight" in message
    assert "enc_norm.weight (model [32], file [7])" in message


def test_full_size_official_load_of_a_small_file_reports_shape_mismatches(tmp_path, make_tiny_decoder):
    path = tmp_path / "lyra_static.pt"
    torch.save({"module": make_tiny_decoder("static").state_dict()}, path)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_decoder(path)


def test_folder_without_weights_is_reported(tmp_path):
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_decoder(tmp_path / "ckpt")


def test_corrupt_safetensors_file_is_reported(tmp_path, make_tiny_decoder):
    folder = save_decoder(make_tiny_decoder("static"), tmp_path / "ours")
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_decoder(folder)
