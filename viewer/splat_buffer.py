"""The one place that packs viser's client splat buffer.

viser 1.1.1's web client draws Gaussians from a flat ``uint32 [N, 8]`` buffer
(32 bytes per splat, see FORMATS.md):

====  =====================================================
word  content
====  =====================================================
0-2   centre x, y, z as float32
3     reserved for the client renderer (zero)
4-6   covariance upper triangle (xx, xy, xz, yy, yz, zz) as float16
7     R, G, B, A as uint8 (little-endian byte order in the word)
====  =====================================================

Covariance is ``R diag(s^2) R^T`` in world space. Colours are truncated to
8 bits exactly as viser's ``colors_to_uint8`` does (``clip(x * 255).astype``),
so a buffer packed here is byte-identical to viser's own conversion up to the
float16 rounding of covariance entries computed in a different order.

Packing is vectorised (torch for the covariance products, which uses every
core, numpy views for the byte layout); viser's ``add_gaussian_splats`` instead
needs full ``[N, 3, 3]`` covariances and concatenates byte arrays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lyra.scene.gaussians import Gaussians, quats_to_rotmats

WORDS_PER_SPLAT = 8
RGBA_WORD = 7


def covariance_upper_triangle(
    quats: Tensor,  # [N, 4] (w, x, y, z)
    scales: Tensor,  # [N, 3] linear
) -> Tensor:  # [N, 6] (xx, xy, xz, yy, yz, zz)
    """Upper triangle of ``R diag(s^2) R^T`` without forming the full matrices."""
    m = quats_to_rotmats(quats) * scales.unsqueeze(-2)  # [N, 3, 3] = R @ diag(s)
    r0, r1, r2 = m[:, 0], m[:, 1], m[:, 2]  # rows, [N, 3] each
    return torch.stack(
        [(r0 * r0).sum(-1), (r0 * r1).sum(-1), (r0 * r2).sum(-1), (r1 * r1).sum(-1), (r1 * r2).sum(-1), (r2 * r2).sum(-1)],
        dim=-1,
    )


def colors_to_uint8(values: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] -> uint8, truncating like viser's ``colors_to_uint8``."""
    return np.clip(values * 255.0, 0, 255).astype(np.uint8)


def pack_rgba_words(
    rgb: np.ndarray,  # [N, 3] float in [0, 1]
    opacities: np.ndarray,  # [N] float in [0, 1]
) -> np.ndarray:  # [N] uint32
    """The colour word of each splat."""
    rgba = np.empty((len(rgb), 4), dtype=np.uint8)
    rgba[:, :3] = colors_to_uint8(np.asarray(rgb))
    rgba[:, 3] = colors_to_uint8(np.asarray(opacities).reshape(-1))
    return rgba.view(np.uint32).reshape(-1)


def pack_splat_buffer(
    centers: np.ndarray,  # [N, 3]
    covariance_triu: np.ndarray,  # [N, 6] (xx, xy, xz, yy, yz, zz)
    rgb: np.ndarray,  # [N, 3] in [0, 1]
    opacities: np.ndarray,  # [N] in [0, 1]
) -> np.ndarray:  # [N, 8] uint32
    """Assemble viser's buffer from already-computed per-splat values."""
    n = len(centers)
    buffer = np.empty((n, WORDS_PER_SPLAT), dtype=np.uint32)
    buffer[:, 0:3] = np.ascontiguousarray(centers, dtype=np.float32).view(np.uint32)
    buffer[:, 3] = 0
    buffer[:, 4:7] = np.ascontiguousarray(covariance_triu, dtype=np.float16).view(np.uint32)
    buffer[:, RGBA_WORD] = pack_rgba_words(rgb, opacities)
    return buffer


def pack_gaussians(
    gaussians: Gaussians,
    rgb: Tensor | None = None,  # [N, 3] colour override (e.g. SH baked for a view); default DC colour
) -> np.ndarray:  # [N, 8] uint32
    """viser's buffer for a :class:`Gaussians` set (base colour from the DC band)."""
    g = gaussians.to("cpu")
    with torch.no_grad():
        triu = covariance_upper_triangle(g.quats.float(), g.scales.float())
        colors = g.rgb() if rgb is None else rgb
        return pack_splat_buffer(
            g.means.float().numpy(),
            triu.numpy(),
            colors.float().cpu().numpy(),
            g.opacities.float().numpy(),
        )


def tint_rgba_words(
    words: np.ndarray,  # [M] uint32 colour words
    tint_rgb: tuple[int, int, int],
    strength: float = 0.6,
) -> np.ndarray:  # [M] uint32
    """Blend the RGB of colour words toward ``tint_rgb`` (alpha kept); used to highlight a selection."""
    rgba = words.view(np.uint8).reshape(-1, 4).astype(np.float32)
    rgba[:, :3] = rgba[:, :3] * (1.0 - strength) + np.asarray(tint_rgb, np.float32) * strength
    return rgba.astype(np.uint8).view(np.uint32).reshape(-1)


def unpack_centers(buffer: np.ndarray) -> np.ndarray:  # [N, 8] uint32 -> [N, 3] float32
    """Centres stored in a packed buffer (for tests and the status line)."""
    return np.ascontiguousarray(buffer[:, 0:3]).view(np.float32)
