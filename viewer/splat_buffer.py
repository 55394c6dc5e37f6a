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

Packing is vectorised: torch for the arithmetic and the float16/uint8 casts
(multi-threaded), numpy views for the byte layout. viser's own conversion
needs full ``[N, 3, 3]`` covariances and casts to float16 in numpy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lyra.scene.gaussians import Gaussians

WORDS_PER_SPLAT = 8
RGBA_WORD = 7


def covariance_upper_triangle(
    quats: Tensor,  # [N, 4] (w, x, y, z), any norm
    scales: Tensor,  # [N, 3] linear
) -> Tensor:  # [N, 6] (xx, xy, xz, yy, yz, zz)
    """Upper triangle of ``R diag(s^2) R^T``, written out per entry.

    Hand-written rather than ``Gaussians.covariances()`` (quats_to_rotmats,
    then a batched 3x3 product): on 1M splats this is ~2.5x faster, measured
    in bench/viewer.py, and the buffer needs only six entries.
    """
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, x, y, z = q.T.contiguous()
    sx, sy, sz = scales.T.contiguous()
    xx, yy, zz, xy, xz, yz, wx, wy, wz = x * x, y * y, z * z, x * y, x * z, y * z, w * x, w * y, w * z
    # M = R diag(s); rows of M
    m00, m01, m02 = (1 - 2 * (yy + zz)) * sx, 2 * (xy - wz) * sy, 2 * (xz + wy) * sz
    m10, m11, m12 = 2 * (xy + wz) * sx, (1 - 2 * (xx + zz)) * sy, 2 * (yz - wx) * sz
    m20, m21, m22 = 2 * (xz - wy) * sx, 2 * (yz + wx) * sy, (1 - 2 * (xx + yy)) * sz
    out = torch.empty(len(q), 6, dtype=q.dtype, device=q.device)
    out[:, 0] = m00 * m00 + m01 * m01 + m02 * m02
    out[:, 1] = m00 * m10 + m01 * m11 + m02 * m12
    out[:, 2] = m00 * m20 + m01 * m21 + m02 * m22
    out[:, 3] = m10 * m10 + m11 * m11 + m12 * m12
    out[:, 4] = m10 * m20 + m11 * m21 + m12 * m22
    out[:, 5] = m20 * m20 + m21 * m21 + m22 * m22
    return out


def pack_rgba_words(
    rgb: Tensor,  # [N, 3] float in [0, 1]
    opacities: Tensor,  # [N] float in [0, 1]
) -> np.ndarray:  # [N] uint32
    """The colour word of each splat: 8-bit R, G, B, A, truncated like viser's ``colors_to_uint8``
    (torch's float->uint8 cast truncates like numpy's ``astype``)."""
    rgba = torch.empty(len(rgb), 4, dtype=torch.uint8)
    rgba[:, :3] = (rgb.to(torch.float32) * 255.0).clamp_(0, 255).to(torch.uint8)
    rgba[:, 3] = (opacities.reshape(-1).to(torch.float32) * 255.0).clamp_(0, 255).to(torch.uint8)
    return rgba.numpy().view(np.uint32).reshape(-1)


def pack_splat_buffer(
    centers: Tensor,  # [N, 3]
    covariance_triu: Tensor,  # [N, 6] (xx, xy, xz, yy, yz, zz)
    rgb: Tensor,  # [N, 3] in [0, 1]
    opacities: Tensor,  # [N] in [0, 1]
) -> np.ndarray:  # [N, 8] uint32
    """Assemble viser's buffer from per-splat values (CPU tensors).

    The float16 cast runs in torch: numpy's float32->float16 cast is ~30x
    slower on 1M splats and gives the same bits (round to nearest even).
    """
    n = len(centers)
    buffer = np.empty((n, WORDS_PER_SPLAT), dtype=np.uint32)
    buffer[:, 0:3] = centers.to(torch.float32).contiguous().numpy().view(np.uint32)
    buffer[:, 3] = 0
    buffer[:, 4:7] = covariance_triu.to(torch.float16).contiguous().numpy().view(np.uint32)
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
        return pack_splat_buffer(g.means, triu, g.rgb() if rgb is None else rgb, g.opacities)


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
