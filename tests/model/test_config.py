"""LyraDecoderConfig: official values, YAML round trip, official YAML merging."""

import dataclasses

import pytest
import yaml

from lyra.errors import CheckpointError, InputDataError
from lyra.model import LyraDecoderConfig


def test_official_kinds_differ_only_in_time_conditioning():
    static, dynamic = LyraDecoderConfig.official("static"), LyraDecoderConfig.official("dynamic")
    assert dataclasses.replace(static, use_time_embedding=True) == dynamic
    assert (static.kind, dynamic.kind) == ("static", "dynamic")


def test_derived_deconvolution_geometry():
    config = LyraDecoderConfig.official("static")
    assert config.deconv_stride == (8, 2, 2)
    assert config.deconv_kernel == (9, 2, 2)
    assert config.deconv_padding == (4, 0, 0)
    assert (config.mamba_d_inner, config.mamba_nheads) == (1024, 16)


def test_yaml_round_trip(tmp_path):
    config = dataclasses.replace(LyraDecoderConfig.official("dynamic"), enc_depth=8, gaussians_prune_ratio=0.5)
    path = config.to_yaml(tmp_path / "config.yaml")
    assert LyraDecoderConfig.from_yaml(path) == config


def test_yaml_with_unknown_key_is_rejected(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("enc_depth: 4\nbogus: 1\n")
    with pytest.raises(CheckpointError, match="bogus"):
        LyraDecoderConfig.from_yaml(path)


def test_official_training_yamls_merge_later_wins_and_ignore_other_keys(tmp_path):
    default = tmp_path / "default.yaml"
    default.write_text(
        yaml.safe_dump(
            {"enc_depth": 24, "learning_rate": 1e-4, "use_time_embedding": False, "gaussians_prune_ratio": 0.0}
        )
    )
    stage = tmp_path / "3dgs_dynamic_prune.yaml"
    stage.write_text(
        yaml.safe_dump({"enc_depth": 16, "use_time_embedding": True, "gaussians_prune_ratio": 0.8, "lambda_lpips": 0.5})
    )
    config = LyraDecoderConfig.from_official_yaml(default, stage)
    assert config == LyraDecoderConfig.official("dynamic")


def test_missing_official_yaml_is_reported(tmp_path):
    with pytest.raises(InputDataError, match="expected a YAML config file"):
        LyraDecoderConfig.from_official_yaml(tmp_path / "missing.yaml")


def test_inconsistent_widths_are_rejected():
    with pytest.raises(ValueError, match="not divisible by enc_num_heads"):
        dataclasses.replace(LyraDecoderConfig.official("static"), enc_num_heads=7)
