"""The Lyra-1 latent 3DGS decoder: config, network, checkpoints, SDG decoding.

``LyraDecoder`` reproduces the official ``LatentRecon`` forward pass in pure
PyTorch (CPU-capable) with the official parameter names, so the released
``lyra_static.pt`` / ``lyra_dynamic.pt`` load with a strict state-dict load.
"""

from lyra.model.checkpoint import load_decoder, load_official_decoder, save_decoder
from lyra.model.config import LyraDecoderConfig
from lyra.model.decoder import (
    LyraDecoder,
    activate_gaussians,
    packed_to_gaussians,
    packed_to_sequence,
    prune_by_opacity,
)
from lyra.model.sdg import decode_scene

__all__ = [
    "LyraDecoder",
    "LyraDecoderConfig",
    "activate_gaussians",
    "decode_scene",
    "load_decoder",
    "load_official_decoder",
    "packed_to_gaussians",
    "packed_to_sequence",
    "prune_by_opacity",
    "save_decoder",
]
