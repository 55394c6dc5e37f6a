"""Configuration of the Lyra latent 3DGS decoder.

Field names are the official Lyra-1 config keys (``configs/training/*.yaml``)
that shape the network or its activations, so an official training YAML can be
read directly (:meth:`LyraDecoderConfig.from_official_yaml`). The Mamba-2 block
settings are fixed defaults of the official ``Mamba2Block`` (not YAML keys
there); they are named ``mamba_*`` here.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import yaml

from lyra.errors import CheckpointError, ConfigError, InputDataError
from lyra.fileio import atomic_write
from lyra.safe_yaml import read_yaml

KINDS = ("static", "dynamic")
MAX_BLOCK_WEIGHTS = 4_000_000_000  # enc_depth x enc_embed_dim^2 x 16 (a rough weight count); the released model: 67M

# Every field's kind and range: a config.yaml is input, and a wrong one must fail here, fast and with a
# message, not as a TypeError deep in the network or an allocation that runs for minutes.
_INT_RANGES = {
    "enc_depth": (1, 256), "enc_embed_dim": (1, 16384), "enc_num_heads": (1, 1024), "llrm_7m1t_index": (1, 256),
    "patch_size": (1, 64), "patch_size_temporal": (1, 64), "num_latent_c": (1, 4096),
    "latent_time_compression": (1, 64), "latent_spat_compression": (1, 64), "output_dims": (1, 64),
    "mamba_d_state": (1, 4096), "mamba_d_conv": (1, 64), "mamba_expand": (1, 16), "mamba_headdim": (1, 4096),
    "mamba_ngroups": (1, 1024), "mamba_chunk_size": (1, 1 << 16),
}
_FLOAT_RANGES = {
    "mlp_ratio": (1e-3, 64.0), "gaussian_scale_cap": (1e-9, 1e3), "pre_sigmoid_distance_shift": (-1e3, 1e3),
    "dnear": (1e-9, 1e9), "dfar": (1e-9, 1e12), "gaussians_prune_ratio": (0.0, 1.0),
}
_BOOLS = ("use_mamba", "llrm_7m1t", "time_embedding", "use_time_embedding")


def _field_problems(config) -> list[str]:
    """Kind and range problems of every field (ints must be whole numbers, not 2.5 or True)."""
    problems = []
    for name, (lo, hi) in _INT_RANGES.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{name} must be a whole number, got {value!r:.40}")
        elif not lo <= value <= hi:
            problems.append(f"{name} must be in {lo}..{hi}, got {value}")
    for name, (lo, hi) in _FLOAT_RANGES.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"{name} must be a finite number, got {value!r:.40}")
        elif not lo <= value <= hi:
            problems.append(f"{name} must be in {lo:g}..{hi:g}, got {value}")
    for name in _BOOLS:
        if not isinstance(getattr(config, name), bool):
            problems.append(f"{name} must be true or false, got {getattr(config, name)!r:.40}")
    factor = config.patch_size_out_factor
    if not isinstance(factor, (list, tuple)) or len(factor) != 3 or \
            not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in factor):
        problems.append(f"patch_size_out_factor must be 3 whole numbers in 1..64, got {factor!r:.60}")
    return problems


@dataclasses.dataclass(frozen=True)
class LyraDecoderConfig:
    """Network-shaping settings; defaults are the released static model."""

    enc_depth: int = 16
    enc_embed_dim: int = 512
    enc_num_heads: int = 8
    mlp_ratio: float = 4
    use_mamba: bool = True
    llrm_7m1t: bool = True
    llrm_7m1t_index: int = 8  # block i is a Transformer iff (i + 1) % index == 0
    patch_size: int = 2
    patch_size_temporal: int = 1
    num_latent_c: int = 16
    latent_time_compression: int = 8
    latent_spat_compression: int = 8
    patch_size_out_factor: tuple[int, int, int] = (1, 8, 8)
    output_dims: int = 12
    time_embedding: bool = True  # the time patch embeds exist (both released models)
    use_time_embedding: bool = False  # ... and are added in the forward pass (dynamic)
    gaussian_scale_cap: float = 0.3
    pre_sigmoid_distance_shift: float = -1.65
    dnear: float = 0.1
    dfar: float = 500.0
    gaussians_prune_ratio: float = 0.8
    mamba_d_state: int = 256
    mamba_d_conv: int = 4
    mamba_expand: int = 2
    mamba_headdim: int = 64
    mamba_ngroups: int = 1
    mamba_chunk_size: int = 256

    def __post_init__(self) -> None:
        problems = _field_problems(self)
        if problems:  # the checks below assume numbers of the right kind
            raise ConfigError("invalid LyraDecoderConfig: " + "; ".join(problems))
        object.__setattr__(self, "patch_size_out_factor", tuple(self.patch_size_out_factor))
        if self.enc_depth * self.enc_embed_dim ** 2 * 16 > MAX_BLOCK_WEIGHTS:
            problems.append(f"enc_depth {self.enc_depth} x enc_embed_dim {self.enc_embed_dim} makes a network of "
                            f"about {self.enc_depth * self.enc_embed_dim ** 2 * 16:,} weights, more than "
                            f"{MAX_BLOCK_WEIGHTS:,}")
        if self.dfar <= self.dnear:
            problems.append(f"dfar ({self.dfar}) must be larger than dnear ({self.dnear})")
        if self.enc_embed_dim % self.enc_num_heads:
            problems.append(f"enc_embed_dim {self.enc_embed_dim} not divisible by enc_num_heads {self.enc_num_heads}")
        if (self.mamba_expand * self.enc_embed_dim) % self.mamba_headdim:
            problems.append(
                f"mamba d_inner {self.mamba_expand * self.enc_embed_dim} not divisible by headdim {self.mamba_headdim}"
            )
        if self.mamba_nheads % self.mamba_ngroups:
            problems.append(f"mamba nheads {self.mamba_nheads} not divisible by ngroups {self.mamba_ngroups}")
        if not 0.0 <= self.gaussians_prune_ratio < 1.0:
            problems.append(f"gaussians_prune_ratio must be in [0, 1), got {self.gaussians_prune_ratio}")
        if self.output_dims != 12:
            problems.append(f"output_dims must be 12 (distance, rgb, scale, rotation, opacity), got {self.output_dims}")
        if len(self.patch_size_out_factor) != 3:
            problems.append(f"patch_size_out_factor needs 3 entries, got {self.patch_size_out_factor}")
        if problems:
            raise ConfigError("invalid LyraDecoderConfig: " + "; ".join(problems))

    # ------------------------------------------------------------ derived sizes
    @property
    def mamba_d_inner(self) -> int:
        return self.mamba_expand * self.enc_embed_dim

    @property
    def mamba_nheads(self) -> int:
        return self.mamba_d_inner // self.mamba_headdim

    def is_transformer_block(self, index: int) -> bool:
        """Block ``index`` is a Transformer block (else a bidirectional Mamba-2 block)."""
        if not self.use_mamba:
            return True
        return self.llrm_7m1t and (index + 1) % self.llrm_7m1t_index == 0

    @property
    def deconv_stride(self) -> tuple[int, int, int]:
        f = self.patch_size_out_factor
        spatial = self.latent_spat_compression * self.patch_size
        return (self.latent_time_compression // f[0], spatial // f[1], spatial // f[2])

    @property
    def deconv_kernel(self) -> tuple[int, int, int]:
        s = self.deconv_stride
        return (s[0] + 1, s[1], s[2])  # +1 in time: the input is latent, not RGB

    @property
    def deconv_padding(self) -> tuple[int, int, int]:
        return (self.latent_time_compression // 2, 0, 0)

    def num_output_frames(self, latent_frames: int) -> int:
        """Output (Gaussian) frames per view for ``latent_frames`` latent frames (16 -> 121)."""
        stride, kernel, pad = self.deconv_stride[0], self.deconv_kernel[0], self.deconv_padding[0]
        return (latent_frames - 1) * stride - 2 * pad + kernel

    # ------------------------------------------------------------ construction
    @classmethod
    def official(cls, kind: str = "static") -> LyraDecoderConfig:
        """The released configuration of ``lyra_static.pt`` or ``lyra_dynamic.pt``."""
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}")
        return cls(use_time_embedding=(kind == "dynamic"))

    @property
    def kind(self) -> str:
        return "dynamic" if self.time_embedding and self.use_time_embedding else "static"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["patch_size_out_factor"] = list(self.patch_size_out_factor)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, ignore_unknown: bool = False) -> LyraDecoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown and not ignore_unknown:
            raise ConfigError(f"unknown LyraDecoderConfig keys: {unknown}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_yaml(self, path: str | os.PathLike) -> Path:
        """Write the config as YAML (atomically); returns the path."""
        path = Path(path)
        with atomic_write(path, "w") as handle:
            yaml.safe_dump(self.to_dict(), handle, sort_keys=False)
        return path

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> LyraDecoderConfig:
        """Read a config written by :meth:`to_yaml`; raises CheckpointError if missing or malformed."""
        path = Path(path)
        data = _read_yaml_mapping(path, CheckpointError)
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a valid LyraDecoderConfig: {exc}") from exc

    @classmethod
    def from_official_yaml(cls, *paths: str | os.PathLike) -> LyraDecoderConfig:
        """Config from official Lyra-1 training YAMLs (e.g. ``default.yaml`` then
        ``3dgs_res_704_1280_views_121_multi_6_prune.yaml``), merged later-wins as
        the official ``load_and_merge_configs`` does. Keys that do not shape the
        network are ignored; keys absent from all files keep the released
        static defaults. Raises InputDataError for a missing or malformed file.
        """
        if not paths:
            raise ConfigError("from_official_yaml needs at least one YAML path")
        merged: dict[str, Any] = {}
        for path in paths:
            merged.update(_read_yaml_mapping(Path(path), InputDataError))
        try:
            return cls.from_dict(merged, ignore_unknown=True)
        except (TypeError, ValueError) as exc:
            raise InputDataError(f"official config {[str(p) for p in paths]} gives an invalid decoder: {exc}") from exc


def _read_yaml_mapping(path: Path, error: type[Exception]) -> dict[str, Any]:
    if not path.is_file():
        raise error(f"{path}: expected a YAML config file, found nothing there")
    data = read_yaml(path, error)  # no aliases, shallow, small (lyra.safe_yaml)
    if not isinstance(data, dict):
        raise error(f"{path}: expected a YAML mapping of config keys, found {type(data).__name__}")
    return data
