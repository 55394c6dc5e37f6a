"""Decoder checkpoints: the official DeepSpeed files and our own safetensors folders.

* Official: ``lyra_static.pt`` / ``lyra_dynamic.pt`` from the hub repo
  ``nvidia/Lyra``, a torch-saved dict with the state dict under ``"module"``.
  Read with ``torch.load(weights_only=True)`` only (no arbitrary unpickling).
  The two files have identical structure; which one it is (static or dynamic)
  decides only ``use_time_embedding`` and must be given (or guessed from the
  file name, see :func:`guess_kind`).
* Ours: a folder with ``model.safetensors`` and ``config.yaml``
  (:class:`~lyra.model.config.LyraDecoderConfig`), written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from lyra.errors import CheckpointError, ConfigError
from lyra.fileio import atomic_directory, recover_set_aside
from lyra.model.config import KINDS, LyraDecoderConfig
from lyra.model.decoder import LyraDecoder

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
OFFICIAL_WEIGHTS_HINT = (
    "download lyra_static.pt (static scenes) or lyra_dynamic.pt (dynamic scenes) from the Hugging Face "
    "hub repo nvidia/Lyra, or pass a folder written by lyra.model.save_decoder"
)
_LISTED = 5  # how many offending keys an error message names


def guess_kind(path: str | os.PathLike) -> str:
    """``"dynamic"`` if the checkpoint's file name says so, else ``"static"``."""
    return "dynamic" if "dynamic" in Path(path).name.lower() else "static"


def read_official_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """State dict of an official DeepSpeed checkpoint (``{"module": state_dict, ...}``;
    a bare state dict is accepted too). Raises CheckpointError when the file is
    missing, not a safe torch file, or holds no state dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; {OFFICIAL_WEIGHTS_HINT}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        raise CheckpointError(
            f"{path}: expected a torch checkpoint readable with weights_only=True, found an unreadable file "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    state = data.get("module", data) if isinstance(data, dict) else data
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors under 'module', found {type(data).__name__}")
    return state


def check_state_dict(model: LyraDecoder, state: dict[str, Tensor], source: str = "checkpoint") -> None:
    """Raise CheckpointError naming the first missing, unexpected and mis-shaped keys."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} (model {list(shape)}, file {list(state[k].shape)})"
        for k, shape in expected.items()
        if k in state and tuple(state[k].shape) != shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatches", mismatched)):
            if items:
                more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:_LISTED])}{more}")
        raise CheckpointError(
            f"{source} does not match the Lyra decoder ({model.config.enc_depth} blocks, width "
            f"{model.config.enc_embed_dim}): " + "; ".join(parts)
        )


def build_decoder(
    config: LyraDecoderConfig,
    state: dict[str, Tensor],
    source: str = "checkpoint",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LyraDecoder:
    """A decoder in eval mode holding ``state`` (strict), built without a random init."""
    with torch.device("meta"):
        model = LyraDecoder(config)
    check_state_dict(model, state, source)
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()


def load_official_decoder(
    path: str | os.PathLike,
    kind: str | None = None,
    config: LyraDecoderConfig | None = None,
    **to_kwargs,
) -> LyraDecoder:
    """Decoder from ``lyra_static.pt`` / ``lyra_dynamic.pt``; ``kind`` defaults to :func:`guess_kind`."""
    if config is None:
        kind = kind or guess_kind(path)
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}")
        config = LyraDecoderConfig.official(kind)
    return build_decoder(config, read_official_state_dict(path), source=str(path), **to_kwargs)


def save_decoder(model: LyraDecoder, folder: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``folder/model.safetensors`` + ``folder/config.yaml`` atomically (float32 weights)."""
    folder = Path(folder)
    with atomic_directory(folder, overwrite=overwrite) as tmp:
        weights = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "model": "lyra-latent-3dgs-decoder"})
        model.config.to_yaml(tmp / CONFIG_FILE)
    return folder


def load_decoder(path: str | os.PathLike, kind: str | None = None, **to_kwargs) -> LyraDecoder:
    """Decoder from our folder (``model.safetensors`` + ``config.yaml``) or an official ``.pt`` file."""
    path = Path(path)
    recover_set_aside(path)  # a save killed mid-swap set the previous folder aside: bring it back
    if path.is_dir():
        weights, config_file = path / WEIGHTS_FILE, path / CONFIG_FILE
        if not weights.is_file() or not config_file.is_file():
            raise CheckpointError(f"{path}: expected a decoder folder with {WEIGHTS_FILE} and {CONFIG_FILE}")
        config = LyraDecoderConfig.from_yaml(config_file)
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{weights}: expected a safetensors file, found an unreadable one ({exc})") from exc
        return build_decoder(config, state, source=str(weights), **to_kwargs)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; {OFFICIAL_WEIGHTS_HINT}")
    return load_official_decoder(path, kind=kind, **to_kwargs)


def module_fingerprint(module: torch.nn.Module) -> str:
    """A digest of a network's weights (names, dtypes, shapes, bytes): the identity of a model given in memory.

    Resume keys use it for models handed over as objects; models loaded from the registry use their
    files' identity instead (:func:`lyra.fileio.file_identity`), which costs no read.
    """
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()[:24]
