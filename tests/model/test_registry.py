"""The model registry: defaults, user overrides, offline resolution and the errors that say what to get."""

import subprocess
import sys

import pytest

from lyra.model.registry import ModelNotFoundError, check_models, find_model, load_registry, resolve_model


@pytest.fixture(autouse=True)
def offline_empty_cache(tmp_path, monkeypatch):
    """No network, an empty Hugging Face cache and no user file unless a test writes one."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("LYRA_MODELS", str(tmp_path / "user-models.yaml"))


def test_defaults_name_every_model_the_stack_needs():
    registry = load_registry()
    for name in ("gen3c", "tokenizer", "t5", "depth", "depth_anything_v2", "decoder_static", "decoder_dynamic"):
        assert name in registry and registry[name].hub
    assert registry["gen3c"].hub == "nvidia/Gen3C-Cosmos-7B" and registry["gen3c"].file == "model.pt"
    assert registry["decoder_static"].md5 == "28ddd05011b33350c70edab02c23c602"


def test_missing_model_error_names_hub_id_and_file():
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("gen3c")
    message = str(info.value)
    assert "nvidia/Gen3C-Cosmos-7B" in message and "model.pt" in message and "huggingface-cli download" in message


def test_user_file_overrides_path_field_by_field(tmp_path):
    weights = tmp_path / "ckpt" / "model.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"not really weights")
    (tmp_path / "user-models.yaml").write_text(f"gen3c:\n  path: {weights}\nmine:\n  path: {tmp_path / 'nothing'}\n")
    registry = load_registry()
    assert registry["gen3c"].hub == "nvidia/Gen3C-Cosmos-7B"  # kept from the defaults
    assert resolve_model("gen3c", registry) == weights
    assert find_model("mine", registry) is None  # added by the user, missing on disk


def test_folder_entry_needs_its_file(tmp_path):
    folder = tmp_path / "vae"
    folder.mkdir()
    (tmp_path / "user-models.yaml").write_text(f"tokenizer:\n  path: {tmp_path}\n  subfolder: vae\n")
    assert find_model("tokenizer") is None  # no config.json yet
    (folder / "config.json").write_text("{}")
    assert find_model("tokenizer") == folder


def test_unknown_field_and_unknown_model_are_errors(tmp_path):
    (tmp_path / "user-models.yaml").write_text("gen3c:\n  pth: /x\n")
    with pytest.raises(Exception, match="unknown fields"):
        load_registry()
    (tmp_path / "user-models.yaml").write_text("")
    with pytest.raises(Exception, match="unknown model"):
        find_model("nope")


@pytest.mark.slow
def test_check_reports_found_and_missing_and_cli_prints_them(tmp_path):
    weights = tmp_path / "lyra_static.pt"
    weights.write_bytes(b"abc")
    (tmp_path / "user-models.yaml").write_text(f"decoder_static:\n  path: {weights}\n  md5: 900150983cd24fb0d6963f7d28e17f72\n")
    rows = {r["name"]: r for r in check_models(verify=True)}
    assert rows["decoder_static"]["found"] and rows["decoder_static"]["md5_ok"] is True
    assert not rows["gen3c"]["found"] and "nvidia/Gen3C-Cosmos-7B" in rows["gen3c"]["hint"]
    out = subprocess.run([sys.executable, "-m", "lyra", "models", "check"], capture_output=True, text=True)
    assert out.returncode == 0
    assert f"found    decoder_static     {weights}" in out.stdout
    assert "missing  gen3c" in out.stdout
    strict = subprocess.run([sys.executable, "-m", "lyra", "models", "check", "--strict"], capture_output=True)
    assert strict.returncode == 1
