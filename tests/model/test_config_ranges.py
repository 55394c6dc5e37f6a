"""Issue 20 §3.3: every decoder config.yaml field is checked for kind and range before anything is built."""

from __future__ import annotations

import time

import pytest
import yaml

from lyra.errors import LyraError
from lyra.model import LyraDecoderConfig
from lyra.model.checkpoint import load_decoder, save_decoder


@pytest.fixture
def decoder_folder(tmp_path, make_tiny_decoder):
    return save_decoder(make_tiny_decoder("static"), tmp_path / "decoder")


def edit_config(folder, **fields) -> None:
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config.update(fields)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.parametrize("fields, words", [
    (dict(enc_depth=1_000_000), "enc_depth must be in 1..256"),
    (dict(enc_depth=2.5), "enc_depth must be a whole number"),
    (dict(enc_depth=True), "enc_depth must be a whole number"),
    (dict(enc_embed_dim="512"), "enc_embed_dim must be a whole number"),
    (dict(enc_depth=200, enc_embed_dim=8192), "weights, more than"),
    (dict(mlp_ratio=float("nan")), "mlp_ratio must be a finite number"),
    (dict(dnear=5.0, dfar=1.0), "dfar (1.0) must be larger than dnear"),
    (dict(use_mamba="yes please"), "use_mamba must be true or false"),
    (dict(patch_size_out_factor=[1, 8]), "patch_size_out_factor must be 3 whole numbers"),
    (dict(mamba_chunk_size=-4), "mamba_chunk_size must be in 1..65536"),
])
def test_a_config_field_out_of_kind_or_range_fails_fast_with_a_lyra_error(decoder_folder, fields, words):
    edit_config(decoder_folder, **fields)
    began = time.perf_counter()
    with pytest.raises(LyraError) as info:
        load_decoder(decoder_folder)
    assert time.perf_counter() - began < 10.0
    assert words in str(info.value)


def test_the_released_configs_pass():
    for kind in ("static", "dynamic"):
        assert LyraDecoderConfig.official(kind).enc_depth >= 1
