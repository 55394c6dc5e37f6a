"""Errors raised on purpose are LyraErrors, so the CLI and the viewer show them as messages."""

import pathlib
import re

import pytest
import torch

from lyra.errors import LyraError


def test_no_module_of_the_library_raises_a_builtin_error_on_purpose():
    root = pathlib.Path(__file__).resolve().parents[1] / "lyra"
    pattern = re.compile(r"raise (ValueError|RuntimeError|KeyError|TypeError|IndexError)\(")
    offenders = [f"{p.relative_to(root)}:{i + 1}" for p in root.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines()) if pattern.search(line)]
    assert offenders == []


def test_bad_sh_degree_is_a_lyra_error():
    from lyra.scene.sh import num_sh_coeffs, sh_degree_from_coeffs

    with pytest.raises(LyraError, match="SH degree"):
        num_sh_coeffs(7)
    with pytest.raises(LyraError, match="not \\(d\\+1\\)\\^2"):
        sh_degree_from_coeffs(5)


def test_decoder_shape_and_config_errors_are_lyra_errors():
    from lyra.model import LyraDecoder, LyraDecoderConfig

    with pytest.raises(LyraError, match="not divisible"):
        LyraDecoderConfig(enc_embed_dim=30, enc_num_heads=4)
    model = LyraDecoder(LyraDecoderConfig(enc_depth=1, enc_embed_dim=32, enc_num_heads=2, mamba_d_state=8,
                                          mamba_headdim=16, mamba_chunk_size=16, use_mamba=False))
    with pytest.raises(LyraError, match="images must be"):
        model.forward_raw(torch.zeros(1, 1, 3, 4, 4), torch.zeros(1, 1, 32, 4, 4))
