"""Rotating view-dependent colour: SH coefficients under a rotation of the splat.

When an object is rotated by ``R``, what used to be seen from direction ``d``
is now seen from ``R d``. The rotated coefficients ``sh'`` therefore satisfy
``eval_sh(sh', R d) == eval_sh(sh, d)`` for every direction ``d``.

Each SH band ``l`` spans a space closed under rotation, so there is a
``(2l+1) x (2l+1)`` matrix per band mapping old coefficients to new ones. We
find it by least squares: evaluate the basis (from :func:`lyra.scene.sh.sh_basis`,
the one SH definition in the project) at a fixed, well-spread set of sample
directions ``d_s`` and at ``R^T d_s``, and solve ``Y(R^T d_s) = Y(d_s) M`` (rows: basis values at one direction);
then ``f'(d) = f(R^T d) = Y(d) M c``, so the new coefficients are ``c' = M c``.
Because the band is closed under rotation the fit is exact (to float64
round-off), it needs no Wigner-D recurrences, and it follows whatever sign and
ordering convention ``sh_basis`` uses.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lyra.scene.sh import MAX_SH_DEGREE, sh_basis, sh_degree_from_coeffs

# 64 Fibonacci-sphere directions: far more than the 7 unknowns per row of band 3.
_NUM_SAMPLE_DIRS = 64


def _sample_directions(count: int = _NUM_SAMPLE_DIRS) -> Tensor:  # -> [count, 3] float64, unit
    i = torch.arange(count, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / count
    r = torch.sqrt(1.0 - z * z)
    phi = i * math.pi * (3.0 - math.sqrt(5.0))  # golden angle
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=-1)


def sh_rotation_matrices(rotation: Tensor, degree: int = MAX_SH_DEGREE) -> list[Tensor]:
    """Per-band matrices ``M_l [2l+1, 2l+1]`` (float64) for ``l = 1..degree``.

    ``rotation [3, 3]`` is a proper rotation. New band-``l`` coefficients are
    ``sh'[l] = M_l sh[l]`` (acting on the coefficient axis, per colour channel).
    """
    rot = rotation.to(torch.float64).cpu()
    dirs = _sample_directions()  # [S, 3]
    basis = sh_basis(dirs, degree)  # [S, K]
    basis_rotated = sh_basis(dirs @ rot, degree)  # rows are R^T d_s
    matrices = []
    for band in range(1, degree + 1):
        lo, hi = band * band, (band + 1) * (band + 1)
        solution = torch.linalg.lstsq(basis[:, lo:hi], basis_rotated[:, lo:hi]).solution  # [2l+1, 2l+1]
        matrices.append(solution)
    return matrices


def rotate_sh(
    sh: Tensor,  # [N, K, 3] coefficients, DC first
    rotation: Tensor,  # [3, 3] proper rotation applied to the splats
) -> Tensor:  # [N, K, 3]
    """Coefficients of the same colour functions after rotating the splats by ``rotation``.

    The DC band is unchanged; bands 1..3 are mixed within each band.
    """
    degree = sh_degree_from_coeffs(sh.shape[1])
    if degree == 0 or len(sh) == 0:
        return sh.clone()
    out = sh.clone()
    for band, matrix in enumerate(sh_rotation_matrices(rotation, degree), start=1):
        lo, hi = band * band, (band + 1) * (band + 1)
        # sh'[n, j, c] = sum_i M[j, i] sh[n, i, c]
        out[:, lo:hi] = torch.einsum("ji,nic->njc", matrix.to(sh.dtype).to(sh.device), sh[:, lo:hi])
    return out
