"""Real spherical harmonics in the standard 3DGS convention (degrees 0-3).

Coefficients are stored as ``sh [..., K, 3]`` with ``K = (degree + 1) ** 2``,
DC first, in the coefficient space of the original 3DGS code: the colour for a
unit view direction ``d`` (from the camera to the splat) is
``max(sum_k sh[k] * Y_k(d) + 0.5, 0)``. This module is the one place that
converts between RGB and SH and evaluates SH; the renderer, the viewer's SH
bake and the file formats all use it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lyra.errors import ConfigError

SH_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)
MAX_SH_DEGREE = 3


def num_sh_coeffs(degree: int) -> int:
    """K = (degree + 1)^2 coefficients per colour channel."""
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ConfigError(f"SH degree must be 0..{MAX_SH_DEGREE}, got {degree}")
    return (degree + 1) ** 2


def sh_degree_from_coeffs(num_coeffs: int) -> int:
    """Inverse of :func:`num_sh_coeffs`; raises ConfigError if K is not a square of 1..4."""
    degree = math.isqrt(num_coeffs) - 1
    if num_coeffs < 1 or (degree + 1) ** 2 != num_coeffs or degree > MAX_SH_DEGREE:
        raise ConfigError(f"{num_coeffs} SH coefficients is not (d+1)^2 for a degree d in 0..{MAX_SH_DEGREE}")
    return degree


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:
    """Base colour in [0,1] -> DC coefficient (``rgb [..., 3]`` -> ``[..., 3]``)."""
    return (rgb - 0.5) / SH_C0


def sh_dc_to_rgb(dc: Tensor) -> Tensor:
    """DC coefficient -> base colour (``[..., 3]``); not clamped."""
    return dc * SH_C0 + 0.5


def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """Basis values ``Y [..., K]`` for unit directions ``dirs [..., 3]``."""
    x, y, z = dirs.unbind(-1)
    basis = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        basis += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        basis += [
            _C2[0] * xy,
            _C2[1] * yz,
            _C2[2] * (2.0 * zz - xx - yy),
            _C2[3] * xz,
            _C2[4] * (xx - yy),
        ]
    if degree >= 3:
        basis += [
            _C3[0] * y * (3.0 * xx - yy),
            _C3[1] * xy * z,
            _C3[2] * y * (4.0 * zz - xx - yy),
            _C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            _C3[4] * x * (4.0 * zz - xx - yy),
            _C3[5] * z * (xx - yy),
            _C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(basis, dim=-1)


def eval_sh(sh: Tensor, dirs: Tensor, degree: int | None = None) -> Tensor:
    """View-dependent colour ``[..., 3]`` (clamped at 0, not at 1).

    ``sh [..., K, 3]``; ``dirs [..., 3]`` from the camera centre towards the splat
    (normalised here). ``degree`` may be lower than the stored degree to use
    only the first ``(degree+1)^2`` coefficients.
    """
    stored = sh_degree_from_coeffs(sh.shape[-2])
    degree = stored if degree is None else min(degree, stored)
    k = num_sh_coeffs(degree)
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    basis = sh_basis(dirs, degree).to(sh.dtype)  # [..., K]
    color = (basis.unsqueeze(-1) * sh[..., :k, :]).sum(dim=-2)
    return torch.clamp_min(color + 0.5, 0.0)
