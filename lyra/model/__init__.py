"""Networks only: the Lyra-1 latent 3DGS decoder and the Cosmos tokenizer wrapper.

``LyraDecoder`` reproduces the official ``LatentRecon`` forward pass in pure
PyTorch (CPU-capable) with the official parameter names, so the released
``lyra_static.pt`` / ``lyra_dynamic.pt`` load with a strict state-dict load.
:mod:`lyra.model.tokenizer` wraps the Cosmos CV8x8x8 tokenizer and its latent
(de)normalisation, shared by the decoder's conditioning and the GEN3C teacher.
Disk layouts and wiring live in :mod:`lyra.pipeline`.
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

__all__ = [
    "LyraDecoder",
    "LyraDecoderConfig",
    "activate_gaussians",
    "load_decoder",
    "load_official_decoder",
    "packed_to_gaussians",
    "packed_to_sequence",
    "prune_by_opacity",
    "save_decoder",
]
