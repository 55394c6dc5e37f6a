"""GEN3C checkpoints -> diffusers' ``CosmosTransformer3DModel`` through our own rename table.

The official ``model.pt`` (``nvidia/Gen3C-Cosmos-7B``) holds the ``net.*``
weights of ``VideoExtendGeneralDIT`` (GEN3C_SPEC.md section 6.1). diffusers'
``from_single_file`` cannot load it (spec 6.3: it applies the Cosmos-2.0 table
to a 1.0 checkpoint and rejects 328 patch-embed in-features), so the keys are
renamed here with the Cosmos-1.0 rules of spec 6.2 and loaded strictly.

Rename procedure for one key: strip ``net.``, apply :data:`RENAME_RULES` in
order with plain ``str.replace``, then ``blocks.block{i}.`` ->
``transformer_blocks.{i}.``. Dropped: ``logvar.*`` (training-only EDM
log-variance head), ``pos_embedder.seq`` (RoPE arange buffer) and any
``*_extra_state`` (TransformerEngine FP8 metadata).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.errors import CheckpointError

# GEN3C-Cosmos-7B in diffusers terms (spec section 2, "diffusers equivalent").
GEN3C_7B_CONFIG: dict[str, Any] = dict(
    in_channels=81,
    out_channels=16,
    num_attention_heads=32,
    attention_head_dim=128,
    num_layers=28,
    mlp_ratio=4.0,
    text_embed_dim=1024,
    adaln_lora_dim=256,
    max_size=(128, 240, 240),
    patch_size=(1, 2, 2),
    rope_scale=(2.0, 1.0, 1.0),
    concat_padding_mask=True,
    extra_pos_embed_type="learnable",
)
OFFICIAL_QK_NORM_EPS = 1e-6  # te.pytorch.RMSNorm(eps=1e-6); diffusers' Attention default is 1e-5

# Spec 6.2, applied in this order (order matters: ".blocks.0.block.attn" before "to_q.0" etc.).
RENAME_RULES: tuple[tuple[str, str], ...] = (
    ("t_embedder.1", "time_embed.t_embedder"),
    ("affline_norm", "time_embed.norm"),
    (".blocks.0.block.attn", ".attn1"),
    (".blocks.1.block.attn", ".attn2"),
    (".blocks.2.block", ".ff"),
    (".blocks.0.adaLN_modulation.1", ".norm1.linear_1"),
    (".blocks.0.adaLN_modulation.2", ".norm1.linear_2"),
    (".blocks.1.adaLN_modulation.1", ".norm2.linear_1"),
    (".blocks.1.adaLN_modulation.2", ".norm2.linear_2"),
    (".blocks.2.adaLN_modulation.1", ".norm3.linear_1"),
    (".blocks.2.adaLN_modulation.2", ".norm3.linear_2"),
    ("to_q.0", "to_q"),
    ("to_q.1", "norm_q"),
    ("to_k.0", "to_k"),
    ("to_k.1", "norm_k"),
    ("to_v.0", "to_v"),
    ("layer1", "net.0.proj"),
    ("layer2", "net.2"),
    ("proj.1", "proj"),
    ("x_embedder", "patch_embed"),
    ("extra_pos_embedder", "learnable_pos_embed"),
    ("final_layer.adaLN_modulation.1", "norm_out.linear_1"),
    ("final_layer.adaLN_modulation.2", "norm_out.linear_2"),
    ("final_layer.linear", "proj_out"),
)
DROPPED_KEYS = ("logvar.0.freqs", "logvar.0.phases", "logvar.1.weight", "pos_embedder.seq")
_BLOCK_INDEX = re.compile(r"^blocks\.block(\d+)\.")


def official_key_to_diffusers(key: str) -> str | None:
    """The diffusers name of one official key, or None for keys that are dropped."""
    name = key[len("net.") :] if key.startswith("net.") else key
    if name in DROPPED_KEYS or name.startswith("logvar.") or "_extra_state" in name:
        return None
    for old, new in RENAME_RULES:
        name = name.replace(old, new)
    return _BLOCK_INDEX.sub(r"transformer_blocks.\1.", name)


# The rename rules read backwards, as regular expressions, for naming missing keys the way the checkpoint would.
_TO_OFFICIAL: tuple[tuple[str, Any], ...] = (
    (r"^transformer_blocks\.(\d+)\.", r"blocks.block\1."),
    (r"\.norm([123])\.linear_([12])\.", lambda m: f".blocks.{int(m[1]) - 1}.adaLN_modulation.{m[2]}."),
    (r"\.attn([12])\.", lambda m: f".blocks.{int(m[1]) - 1}.block.attn."),
    (r"\.to_([qkv])\.weight$", r".to_\1.0.weight"),
    (r"\.norm_([qk])\.", r".to_\1.1."),
    (r"\.ff\.net\.0\.proj\.", ".blocks.2.block.layer1."),
    (r"\.ff\.net\.2\.", ".blocks.2.block.layer2."),
    (r"^patch_embed\.proj\.", "x_embedder.proj.1."),
    (r"^learnable_pos_embed\.", "extra_pos_embedder."),
    (r"^time_embed\.t_embedder\.", "t_embedder.1."),
    (r"^time_embed\.norm\.", "affline_norm."),
    (r"^norm_out\.linear_([12])\.", r"final_layer.adaLN_modulation.\1."),
    (r"^proj_out\.", "final_layer.linear."),
)


def diffusers_key_to_official(key: str) -> str:
    """The official ``net.*`` name of one diffusers key (the diffusers name if no official one maps to it)."""
    name = key
    for pattern, replacement in _TO_OFFICIAL:
        name = re.sub(pattern, replacement, name)
    official = "net." + name
    return official if official_key_to_diffusers(official) == key else key


def convert_official_state_dict(state: Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """``(diffusers state dict, diffusers name -> official name)``; only ``net.*`` tensors are kept.

    Keys outside ``net.`` are ignored (a dict with none at all then fails the strict check, listing what is
    missing). Raises CheckpointError when two official keys map to one name or a kept entry is not a tensor.
    """
    converted: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in state.items():
        if not key.startswith("net."):
            continue  # logvar.*, conditioner (no parameters), anything else outside the network
        new = official_key_to_diffusers(key)
        if new is None:
            continue
        if not isinstance(value, Tensor):
            raise CheckpointError(f"checkpoint entry {key!r} is a {type(value).__name__}, expected a tensor")
        if new in converted:
            raise CheckpointError(f"checkpoint keys {origin[new]!r} and {key!r} both map to {new!r}")
        converted[new], origin[new] = value, key
    return converted, origin


def read_checkpoint_file(path: str | os.PathLike) -> Mapping[str, Any]:
    """``torch.load`` (weights only, memory-mapped) of an official ``model.pt``; a top-level ``model`` is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: GEN3C checkpoint not found; get model.pt from the hub repo nvidia/Gen3C-Cosmos-7B")
    try:
        # TransformerEngine pickles its ``_extra_state`` as io.BytesIO: allow that one class, never arbitrary code
        # (the official loader falls back to weights_only=False; we do not run pickled code from a download).
        with torch.serialization.safe_globals([io.BytesIO]):
            try:
                data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped
                data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; pickled code is never run (weights only)
        raise CheckpointError(f"{path}: could not read the checkpoint with weights_only=True ({exc})") from exc
    if isinstance(data, Mapping):
        for wrapper in ("model", "state_dict"):
            if wrapper in data and isinstance(data[wrapper], Mapping):
                data = data[wrapper]
                break
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: expected a state dict, found {type(data).__name__}")
    return data


def read_diffusers_folder(folder: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config kwargs, state dict)`` of a ``CosmosTransformer3DModel.save_pretrained`` folder (safetensors).

    Read by hand rather than through ``from_pretrained`` so that loading needs no ``accelerate`` and shares
    the meta-device + strict path of official checkpoints.
    """
    import json

    from safetensors.torch import load_file

    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{folder}: not a diffusers model folder (no config.json)")
    config = {k: v for k, v in json.loads(config_file.read_text()).items() if not k.startswith("_")}
    shards = sorted(folder.glob("diffusion_pytorch_model*.safetensors"))
    if not shards:
        raise CheckpointError(f"{folder}: no diffusion_pytorch_model*.safetensors weights")
    state: dict[str, Tensor] = {}
    for shard in shards:
        state.update(load_file(str(shard)))
    for key in ("max_size", "patch_size", "rope_scale"):
        if key in config:
            config[key] = tuple(config[key])
    return config, state


def strict_check(model: torch.nn.Module, state: Mapping[str, Tensor], origin: Mapping[str, str]) -> None:
    """Raise CheckpointError naming the first few missing / unexpected / mis-shaped keys (official names)."""
    expected = model.state_dict()
    missing = [diffusers_key_to_official(k) for k in expected if k not in state]
    unexpected = [origin.get(k, k) for k in state if k not in expected]
    shapes = [
        f"{origin.get(k, k)} {list(v.shape)} (model {list(expected[k].shape)})"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (first: {', '.join(missing[:5])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:5])})")
    if shapes:
        problems.append(f"{len(shapes)} with wrong shapes (first: {'; '.join(shapes[:3])})")
    if problems:
        raise CheckpointError("GEN3C checkpoint does not match the transformer: " + "; ".join(problems))


def set_official_qk_norm_eps(model: torch.nn.Module, eps: float = OFFICIAL_QK_NORM_EPS) -> int:
    """Set the per-head q/k RMSNorm eps of every attention to the official value; returns how many were set."""
    count = 0
    for block in model.transformer_blocks:
        for attn in (block.attn1, block.attn2):
            for norm in (attn.norm_q, attn.norm_k):
                norm.eps = eps
                count += 1
    return count
